#!/bin/bash
# clean: undo init and join on this host. A master leaves the etcd cluster first (best effort, bounded), then
# etcd and containerd stop (containers killed, their mounts undone), their data goes, and every file and
# directory init put here is removed. Safe to run twice, or on a host where init never ran.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

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

stop_containers() {  # kill every task containerd runs, so no shim or mount outlives it
  local ns id ctr=("$BIN_DIR/ctr" --address "$CONTAINERD_SOCK" --timeout 10s)
  for ns in $("${ctr[@]}" namespaces ls -q 2>/dev/null); do
    for id in $("${ctr[@]}" -n "$ns" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      "${ctr[@]}" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" -n "$ns" containers ls -q 2>/dev/null); do
      "${ctr[@]}" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

kill_shims() {  # shims left behind in this host's network namespace (other hosts' are not ours)
  local p me
  me=$(readlink /proc/self/ns/net)
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$BIN_DIR/containerd-shim-runc-v2" ] || continue
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$me" ] || continue
    kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}

unmount_below() {  # unmount_below DIR...: every mount under DIR, deepest first
  local m
  awk '{print $2}' /proc/self/mounts | while IFS= read -r m; do
    for d in "$@"; do case "$m" in "$d"/*) echo "$m" ;; esac; done
  done | sort -r | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
}

if [ -n "$(pid_of etcd etcd)" ]; then leave_cluster; fi  # also when MASTERS no longer names this host
stop_daemon etcd etcd
if [ -n "$(pid_of containerd containerd)" ]; then stop_containers; fi
stop_daemon containerd containerd
kill_shims
unmount_below "$criData" "$CONTAINERD_STATE"
empty_data
undo_manifest
drop_shared_dirs
log "clean done on ${HOST_IP:-this host}"
