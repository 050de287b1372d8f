#!/bin/bash
# check: fail early, saying why, when this host cannot take the cluster: the engine's env and PKI, the
# image's binaries and rendered files, and nothing of someone else's in the way (binaries, containerd, ports,
# data). A host where this cluster already runs passes (a second run is harmless).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
problems=()
for f in ca.crt host.crt host.key; do [ -r "$(pki "$f")" ] || problems+=("missing $(pki "$f") (the engine's PKI)"); done
for b in etcd etcdctl containerd ctr containerd-shim-runc-v2 runc; do
  [ -x "$ROOTFS/bin/$b" ] || problems+=("missing $ROOTFS/bin/$b (the image's bin/)")
  [ ! -e "$BIN_DIR/$b" ] || ours "$BIN_DIR/$b" || problems+=("$BIN_DIR/$b exists and is not this cluster's")
done
for f in etcd.env etcdctl.env containerd/config.toml containerd/hosts.toml containerd/mirror.toml; do
  if [ ! -f "$ROOTFS/etc/$f" ]; then problems+=("missing $ROOTFS/etc/$f (rendered from $f.tmpl)")
  elif grep -q -e '{{' -e '<no value>' "$ROOTFS/etc/$f"; then problems+=("$ROOTFS/etc/$f is not fully rendered")
  fi
done
for d in "$criData" "$etcdData"; do case "$d" in /*) ;; *) problems+=("data directory must be absolute: $d") ;; esac; done
if [ -z "$(pid_of containerd containerd)" ] && [ -S "$CONTAINERD_SOCK" ]; then
  problems+=("another containerd serves $CONTAINERD_SOCK")
fi
if foreign_data "$criData"; then problems+=("$criData holds another containerd's data"); fi
if is_master && [ -z "$(pid_of etcd etcd)" ]; then
  for port in "$CLIENT_PORT" "$PEER_PORT"; do
    if port_open "$HOST_IP" "$port" || port_open 127.0.0.1 "$port"; then problems+=("port $port is in use"); fi
  done
  if foreign_data "$etcdData"; then problems+=("$etcdData holds another etcd's data"); fi
fi
if [ ${#problems[@]} -gt 0 ]; then
  printf '[check] %s\n' "${problems[@]}" >&2
  die "host $HOST_IP cannot take the cluster (${#problems[@]} problem(s) above)"
fi
log "host $HOST_IP ok (roles ${HOST_ROLES:-?})"
