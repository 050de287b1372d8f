#!/bin/bash
# etcd for the etcd cluster image (sourced after common.sh, never run): URLs, etcdctl with the cluster's
# TLS, and starting a member with the settings rendered from etc/etcd.env.tmpl.
# shellcheck disable=SC2034,SC2154  # variables read by the scripts that source this file; common.sh sets the rest
CLIENT_PORT=2379
PEER_PORT=2380
etcdData="${etcdData:-/var/lib/etcd}"

client_url() { echo "https://$1:$CLIENT_PORT"; }
peer_url() { echo "https://$1:$PEER_PORT"; }

ectl() {  # etcdctl with this host's certificate (the cluster CA trusts it); pass --endpoints
  ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$(pki ca.crt)" --cert "$(pki host.crt)" --key "$(pki host.key)" \
    --dial-timeout=3s --command-timeout=5s "$@"
}

masters_endpoints() {  # masters_endpoints [EXCEPT]: client URLs of the masters, comma-separated
  local ip out=()
  for ip in $(masters); do [ "$ip" = "${1:-}" ] || out+=("$(client_url "$ip")"); done
  (IFS=,; echo "${out[*]}")
}

local_etcd_healthy() { ectl --endpoints "$(client_url 127.0.0.1)" endpoint health; }

start_etcd() {  # start_etcd [FLAG...]: start etcd with $CONF_DIR/etcd.env, wait until healthy
  own_data "$etcdData" 0700
  (
    load_env "$CONF_DIR/etcd.env"
    start_daemon etcd "$BIN_DIR/etcd" "$@"
  )
  wait_until "etcd on $HOST_IP is healthy" 60 etcd local_etcd_healthy
}
