#!/bin/bash
# clean-registry: stop the registry init-registry started and remove what it put on this host (the images it
# served stay in the rootfs, which the engine removes). Safe to run twice.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
MANIFEST="$STATE_DIR/registry.installed"

stop_daemon registry docker-registry
undo_manifest
drop_shared_dirs
log "registry cleaned on ${HOST_IP:-this host}"
