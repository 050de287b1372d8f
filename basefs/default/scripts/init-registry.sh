#!/bin/bash
# init-registry: lay out the registry data and config on the registry host.
source "$(dirname "$0")/common.sh"
data="${1:-/var/lib/registry}"; config="${2:-/etc/registry}"
rootfs="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$data" "$config"
if [ -d "$rootfs/registry" ]; then cp -a "$rootfs/registry/." "$data/"; fi
if [ -f "$rootfs/etc/registry_config.yml" ]; then cp "$rootfs/etc/registry_config.yml" "$config/config.yml"; fi
log "registry data in $data, config in $config"
mark registry "$data"
