#!/bin/bash
# clean: undo init on this host.
source "$(dirname "$0")/common.sh"
log "clean: criData=${1:-/var/lib/containerd}"
rm -f "$STATE_DIR/initialized" "$STATE_DIR/checked"
