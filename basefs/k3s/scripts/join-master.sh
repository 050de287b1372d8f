#!/bin/bash
# join-master: start a k3s server that joins master0's (embedded etcd) with the derived token. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k3s.sh
source "$(dirname "$0")/k3s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
if is_master0; then log "master0 started the first server in init; nothing to join"; exit 0; fi
wait_for_master0
start_k3s_server --server "https://$MASTER0:6443"
