#!/bin/bash
# join-master: start a k0s controller that joins master0's with a controller token built here. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k0s.sh
source "$(dirname "$0")/k0s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
if is_master0; then log "master0 started the first controller in init; nothing to join"; exit 0; fi
token_file controller
wait_for_master0
start_service k0scontroller "$BIN_DIR/k0s" controller --config /etc/k0s/k0s.yaml --token-file "$CONF_DIR/k0s-controller.token"
