#!/usr/bin/env bash
# Regenerates metadata.json: the list, map and patch metadata kube-apiserver publishes in its
# OpenAPI v3 documents (x-kubernetes-list-type, -list-map-keys, -map-type, -patch-strategy,
# -patch-merge-key), per definition and property, read from the release's own
# api/openapi-spec/v3 (version pinned in tests/kube/versions.env). k8s-openapi's generated
# schemas carry types and descriptions but not this metadata, which server-side apply and
# strategic merge patch need. Needs Go (for `go mod download`) and Python 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../../../tests/kube/versions.env"
dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
python3 - "$dir/api/openapi-spec/v3" "$KUBERNETES_VERSION" > "$here/metadata.json" <<'PY'
import glob, json, os, sys
spec, version = sys.argv[1], sys.argv[2]
keys = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
        "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key")
out = {}
# Definitions kube publishes without a type (any JSON value): JSON, the JSONSchemaProps
# unions, RawExtension and the like. k8s-openapi gives some of them a type or a oneOf.
untyped = set()
for path in sorted(glob.glob(os.path.join(spec, "*.json"))):
    for name, schema in json.load(open(path)).get("components", {}).get("schemas", {}).items():
        if "type" not in schema and "properties" not in schema and "$ref" not in schema \
                and "allOf" not in schema and not any(k.startswith("x-kubernetes-int-or-string") for k in schema):
            untyped.add(name)
        entry = {}
        top = {k: schema[k] for k in keys if k in schema}
        if top:
            entry[""] = top
        for prop, ps in schema.get("properties", {}).items():
            meta = {k: ps[k] for k in keys if k in ps}
            if meta:
                entry[prop] = meta
        if entry:
            out[name] = entry
json.dump({"source": f"k8s.io/kubernetes {version} api/openapi-spec/v3", "definitions": out,
           "untyped": sorted(untyped)},
          sys.stdout, indent=0, sort_keys=True)
print()
PY
echo "wrote $here/metadata.json" >&2
