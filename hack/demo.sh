#!/usr/bin/env bash
# The main job on an embedded default: show what imgbuild can do on this machine.
# Later issues extend this until it builds an example cluster image, serves it and runs it on local hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export IMGBUILD_HOME="$PWD/.demo/home"
mkdir -p "$IMGBUILD_HOME"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "imgbuild version"
$BIN/imgbuild version
say "imgbuild --help"
$BIN/imgbuild --help
