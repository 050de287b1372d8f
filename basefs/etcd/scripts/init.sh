#!/bin/bash
# init: install etcd and containerd on this host and start containerd with the cluster registry as its
# mirror; on master0 start etcd as a new one-member cluster (the other masters join in the Join phase).
# Idempotent: what is installed and equal is left alone, running daemons keep running unless their
# config changed, and a master whose etcd data exists restarts with it.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
shared_dirs
for b in etcd etcdctl containerd ctr containerd-shim-runc-v2 runc; do
  put_file "$ROOTFS/bin/$b" "$BIN_DIR/$b" 0755
done

PUT_CHANGED=0
put_file "$ROOTFS/etc/containerd/config.toml" "$CONF_DIR/containerd.toml" 0644
put_file "$ROOTFS/etc/containerd/hosts.toml" "$CONF_DIR/certs.d/$registryDomain:$registryPort/hosts.toml" 0644
put_file "$ROOTFS/etc/containerd/mirror.toml" "$CONF_DIR/certs.d/_default/hosts.toml" 0644
containerd_changed=$PUT_CHANGED
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{ cat "$ROOTFS/etc/etcdctl.env"; echo "ETCDCTL_ENDPOINTS=$(masters_endpoints "")"; } > "$tmp"
put_file "$tmp" "$CONF_DIR/etcdctl.env" 0644
# ctr's settings (ctr reads these variables); overlayfs only where the data directory can hold its upper layers
own_data "$criData" 0711
snapshotter=native
if overlay_works "$criData"; then snapshotter=overlayfs; fi
printf '%s\n' "# ctr's settings on this host, written by init.sh; use: set -a; . $CONF_DIR/containerd.env; set +a" \
  "CONTAINERD_ADDRESS=$CONTAINERD_SOCK" "CONTAINERD_NAMESPACE=imgbuild" "CONTAINERD_SNAPSHOTTER=$snapshotter" > "$tmp"
put_file "$tmp" "$CONF_DIR/containerd.env" 0644
PUT_CHANGED=0
put_file "$ROOTFS/etc/etcd.env" "$CONF_DIR/etcd.env" 0644
etcd_changed=$PUT_CHANGED

if [ -n "$(pid_of containerd containerd)" ] && [ "$containerd_changed" = 1 ]; then
  log "containerd's config changed: restarting it"
  stop_daemon containerd containerd
fi
if [ -z "$(pid_of containerd containerd)" ]; then
  own_data "$CONTAINERD_STATE" 0711
  PATH="$BIN_DIR:$PATH" start_daemon containerd "$BIN_DIR/containerd" --config "$CONF_DIR/containerd.toml"
  wait_until "containerd answers on $CONTAINERD_SOCK" 30 containerd "$BIN_DIR/ctr" --address "$CONTAINERD_SOCK" version
else
  log "containerd already runs (pid $(pid_of containerd containerd))"
fi

if is_master; then
  if [ -n "$(pid_of etcd etcd)" ] && [ "$etcd_changed" = 1 ]; then
    log "etcd's settings changed: restarting it"
    stop_daemon etcd etcd
  fi
  if [ -n "$(pid_of etcd etcd)" ]; then
    log "etcd already runs (pid $(pid_of etcd etcd))"
  elif [ -d "$etcdData/member" ]; then
    log "etcd's data exists: restarting the member"
    start_etcd
  elif is_master0; then
    log "bootstrapping etcd: a new one-member cluster on master0 $HOST_IP"
    start_etcd --initial-cluster "$HOST_IP=$(peer_url "$HOST_IP")" --initial-cluster-state new
  else
    log "etcd joins in the Join phase (join-master.sh)"
  fi
fi
log "init done on $HOST_IP"
