#!/bin/bash
# join-node: kubeadm join this node with the bootstrap token derived from the cluster token, trusting the
# API server by the hash of the cluster CA. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=kubernetes.sh
source "$(dirname "$0")/kubernetes.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
kube_join
