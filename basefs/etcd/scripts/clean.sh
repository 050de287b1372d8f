#!/bin/bash
# clean: undo init and join on this host. A master leaves the etcd cluster first (best effort, bounded), then
# etcd and containerd stop (containers killed, their mounts undone), their data goes, and every file and
# directory init put here is removed. Safe to run twice, or on a host where init never ran.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=etcd.sh
source "$(dirname "$0")/etcd.sh"

leave_cluster() {  # remove this member, when others remain to take the change
  local id others reply
  [ -n "${SEALOS_SYS_PKI:-}" ] && [ -x "$BIN_DIR/etcdctl" ] || return 0
  others=$(masters_endpoints "${HOST_IP:-}")
  [ -n "$others" ] || return 0
  id=$(ectl --endpoints "$(client_url 127.0.0.1)" member list 2>/dev/null \
       | awk -F', ' -v u="$(peer_url "${HOST_IP:-}")" '$4 == u {print $1}') || true
  [ -n "$id" ] || return 0
  if reply=$(ectl --endpoints "$others" member remove "$id" 2>&1); then
    log "left the etcd cluster (member $id)"
  else
    log "stays in the etcd cluster's member list (could not leave: $(tail -n1 <<< "$reply"))"
  fi
}

if [ -n "$(pid_of etcd etcd)" ]; then leave_cluster; fi  # also when MASTERS no longer names this host
stop_daemon etcd etcd
remove_containerd
empty_data
undo_manifest
drop_shared_dirs
log "clean done on ${HOST_IP:-this host}"
