#!/bin/bash
# init: install containerd (the cluster registry as its mirror) and etcd on this host; on master0 start etcd
# as a new one-member cluster (the other masters join in the Join phase, join-master.sh).
# Idempotent: what is installed and equal is left alone, running daemons keep running unless their
# settings changed, and a master whose etcd data exists restarts with it.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=etcd.sh
source "$(dirname "$0")/etcd.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
shared_dirs
install_containerd
for b in etcd etcdctl; do put_file "$ROOTFS/bin/$b" "$BIN_DIR/$b" 0755; done
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{ cat "$ROOTFS/etc/etcdctl.env"; echo "ETCDCTL_ENDPOINTS=$(masters_endpoints "")"; } > "$tmp"
put_file "$tmp" "$CONF_DIR/etcdctl.env" 0644
PUT_CHANGED=0
put_file "$ROOTFS/etc/etcd.env" "$CONF_DIR/etcd.env" 0644
etcd_changed=$PUT_CHANGED

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
