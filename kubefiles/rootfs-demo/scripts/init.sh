#!/bin/bash
# init: install the rootfs on this host (the demo records what a real init would do).
source "$(dirname "$0")/common.sh"
cri_data="${1:-/var/lib/containerd}"; domain="${2:-sealos.hub}"; port="${3:-5000}"
rootfs="$(cd "$(dirname "$0")/.." && pwd)"
log "init: rootfs=$rootfs criData=$cri_data registry=$domain:$port"
mark initialized "$domain:$port"
