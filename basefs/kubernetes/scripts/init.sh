#!/bin/bash
# init: containerd (the cluster registry as every registry's mirror), kubeadm, kubelet and kubectl on this host,
# the API server's name in /etc/hosts; on master0 kubeadm init with the cluster CA (masters and nodes join in
# the Join phase). Idempotent: a host where kubeadm already ran is left as it is.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=kubernetes.sh
source "$(dirname "$0")/kubernetes.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
shared_dirs
install_containerd
install_kubernetes
hosts_entry "$apiServerDomain" "$MASTER0"
if ! is_master0; then log "init done on $HOST_IP; it joins in the Join phase"; exit 0; fi
if [ -f /etc/kubernetes/admin.conf ]; then
  log "kubeadm init already ran on master0"
else
  put_file "$(pki ca.crt)" /etc/kubernetes/pki/ca.crt 0644  # kubeadm's certs phase signs with the cluster CA
  put_file "$(pki ca.key)" /etc/kubernetes/pki/ca.key 0600
  fill_config "$ROOTFS/etc/kubeadm-init.yaml" "$CONF_DIR/kubeadm-init.yaml"
  log "kubeadm init on master0 $HOST_IP (kubernetes $kubeVersion)"
  "$BIN_DIR/kubeadm" init --config "$CONF_DIR/kubeadm-init.yaml" --upload-certs
fi
admin_kubeconfig
log "init done on master0 $HOST_IP"
