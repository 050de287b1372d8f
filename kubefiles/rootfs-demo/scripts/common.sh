#!/bin/bash
# Shared helpers for the lifecycle scripts: logging and the demo state directory.
# The state directory can be moved with IMGBUILD_DEMO_STATE (tests and the demo sandbox do).
set -euo pipefail
STATE_DIR="${IMGBUILD_DEMO_STATE:-/var/lib/imgbuild-demo}"
log() { echo "[$(basename "$0")] $*"; }
mark() { mkdir -p "$STATE_DIR" && printf '%s\n' "$2" > "$STATE_DIR/$1"; }
