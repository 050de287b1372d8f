#!/bin/bash
# containerd for the cluster images that run it themselves (sourced after common.sh, never run): checks,
# install (binaries, config and registry hosts rendered from etc/containerd/*.tmpl, the snapshotter this
# host can use), start, and removal that leaves no container, shim or mount behind.
# shellcheck disable=SC2034,SC2154  # variables read by the scripts that source this file; common.sh sets the rest
CONTAINERD_SOCK=/run/containerd/containerd.sock
CONTAINERD_STATE=/run/containerd
CONTAINERD_BINS=(containerd ctr containerd-shim-runc-v2 runc)
criData="${criData:-/var/lib/containerd}"

containerd_problems() {  # print one line per reason this host cannot take containerd (nothing when it can)
  local b f
  for b in "${CONTAINERD_BINS[@]}"; do
    [ -x "$ROOTFS/bin/$b" ] || echo "missing $ROOTFS/bin/$b (the image's bin/)"
    [ ! -e "$BIN_DIR/$b" ] || ours "$BIN_DIR/$b" || echo "$BIN_DIR/$b exists and is not this cluster's"
  done
  for f in config.toml hosts.toml mirror.toml; do rendered_problem "containerd/$f"; done
  case "$criData" in /*) ;; *) echo "criData must be an absolute path: $criData" ;; esac
  if [ -z "$(pid_of containerd containerd)" ] && [ -S "$CONTAINERD_SOCK" ]; then echo "another containerd serves $CONTAINERD_SOCK"; fi
  if foreign_data "$criData"; then echo "$criData holds another containerd's data"; fi
}

overlay_works() {  # overlay_works DIR: true when an overlay mount with its upper directory in DIR works
  local t rc=0
  t=$(mktemp -d "$1/.overlay-probe.XXXXXX")
  mkdir "$t/lower" "$t/upper" "$t/work" "$t/merged"
  mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null || rc=1
  [ "$rc" = 1 ] || umount "$t/merged"
  rm -rf "$t"
  return "$rc"
}

install_containerd() {  # install and start containerd (restarted when its config changed); idempotent
  local b tmp snapshotter=native changed
  for b in "${CONTAINERD_BINS[@]}"; do put_file "$ROOTFS/bin/$b" "$BIN_DIR/$b" 0755; done
  PUT_CHANGED=0
  put_file "$ROOTFS/etc/containerd/config.toml" "$CONF_DIR/containerd.toml" 0644
  install_registry_hosts
  changed=$PUT_CHANGED
  own_data "$criData" 0711
  # ctr reads these variables; overlayfs only where the data directory can hold its upper layers
  if overlay_works "$criData"; then snapshotter=overlayfs; fi
  tmp=$(mktemp)
  printf '%s\n' "# ctr's settings on this host, written by init.sh; use: set -a; . $CONF_DIR/containerd.env; set +a" \
    "CONTAINERD_ADDRESS=$CONTAINERD_SOCK" "CONTAINERD_NAMESPACE=imgbuild" "CONTAINERD_SNAPSHOTTER=$snapshotter" > "$tmp"
  put_file "$tmp" "$CONF_DIR/containerd.env" 0644
  rm -f "$tmp"
  if [ -n "$(pid_of containerd containerd)" ] && [ "$changed" = 1 ]; then
    log "containerd's config changed: restarting it"
    stop_daemon containerd containerd
  fi
  if [ -n "$(pid_of containerd containerd)" ]; then log "containerd already runs (pid $(pid_of containerd containerd))"; return 0; fi
  own_data "$CONTAINERD_STATE" 0711
  PATH="$BIN_DIR:$PATH" start_daemon containerd "$BIN_DIR/containerd" --config "$CONF_DIR/containerd.toml"
  wait_until "containerd answers on $CONTAINERD_SOCK" 30 containerd "$BIN_DIR/ctr" --address "$CONTAINERD_SOCK" version
}

_stop_containers() {  # kill every task containerd runs, so no shim or mount outlives it
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

remove_containerd() {  # stop containerd with its containers, shims and mounts (files go with the manifest)
  if [ -n "$(pid_of containerd containerd)" ]; then _stop_containers; fi
  stop_daemon containerd containerd
  kill_in_host "$BIN_DIR/containerd-shim-runc-v2"
  unmount_below "$criData" "$CONTAINERD_STATE"
}
