#!/bin/bash
# clean: undo init and join on this host: kubeadm reset (a master leaves etcd), the kubelet disabled,
# containerd stopped with its containers, data emptied, the files init put here removed, /etc/hosts and
# sysctls as they were. Safe to run twice, or on a host where init never ran.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=kubernetes.sh
source "$(dirname "$0")/kubernetes.sh"

kube_reset
remove_containerd
empty_data
undo_manifest
restore_sysctls
drop_hosts_entries
drop_shared_dirs
log "clean done on ${HOST_IP:-this host}"
