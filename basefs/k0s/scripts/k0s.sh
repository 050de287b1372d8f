#!/bin/bash
# k0s for the k0s cluster image (sourced after common.sh, never run): install (binary, config,
# the registry mirror for k0s' containerd, airgap images), the cluster CA seeded on master0, join tokens built
# on each host from values derived from the cluster token (a token is k0s' gzipped, base64 kubeconfig),
# controllers and workers as services, removal.
# shellcheck disable=SC2034,SC2154  # variables read by the scripts that source this file; common.sh sets the rest
k0sData="${k0sData:-/var/lib/k0s}"

k0s_problems() {  # print why this host cannot take k0s (nothing when it can)
  local p
  [ -x "$ROOTFS/bin/k0s" ] || echo "missing $ROOTFS/bin/k0s (the image's bin/)"
  [ ! -e "$BIN_DIR/k0s" ] || ours "$BIN_DIR/k0s" || echo "$BIN_DIR/k0s exists and is not this cluster's"
  rendered_problem k0s.yaml
  rendered_problem containerd/hosts.toml
  rendered_problem containerd/mirror.toml
  if is_master0 && [ ! -r "$(pki ca.key)" ]; then echo "missing $(pki ca.key): master0 seeds k0s with the cluster CA"; fi
  if foreign_data "$k0sData"; then echo "$k0sData holds another k0s' data"; fi
  if [ -e /etc/k0s ] && ! ours /etc/k0s; then echo "/etc/k0s exists and is not this cluster's"; fi
  if ! service_running k0scontroller k0s && ! service_running k0sworker k0s; then
    for p in 6443 9443 10250; do if port_open 127.0.0.1 "$p"; then echo "port $p is in use"; fi; done
  fi
  token_problem
}

install_k0s() {  # the binary, its settings, the registry mirror and the airgap images; idempotent
  local f
  put_file "$ROOTFS/bin/k0s" "$BIN_DIR/k0s" 0755
  put_file "$ROOTFS/etc/k0s.yaml" /etc/k0s/k0s.yaml 0644
  put_file "$ROOTFS/etc/k0s-containerd.toml" /etc/k0s/containerd.d/imgbuild-registry.toml 0644
  install_registry_hosts
  own_data "$k0sData" 0755
  own_data /run/k0s 0755
  for f in "$ROOTFS"/images/*; do
    if [ -f "$f" ]; then put_file "$f" "$k0sData/images/$(basename "$f")" 0644; fi
  done
}

token_part() {  # token_part ROLE id|secret: the derived bootstrap token id (6) or secret (16) of ROLE
  local h
  h=$(derive "k0s-$1-token")
  if [ "$2" = id ]; then echo "${h:0:6}"; else echo "${h:6:16}"; fi
}

seed_k0s() {  # master0: the cluster CA as k0s' CA, and the join tokens for its manifest deployer
  local tmp
  put_file "$(pki ca.crt)" "$k0sData/pki/ca.crt" 0644
  put_file "$(pki ca.key)" "$k0sData/pki/ca.key" 0600
  tmp=$(mktemp)
  sed -e "s|@CONTROLLER_ID@|$(token_part controller id)|g" -e "s|@CONTROLLER_SECRET@|$(token_part controller secret)|" \
      -e "s|@WORKER_ID@|$(token_part worker id)|g" -e "s|@WORKER_SECRET@|$(token_part worker secret)|" \
      "$ROOTFS/etc/k0s-join-tokens.yaml" > "$tmp"
  put_file "$tmp" "$k0sData/manifests/imgbuild-join/tokens.yaml" 0600
  rm -f "$tmp"
}

token_file() {  # token_file ROLE: write $CONF_DIR/k0s-ROLE.token, the join token k0s would print for ROLE
  local role=$1 port=6443 user=kubelet-bootstrap tmp
  if [ "$role" = controller ]; then port=9443 user=controller-bootstrap; fi
  tmp=$(mktemp)
  printf '%s\n' "apiVersion: v1" "clusters:" "- cluster:" "    server: https://$MASTER0:$port" \
    "    certificate-authority-data: $(base64 -w0 < "$(pki ca.crt)")" "  name: k0s" "contexts:" "- context:" \
    "    cluster: k0s" "    user: $user" "  name: k0s" "current-context: k0s" "kind: Config" "preferences: {}" \
    "users:" "- name: $user" "  user:" "    token: $(token_part "$role" id).$(token_part "$role" secret)" \
    | gzip -9n | base64 -w0 > "$tmp"
  put_file "$tmp" "$CONF_DIR/k0s-$role.token" 0600
  rm -f "$tmp"
}

wait_for_master0() { wait_until "master0's API server answers on $MASTER0:6443" 180 k0scontroller port_open "$MASTER0" 6443; }

remove_k0s() {  # stop k0s with everything it started on this host (its containerd, kubelet, mounts)
  stop_service k0scontroller k0s
  stop_service k0sworker k0s
  kill_in_host "$k0sData/bin/*"
  unmount_below /run/k0s "$k0sData"
}
