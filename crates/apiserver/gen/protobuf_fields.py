#!/usr/bin/env python3
"""Generates src/codec/fields.rs: the protobuf field table of the Kubernetes kinds the embedded
server decodes, read from the k8s-pb crate's prost structs (tags, wire types, message types)
with the JSON names read from k8s-openapi (whose Deserialize impls list them).

Run from the repository root after changing either crate's version:
    python3 crates/apiserver/gen/protobuf_fields.py > crates/apiserver/src/codec/fields.rs
"""
import glob, os, re, sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
def crate(name):
    found = sorted(d for r in REG for d in glob.glob(r + name + "-*") if os.path.isdir(d))
    if not found:
        sys.exit(f"{name} is not in the cargo registry: run cargo fetch")
    return found[-1]

PB = crate("k8s-pb") + "/src"
OPENAPI = sorted(glob.glob(crate("k8s-openapi") + "/src/v1_*"))[-1]

# Group versions served by the embedded server (k8s-pb module paths).
MODULES = [
    "apimachinery/pkg/apis/meta/v1", "apimachinery/pkg/util/intstr",
    "apimachinery/pkg/api/resource", "apimachinery/pkg/runtime",
    "api/core/v1", "api/apps/v1", "api/batch/v1", "api/networking/v1", "api/rbac/v1",
    "api/coordination/v1", "api/certificates/v1", "api/events/v1", "api/policy/v1",
    "api/autoscaling/v1", "api/autoscaling/v2", "api/storage/v1", "api/discovery/v1",
    "api/scheduling/v1", "api/node/v1", "api/authentication/v1", "api/authorization/v1",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1",
]

def norm(s):
    return s.removeprefix("r#").replace("_", "").replace("-", "").lower()

names = {}
for f in glob.glob(OPENAPI + "/**/*.rs", recursive=True):
    for json_name in re.findall(r'"([A-Za-z0-9$_-]+)" => Field::Key_', open(f).read()):
        key = norm(json_name)
        names.setdefault(key, set()).add(json_name)

def struct_keys(module, struct):
    """The JSON keys k8s-openapi's struct of this name reads, normalized; None when it has none."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", struct).lower()
    path = f"{OPENAPI}/{module}/{snake}.rs"
    if not os.path.exists(path):
        return None
    keys = {norm(k) for k in re.findall(r'"([A-Za-z0-9$_-]+)" => Field::Key_', open(path).read())}
    return keys or None

STRUCT_RE = re.compile(r"pub struct (\w+) \{((?:\n(?!\}).*)*)\n\}|pub struct (\w+) \{\}")

def pb_structs(module):
    src = open(f"{PB}/{module}/mod.rs").read()
    for m in STRUCT_RE.finditer(src):
        yield (m.group(1) or m.group(3)), (m.group(2) or "")

PB_FIELDS = {}
for module in MODULES:
    for struct, body in pb_structs(module):
        PB_FIELDS[module.replace("/", ".") + "." + struct] = {
            norm(f) for f in re.findall(r"pub (r#\w+|\w+):", body)}

def type_keys(dotted):
    """The JSON keys of a message type (k8s-openapi's struct, else its prost fields)."""
    module, _, struct = dotted.rpartition(".")
    return struct_keys(module.replace(".", "/"), struct) or PB_FIELDS.get(dotted) or set()

def json_name(rust):
    rust = rust.removeprefix("r#")
    cands = names.get(norm(rust))
    if cands and len(cands) == 1:
        return next(iter(cands))
    if cands:
        camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), rust)
        if camel in cands:
            return camel
        sys.exit(f"ambiguous JSON name for {rust}: {cands}")
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), rust)

# Go's own types (k8s.io/api and apimachinery in the Go module cache, as `tests/kube/build.sh`
# leaves them; else `go mod download k8s.io/api@VERSION`): which fields are non-pointers whose
# zero value JSON leaves out (`omitempty`), so a zero on the protobuf wire means "not set".
GOMOD = os.path.expanduser(os.environ.get("GOMODCACHE", "~/go/pkg/mod"))
def go_module(name):
    found = sorted(glob.glob(f"{GOMOD}/k8s.io/{name}@v*"))
    return found[-1] if found else None

GO_ZERO = {}  # (normalized struct, tag) -> True when a zero means unset
BASIC = {"string", "int32", "int64", "bool", "float64"}
GO_ROOTS = [r for r in (go_module("api"), go_module("apimachinery"), go_module("apiextensions-apiserver")) if r]
ALIASES = set()  # named types whose underlying type is basic (Protocol, ServiceType, ...)
for root in GO_ROOTS:
    for f in glob.glob(root + "/**/types*.go", recursive=True):
        ALIASES.update(re.findall(r"^type (\w+) (?:string|int32|int64|bool|float64)$", open(f).read(), re.M))
GO_FIELD = re.compile(r'^\s+\w+\s+(\*?)([\w.]+)\s+`json:"([^"]*)"[^`]*protobuf:"\w+,(\d+),')
for root in GO_ROOTS:
    for f in glob.glob(root + "/**/types*.go", recursive=True):
        struct = None
        for line in open(f):
            m = re.match(r"^type (\w+) struct \{", line)
            if m:
                struct = m.group(1)
                continue
            if line.startswith("}"):
                struct = None
                continue
            m = struct and GO_FIELD.match(line)
            if m:
                pointer, gotype, tag_json, tag = m.groups()
                scalar = gotype in BASIC or gotype in ALIASES
                omit = "omitempty" in tag_json.split(",")[1:]
                GO_ZERO[(norm(struct), int(tag))] = scalar and not pointer and omit
if not GO_ZERO:
    print("no Go sources of k8s.io/api: zero values are kept as sent", file=sys.stderr)

SCALARS = {"string": "Str", "int32": "I32", "int64": "I64", "bool": "Bool",
           "double": "F64", 'bytes = "vec"': "Bytes", "bytes": "Bytes"}

def resolve(module, ty):
    """Absolute dotted name of a message type written in `module`."""
    ty = ty.strip().rstrip(",")
    parts = ty.split("::")
    if len(parts) == 1:
        return module.replace("/", ".") + "." + ty
    base = module.split("/")
    while parts and parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    return ".".join(base + parts)

out = []
field_re = re.compile(r'#\[prost\(([^)]*)\)\]\s*pub (r#\w+|\w+):\s*(.*?),(?=\s*(?:///|#\[)|\s*$)', re.S)
for module in MODULES:
    for struct, body in pb_structs(module):
        fields = []
        for fm in field_re.finditer(body):
            attrs, rust = fm.group(1), fm.group(2)
            rty = re.sub(r"\s+", "", fm.group(3)).rstrip(",")
            tag = re.search(r'tag = "(\d+)"', attrs).group(1)
            repeated = ", repeated" in attrs
            kind = attrs.split(",")[0].strip()
            if kind.startswith("btree_map"):
                k, v = re.search(r'btree_map = "(\w+), (\w+)"', attrs).groups()
                if v == "string":
                    ty = "MapStr"
                elif v == "bytes":
                    ty = "MapBytes"
                elif v == "message":
                    inner = re.search(r"BTreeMap<[^,]+,(.+)>$", rty).group(1)
                    ty = f'MapMsg("{resolve(module, inner)}")'
                else:
                    sys.exit(f"{module}.{struct}.{rust}: map of {v}")
            elif kind == "message":
                inner = re.search(r"(?:Option|Vec)<(.+)>$", rty).group(1)
                ty = f'Msg("{resolve(module, inner)}")'
            elif kind in SCALARS:
                ty = SCALARS[kind]
            else:
                sys.exit(f"{module}.{struct}.{rust}: unknown prost kind {attrs}")
            name = json_name(rust)
            keys = struct_keys(module, struct)
            inner_keys = type_keys(ty[5:-2]) if ty.startswith('Msg("') else set()
            if (kind == "message" and keys is not None and norm(rust) not in keys
                    and inner_keys and inner_keys <= keys):
                # A Go struct embedded with `json:",inline"` (IngressRuleValue, VolumeSource,
                # ProbeHandler, ...): no JSON field has its name; its fields are the parent's.
                name = ""
                print(f"inline: {module}.{struct}.{rust}", file=sys.stderr)
            zero = GO_ZERO.get((norm(struct), int(tag)), False) and not repeated
            fields.append(f'({tag}, "{name}", {"true" if repeated else "false"}, {"true" if zero else "false"}, {ty})')
        name = module.replace("/", ".") + "." + struct
        out.append(f'    ("{name}", &[{", ".join(fields)}]),')

out.sort()
print("// @generated by crates/apiserver/gen/protobuf_fields.py from k8s-pb and k8s-openapi: do not edit.")
print("//! Protobuf fields of the served Kubernetes kinds: message → (tag, JSON name, repeated,")
print("//! zero means unset, type); an empty JSON name marks a struct Go embeds inline (its fields are")
print("//! the parent's); \"zero means unset\" marks a non-pointer Go field JSON leaves out when zero.")
print()
print("use super::pb::Field;")
print("use super::pb::Ty::*;")
print()
print("#[rustfmt::skip]")
print("pub(super) static MESSAGES: &[(&str, &[Field])] = &[")
print("\n".join(out))
print("];")
