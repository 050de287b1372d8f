#!/bin/bash
# clean: undo init and join on this host: k0s stopped with what it started, its data emptied, the files init
# put here removed. Safe to run twice, or on a host where init never ran.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k0s.sh
source "$(dirname "$0")/k0s.sh"

remove_k0s
empty_data
undo_manifest
drop_shared_dirs
log "clean done on ${HOST_IP:-this host}"
