#!/usr/bin/env bash
# Make this checkout runnable on a fresh Debian machine: system packages, then the venv with imgbuild installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-deps.sh
PY="${PY:-python3}"
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
