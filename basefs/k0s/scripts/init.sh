#!/bin/bash
# init: install k0s on this host (the cluster registry as every registry's mirror, the airgap images); master0
# seeds k0s with the cluster CA and the derived join tokens, then starts the first controller. The other
# controllers and the workers start in the Join phase. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k0s.sh
source "$(dirname "$0")/k0s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
shared_dirs
install_k0s
if is_master0; then
  seed_k0s
  start_service k0scontroller "$BIN_DIR/k0s" controller --config /etc/k0s/k0s.yaml
  wait_for_master0
else
  log "$HOST_IP starts k0s in the Join phase"
fi
log "init done on $HOST_IP"
