#!/bin/bash
# join-master: kubeadm join this master to the control plane (its certificates come from master0's upload,
# unlocked by the certificate key derived from the cluster token; it joins stacked etcd too). Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=kubernetes.sh
source "$(dirname "$0")/kubernetes.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
if is_master0; then log "master0 ran kubeadm init; nothing to join"; exit 0; fi
kube_join
