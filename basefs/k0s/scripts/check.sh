#!/bin/bash
# check: fail early, saying why, when this host cannot take the k0s cluster: the engine's env, PKI and
# cluster token, the image's files, and nothing of someone else's in the way. A host running this cluster passes.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=k0s.sh
source "$(dirname "$0")/k0s.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
mapfile -t problems < <(pki_problems; k0s_problems)
report_problems "${problems[@]}"
