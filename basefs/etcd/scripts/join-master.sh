#!/bin/bash
# join-master: add this master to the running etcd cluster (etcdctl member add against the other masters),
# then start etcd with --initial-cluster-state existing. A member that already runs, or whose data exists,
# is left as it is or restarted; a member added earlier that never started is started, not added twice.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=etcd.sh
source "$(dirname "$0")/etcd.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
if is_master0; then log "master0 bootstrapped the cluster in init; nothing to join"; exit 0; fi
[ -f "$CONF_DIR/etcd.env" ] || die "init has not run on $HOST_IP (no $CONF_DIR/etcd.env)"
if [ -n "$(pid_of etcd etcd)" ]; then log "etcd already runs here (pid $(pid_of etcd etcd))"; exit 0; fi
if [ -d "$etcdData/member" ]; then log "etcd's data exists: restarting the member"; start_etcd; exit 0; fi

others=$(masters_endpoints "$HOST_IP")
me=$(peer_url "$HOST_IP")
members() { ectl --endpoints "$others" member list; }
wait_until "the cluster answers on $others" 30 etcd members
is_member() { members | awk -F', ' -v u="$me" '$4 == u {f = 1} END {exit !f}'; }
# etcd refuses a new member until every member has been connected for 5 s ("unhealthy cluster"): retry
if is_member; then log "member $HOST_IP was added before; starting it"; fi
reply="" deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  is_member && break
  if reply=$(ectl --endpoints "$others" member add "$HOST_IP" --peer-urls="$me" 2>&1); then
    log "added member $HOST_IP ($me)"
    break
  fi
  case "$reply" in *"unhealthy cluster"*) sleep 1 ;; *) die "etcdctl member add $HOST_IP failed: $(tail -n1 <<< "$reply")" ;; esac
done
is_member || die "the cluster did not take member $HOST_IP within 60 s${reply:+: $(tail -n1 <<< "$reply")}"
# every member by its peer URL; an unstarted member has no name yet: members are named by address
initial=$(members | awk -F', ' '{n = $3; if (n == "") {n = $4; sub(/^https:\/\//, "", n); sub(/:[0-9]+$/, "", n)}
  printf "%s%s=%s", (NR > 1 ? "," : ""), n, $4}')
log "joining with initial cluster $initial"
start_etcd --initial-cluster "$initial" --initial-cluster-state existing
