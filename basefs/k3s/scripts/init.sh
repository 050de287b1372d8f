#!/bin/bash
# init: install k3s on this host (the cluster registry as every registry's mirror, the airgap images, the join
# token derived from the cluster token); master0 starts the first server (embedded etcd, --cluster-init).
# The other masters and the nodes start in the Join phase. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k3s.sh
source "$(dirname "$0")/k3s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
shared_dirs
install_k3s
if is_master0; then start_k3s_server --cluster-init; else log "$HOST_IP starts k3s in the Join phase"; fi
log "init done on $HOST_IP"
