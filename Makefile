# Flotilla developer commands. `make run` starts a local hub; `make test` runs every test.

CARGO ?= cargo
DATA_DIR ?= .tmp/flotilla
MEMBERS ?= 2

.PHONY: build test lint fmt crds run bench clean

build:
	$(CARGO) build --workspace

test:
	$(CARGO) nextest run --workspace --no-fail-fast
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

crds:
	$(CARGO) run --quiet -p flotilla -- crds --output-dir config/crd

run:
	$(CARGO) run -p flotilla -- up --data-dir $(DATA_DIR) --members $(MEMBERS)

bench:
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
	rm -rf .tmp
