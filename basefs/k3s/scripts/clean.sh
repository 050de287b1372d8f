#!/bin/bash
# clean: undo init and join on this host: k3s stopped with its containers, mounts and links, its data emptied,
# the files init put here removed. Safe to run twice, or on a host where init never ran.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k3s.sh
source "$(dirname "$0")/k3s.sh"

remove_k3s
empty_data
undo_manifest
drop_shared_dirs
log "clean done on ${HOST_IP:-this host}"
