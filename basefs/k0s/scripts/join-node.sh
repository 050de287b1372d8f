#!/bin/bash
# join-node: start a k0s worker with a worker token built here. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k0s.sh
source "$(dirname "$0")/k0s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
token_file worker
wait_for_master0
start_service k0sworker "$BIN_DIR/k0s" worker --token-file "$CONF_DIR/k0s-worker.token"
