#!/bin/bash
# check: fail early, saying why, when this host cannot take the cluster: the engine's env, PKI and cluster
# token, the image's binaries and rendered files, systemd for the kubelet, and nothing of someone else's in
# the way (binaries, containerd, /etc/kubernetes, ports). A host where this cluster runs passes.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=containerd.sh
source "$(dirname "$0")/containerd.sh"
# shellcheck source=kubernetes.sh
source "$(dirname "$0")/kubernetes.sh"

need_env HOST_IP MASTER0 SEALOS_SYS_PKI
mapfile -t problems < <(pki_problems; containerd_problems; kube_problems)
report_problems "${problems[@]}"
