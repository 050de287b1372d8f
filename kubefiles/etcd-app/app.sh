#!/bin/bash
# The etcd demo application, run by the engine on master0 in this image's workdir (its CMD): writes keys to
# the cluster's etcd and reads them back from every member, then pulls the bundled hello image through
# containerd from the cluster registry and runs it with runc where the machine allows (HELLO_RUN: auto says
# so and stops at the pull when runc cannot run it here, always fails then, never stops at the pull).
set -euo pipefail
PATH=/usr/local/bin:$PATH
log() { echo "[etcd-app] $*"; }
die() { echo "[etcd-app] error: $*" >&2; exit 1; }

for conf in /etc/imgbuild-cluster/etcdctl.env /etc/imgbuild-cluster/containerd.env; do
  [ -f "$conf" ] || die "$conf is missing: the etcd rootfs image's init installs it (run that image first)"
  set -a
  # shellcheck source=/dev/null
  . "$conf"
  set +a
done
prefix=${APP_KEY_PREFIX:-/imgbuild/demo}
ref="${registryDomain:-sealos.hub}:${registryPort:-5000}/${HELLO_IMAGE:-demo/hello:v1}"
mode=${HELLO_RUN:-auto}
case "$mode" in auto | always | never) ;; *) die "HELLO_RUN must be auto, always or never, not '$mode'" ;; esac

etcdctl put "$prefix/greeting" "hello from cluster ${SEALOS_SYS_CLUSTER_NAME:-?}" >/dev/null
etcdctl put "$prefix/written-by" "${HOST_IP:-$(hostname)}" >/dev/null
log "wrote $prefix/greeting and $prefix/written-by"
IFS=, read -r -a endpoints <<< "$ETCDCTL_ENDPOINTS"
for ep in "${endpoints[@]}"; do
  value=$(env -u ETCDCTL_ENDPOINTS etcdctl --endpoints "$ep" get --print-value-only "$prefix/greeting")
  log "read back from $ep: $value"
done

log "pulling $ref through containerd (snapshotter $CONTAINERD_SNAPSHOTTER)"
ctr images pull --hosts-dir /etc/imgbuild-cluster/certs.d "$ref" >/dev/null
digest=$(ctr images ls "name==$ref" | awk 'NR == 2 {print $3}')
[ -n "$digest" ] || die "containerd does not list $ref after pulling it"
etcdctl put "$prefix/hello-image" "$ref@$digest" >/dev/null
log "pulled $ref@$digest"

if [ "$mode" = never ]; then log "HELLO_RUN=never: stopping at the pull"; exit 0; fi
if out=$(ctr run --rm "$ref" "hello-$$" 2>&1); then
  log "runc ran it: $out"
  etcdctl put "$prefix/hello-ran" "$out" >/dev/null
elif [ "$mode" = always ]; then
  die "runc could not run $ref: $out"
else
  log "runc cannot run a container on this machine ($(tail -n1 <<< "$out")); stopping at the pull"
fi
