#!/usr/bin/env bash
# Make this checkout runnable on a fresh Debian machine: system packages, then the venv with imgbuild installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-deps.sh
# The venv is made from the distribution's python3 (the one install-deps.sh installed with python3-venv and
# python3-dev), not whatever python3 comes first on PATH: that is the interpreter a Debian user runs imgbuild
# with. A self-built one (pyenv's, without PGO) starts imgbuild ~20-40 ms slower. PY=... picks another.
if [ -z "${PY:-}" ]; then
  PY=python3
  [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fi
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
