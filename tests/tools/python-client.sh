#!/usr/bin/env bash
# Prints the path of a Python interpreter that has the official Kubernetes client (`kubernetes`
# from PyPI), creating its virtual environment first when it is missing.
#
# The venv lives in a per-user cache directory (not in the clone: CI uses a fresh clone); it is
# built under a lock and marked complete only at the end, so concurrent test processes wait for
# one install and an interrupted one is redone. A second run only prints the path.
#
#   tests/tools/python-client.sh            install when missing, print the interpreter's path
#   tests/tools/python-client.sh --cached   print the path if installed, else exit 1
#
# Exits non-zero with a message on stderr when python3 (with its venv module) is missing or the
# package cannot be installed. FLOTILLA_PYTHON_CLIENT_VERSION overrides the pinned version.
set -euo pipefail

version="${FLOTILLA_PYTHON_CLIENT_VERSION:-37.0.2}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/tools/python-kubernetes/${version}"
python="${dir}/venv/bin/python"
marker="${dir}/complete"

install=1
case "${1:-}" in
    "") ;;
    --cached) install=0 ;;
    *)
        echo "usage: $0 [--cached]" >&2
        exit 2
        ;;
esac

if [ -f "${marker}" ] && [ -x "${python}" ]; then
    echo "${python}"
    exit 0
fi
if [ "${install}" -eq 0 ]; then
    echo "the Python kubernetes client is not installed in ${dir}; run $0 to install it" >&2
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is missing: install it (apt-get install -y python3 python3-venv)" >&2
    exit 1
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python3 has no venv/ensurepip module: install it (apt-get install -y python3-venv)" >&2
    exit 1
fi

mkdir -p "${dir}"
exec 9>"${dir}/.lock"
flock 9
if [ ! -f "${marker}" ] || [ ! -x "${python}" ]; then
    rm -rf "${dir}/venv"
    {
        python3 -m venv "${dir}/venv" &&
            "${python}" -m pip install --quiet --disable-pip-version-check \
                "kubernetes==${version}" &&
            "${python}" -c 'import kubernetes, kubernetes.dynamic'
    } >&2 || {
        echo "could not install the Python kubernetes client ${version} into ${dir}/venv" >&2
        exit 1
    }
    touch "${marker}"
fi
echo "${python}"
