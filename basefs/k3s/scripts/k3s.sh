#!/bin/bash
# k3s for the k3s cluster image (sourced after common.sh, never run): install (binary, config, registry mirror,
# airgap images, the join token derived from the cluster token), servers and agents as services, removal.
# shellcheck disable=SC2034,SC2154  # variables read by the scripts that source this file; common.sh sets the rest
k3sData="${k3sData:-/var/lib/rancher/k3s}"
K3S_TOKEN_FILE="$CONF_DIR/k3s-token"

k3s_problems() {  # print why this host cannot take k3s (nothing when it can)
  local f p
  [ -x "$ROOTFS/bin/k3s" ] || echo "missing $ROOTFS/bin/k3s (the image's bin/)"
  [ ! -e "$BIN_DIR/k3s" ] || ours "$BIN_DIR/k3s" || echo "$BIN_DIR/k3s exists and is not this cluster's"
  for f in k3s-config.yaml registries.yaml; do rendered_problem "$f"; done
  if foreign_data "$k3sData"; then echo "$k3sData holds another k3s' data"; fi
  if [ -e /etc/rancher/k3s ] && ! ours /etc/rancher/k3s; then echo "/etc/rancher/k3s exists and is not this cluster's"; fi
  if ! service_running k3s k3s && ! service_running k3s-agent k3s; then
    for p in 6443 10250; do if port_open 127.0.0.1 "$p"; then echo "port $p is in use"; fi; done
  fi
  token_problem
}

install_k3s() {  # the binary, its settings and token, the airgap images; idempotent
  local f tmp
  put_file "$ROOTFS/bin/k3s" "$BIN_DIR/k3s" 0755
  put_file "$ROOTFS/etc/k3s-config.yaml" /etc/rancher/k3s/config.yaml 0600
  put_file "$ROOTFS/etc/registries.yaml" /etc/rancher/k3s/registries.yaml 0644
  tmp=$(mktemp)
  derive k3s-token > "$tmp"
  put_file "$tmp" "$K3S_TOKEN_FILE" 0600
  rm -f "$tmp"
  own_data "$k3sData" 0755
  own_data /var/lib/kubelet 0700
  own_data /run/k3s 0711
  for f in "$ROOTFS"/images/*.tar*; do
    if [ -f "$f" ]; then put_file "$f" "$k3sData/agent/images/$(basename "$f")" 0644; fi
  done
}

start_k3s_server() {  # start_k3s_server ARG...: k3s server as service k3s, waiting for its API port
  start_service k3s "$BIN_DIR/k3s" server --token-file "$K3S_TOKEN_FILE" "$@"
  wait_until "k3s' API server answers on $HOST_IP:6443" 180 k3s port_open "$HOST_IP" 6443
}

wait_for_master0() { wait_until "master0's API server answers on $MASTER0:6443" 180 k3s port_open "$MASTER0" 6443; }

remove_k3s() {  # stop k3s with everything it started on this host (containers, mounts, links)
  local link
  stop_service k3s k3s
  stop_service k3s-agent k3s
  kill_in_host "$k3sData/data/*"
  unmount_below /run/k3s /var/lib/kubelet "$k3sData"
  for link in cni0 flannel.1 flannel-v6.1; do ip link delete "$link" 2>/dev/null || true; done
}
