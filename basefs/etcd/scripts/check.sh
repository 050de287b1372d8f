#!/bin/bash
# check: fail early, saying why, when this host cannot take the cluster: the engine's env and PKI, the
# image's binaries and rendered files, and nothing of someone else's in the way (binaries, containerd, ports,
# data). A host where this cluster already runs passes (a second run is harmless).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=etcd.sh
source "$(dirname "$0")/etcd.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
mapfile -t problems < <(
  pki_problems
  containerd_problems
  for b in etcd etcdctl; do
    [ -x "$ROOTFS/bin/$b" ] || echo "missing $ROOTFS/bin/$b (the image's bin/)"
    [ ! -e "$BIN_DIR/$b" ] || ours "$BIN_DIR/$b" || echo "$BIN_DIR/$b exists and is not this cluster's"
  done
  for f in etcd.env etcdctl.env; do rendered_problem "$f"; done
  case "$etcdData" in /*) ;; *) echo "etcdData must be an absolute path: $etcdData" ;; esac
  if is_master && [ -z "$(pid_of etcd etcd)" ]; then
    for port in "$CLIENT_PORT" "$PEER_PORT"; do
      if port_open "$HOST_IP" "$port" || port_open 127.0.0.1 "$port"; then echo "port $port is in use"; fi
    done
    if foreign_data "$etcdData"; then echo "$etcdData holds another etcd's data"; fi
  fi
)
report_problems "${problems[@]}"
