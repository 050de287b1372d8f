#!/bin/bash
# clean-registry: remove what init-registry laid out.
source "$(dirname "$0")/common.sh"
data="${1:-/var/lib/registry}"; config="${2:-/etc/registry}"
rm -rf "$config/config.yml"
log "registry cleaned ($data kept unless empty)"
rmdir "$data" 2>/dev/null || true
rm -f "$STATE_DIR/registry"
