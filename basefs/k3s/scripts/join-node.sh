#!/bin/bash
# join-node: start a k3s agent against master0 with the derived token. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k3s.sh
source "$(dirname "$0")/k3s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
wait_for_master0
start_service k3s-agent "$BIN_DIR/k3s" agent --server "https://$MASTER0:6443" --token-file "$K3S_TOKEN_FILE"
