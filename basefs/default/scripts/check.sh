#!/bin/bash
# check: fail early when the host cannot take the cluster (bash present, registry data dir usable).
source "$(dirname "$0")/common.sh"
registry_data="${1:-/var/lib/registry}"
command -v bash >/dev/null || { log "bash is required"; exit 1; }
case "$registry_data" in /*) ;; *) log "registryData must be absolute: $registry_data"; exit 1 ;; esac
log "host ok (registryData=$registry_data)"
mark checked "$registry_data"
