# Flotilla developer commands. `make run` starts a local hub; `make test` runs every test.

CARGO ?= cargo
DATA_DIR ?= .tmp/flotilla
MEMBERS ?= 3

# The tests that run a second time against real control planes (etcd + kube-apiserver +
# kube-controller-manager, built by `make kube`): every controller test, the hub processes, and
# the real-client suites (kubectl 1.29/1.33/1.35, the Python client, Helm 4), which must pass on
# kube-apiserver exactly as on the embedded server.
KUBE_TESTS ?= kind(test) & (package(flotilla-controllers) | package(flotilla-scheduler) | package(flotilla-e2e) | package(flotilla-gitops) | binary(hub) | binary(chart_kube) | binary(join) | binary(gc) | binary(pods) | binary(fidelity) | binary(clients_kubectl) | binary(clients_python) | binary(clients_helm))

.PHONY: build test test-embedded test-kube kube fidelity lint fmt crds run bench clean

build:
	$(CARGO) build --workspace

test: test-embedded test-kube
	$(CARGO) test --workspace --doc

test-embedded:
	$(CARGO) nextest run --workspace --no-fail-fast

test-kube: kube
	FLOTILLA_TEST_SERVER=kube FLOTILLA_KUBE_BIN="$$(tests/kube/build.sh --print)" \
		$(CARGO) nextest run --workspace --no-fail-fast -E '$(KUBE_TESTS)'

# The differential fidelity report: one line per way the embedded API server answers differently
# from kube-apiserver (each must be listed in crates/apiserver/STATUS.md).
fidelity: kube
	FLOTILLA_TEST_SERVER=kube FLOTILLA_KUBE_BIN="$$(tests/kube/build.sh --print)" \
		$(CARGO) nextest run -p flotilla --test fidelity --no-capture

# kube-apiserver, kube-controller-manager and etcd for the real-server tier, built from their Go
# modules into ~/.cache/flotilla/kube (about 9 minutes the first time, instant after).
kube:
	tests/kube/build.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

crds:
	$(CARGO) run --quiet -p flotilla -- crds --output-dir config/crd
	rm -f charts/flotilla/crds/*.yaml && cp config/crd/*.yaml charts/flotilla/crds/

run:
	$(CARGO) run -p flotilla -- up --data-dir $(DATA_DIR) --members $(MEMBERS)

bench:
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
	rm -rf .tmp
