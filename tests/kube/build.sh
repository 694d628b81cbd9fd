#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd for the real-control-plane test tier
# into a per-user cache keyed by version (not into the clone: CI uses a fresh clone each run).
# Prints the directory holding the binaries. Cold: about 9 minutes; cached: instant.
#
#   tests/kube/build.sh            build when missing, print the directory
#   tests/kube/build.sh --print    only print the directory (exit 1 when not built)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
cache="${FLOTILLA_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/kube}"
out="$cache/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
bins=(kube-apiserver kube-controller-manager etcd)

built() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if built; then echo "$out"; exit 0; fi
if [ "${1:-}" = "--print" ]; then exit 1; fi
command -v go >/dev/null || { echo "go is needed to build the real control plane" >&2; exit 1; }

work="$cache/build"
rm -rf "$work"
mkdir -p "$work/kubernetes" "$work/etcd" "$out.tmp"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# kube-apiserver and kube-controller-manager. k8s.io/kubernetes points its staging modules at
# ./staging/...; the replace list is generated from that go.mod: every staging module at the
# release's v0.M.P.
staging="v0.${KUBERNETES_VERSION#v1.}"
cp "$here/kubernetes/tools.go" "$work/kubernetes/"
(
    cd "$work/kubernetes"
    go mod init flotilla.test/kube >&2
    gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    replaces=()
    while read -r module; do
        replaces+=("-replace=$module=$module@$staging")
    done < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => ./staging/.*#\1#p' "$gomod")
    echo "replacing ${#replaces[@]} staging modules with $staging" >&2
    go mod edit "-require=k8s.io/kubernetes@$KUBERNETES_VERSION" "${replaces[@]}"
    go mod tidy >&2
    minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager >&2
)

# etcd, in a module of its own so its dependency versions do not fight Kubernetes'.
cp "$here/etcd/main.go" "$work/etcd/"
(
    cd "$work/etcd"
    go mod init flotilla.test/etcd >&2
    go mod edit "-require=go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" . >&2
)

rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out"
