#!/bin/bash
# kubeadm for the kubernetes cluster image (sourced after common.sh and containerd.sh, never run): the
# binaries, the kubelet unit, kubeadm's configs with the values derived from the cluster token, join, reset.
# kubeadm's own certs phase uses the cluster CA (the engine's PKI), so every host can verify the API server
# (the discovery hash) and masters can join without anything copied from master0.
# shellcheck disable=SC2034,SC2154  # variables read by the scripts that source this file; common.sh sets the rest
K8S_BINS=(kubeadm kubelet kubectl crictl)
K8S_PORTS=(6443 10250 10257 10259 2379 2380)
apiServerDomain="${apiServerDomain:-apiserver.cluster.local}"
kubeVersion="${kubeVersion:-}"
CRI_SOCKET=unix:///run/containerd/containerd.sock

kube_token() { local h; h=$(derive kubeadm-token); echo "${h:0:6}.${h:6:16}"; }  # [a-z0-9]{6}.[a-z0-9]{16}
ca_hash() {  # kubeadm's discovery hash of the cluster CA: sha256 of its public key (DER)
  echo "sha256:$(openssl x509 -pubkey -noout -in "$(pki ca.crt)" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
}

kube_problems() {  # print why this host cannot take kubeadm (nothing when it can)
  local b p
  for b in "${K8S_BINS[@]}"; do
    [ -x "$ROOTFS/bin/$b" ] || echo "missing $ROOTFS/bin/$b (the image's bin/)"
    [ ! -e "$BIN_DIR/$b" ] || ours "$BIN_DIR/$b" || echo "$BIN_DIR/$b exists and is not this cluster's"
  done
  for p in kubeadm-init.yaml kubeadm-join.yaml; do rendered_problem "$p"; done
  has_systemd || echo "kubeadm needs systemd to run the kubelet, and this host has none (/run/systemd/system)"
  command -v openssl >/dev/null || echo "openssl is needed (the discovery hash of the cluster CA)"
  if is_master && [ ! -r "$(pki ca.key)" ]; then echo "missing $(pki ca.key): a master signs with the cluster CA"; fi
  if [ -e /etc/kubernetes ] && ! ours /etc/kubernetes && [ -n "$(ls -A /etc/kubernetes)" ]; then
    echo "/etc/kubernetes holds another cluster's files"
  elif [ ! -f /etc/kubernetes/kubelet.conf ]; then
    for p in "${K8S_PORTS[@]}"; do if port_open 127.0.0.1 "$p"; then echo "port $p is in use"; fi; done
  fi
  token_problem
}

fill_config() {  # fill_config SRC DEST: the rendered kubeadm config with the derived values, 0600 (it holds the token)
  local tmp
  tmp=$(mktemp)
  sed -e "s|@TOKEN@|$(kube_token)|" -e "s|@CERT_KEY@|$(derive kubeadm-certificate-key)|" -e "s|@CA_HASH@|$(ca_hash)|" \
    "$1" > "$tmp"
  put_file "$tmp" "$2" 0600
  rm -f "$tmp"
}

install_kubernetes() {  # binaries, crictl's settings, the kubelet unit (kubeadm starts it), sysctls, data dirs
  local b tmp
  for b in "${K8S_BINS[@]}"; do put_file "$ROOTFS/bin/$b" "$BIN_DIR/$b" 0755; done
  tmp=$(mktemp)
  printf 'runtime-endpoint: %s\nimage-endpoint: %s\n' "$CRI_SOCKET" "$CRI_SOCKET" > "$tmp"
  put_file "$tmp" /etc/crictl.yaml 0644
  rm -f "$tmp"
  PUT_CHANGED=0
  put_file "$ROOTFS/etc/kubelet.service" /etc/systemd/system/kubelet.service 0644
  if [ "$PUT_CHANGED" = 1 ]; then systemctl daemon-reload && systemctl enable kubelet >/dev/null 2>&1; fi
  set_sysctl net.ipv4.ip_forward 1
  claim_dir /etc/kubernetes
  own_data /var/lib/kubelet 0700
  if is_master; then own_data /var/lib/etcd 0700; fi
}

admin_kubeconfig() {  # let root's kubectl reach the cluster on a master (left alone when root has its own)
  if [ -e /root/.kube/config ] && ! ours /root/.kube/config; then log "kept root's own /root/.kube/config"; return 0; fi
  put_file /etc/kubernetes/admin.conf /root/.kube/config 0600
}

kube_join() {  # kubeadm join this host (a master joins the control plane); idempotent
  if [ -f /etc/kubernetes/kubelet.conf ]; then log "$HOST_IP already joined the cluster"; return 0; fi
  fill_config "$ROOTFS/etc/kubeadm-join.yaml" "$CONF_DIR/kubeadm-join.yaml"
  log "joining the cluster at $apiServerDomain:6443 as a $(is_master && echo master || echo node)"
  "$BIN_DIR/kubeadm" join --config "$CONF_DIR/kubeadm-join.yaml"
  if is_master; then admin_kubeconfig; fi
}

kube_reset() {  # kubeadm reset (a master leaves etcd), the kubelet stopped and its unit disabled
  if [ -x "$BIN_DIR/kubeadm" ] && [ -d /etc/kubernetes ] && ours /etc/kubernetes; then
    "$BIN_DIR/kubeadm" reset -f --cri-socket "$CRI_SOCKET" || log "kubeadm reset failed; removing its files anyway"
    find /etc/kubernetes -mindepth 1 -delete
  fi
  if ours /etc/systemd/system/kubelet.service; then
    systemctl disable --now kubelet >/dev/null 2>&1 || true
    rm -f /etc/systemd/system/kubelet.service
    systemctl daemon-reload || true
  fi
  unmount_below /var/lib/kubelet
  rm -f /etc/cni/net.d/*.conflist.kubeadm-reset 2>/dev/null || true
}
