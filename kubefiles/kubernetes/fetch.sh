#!/usr/bin/env bash
# Assemble this build context: the basefs layers base, containerd and kubernetes, and the binaries downloaded
# for VERSION and ARCH (kubeadm, kubelet, kubectl, crictl, containerd, runc, the registry), plus the control
# plane's image list (images/shim/imageList, from kubeadm). Without a network it fails, naming the URL.
# Usage: kubefiles/kubernetes/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2 amd64
#   env K8S_URL (https://dl.k8s.io/release): a mirror of Kubernetes' downloads; GITHUB_URL, REGISTRY_VERSION:
#   see basefs/base/fetch-lib.sh; CONTAINERD_VERSION, RUNC_VERSION, CRICTL_VERSION: the other binaries' versions.
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"
start_downloads "$@"
k8s=${K8S_URL:-https://dl.k8s.io/release}
containerd=${CONTAINERD_VERSION:-1.7.13} runc=${RUNC_VERSION:-v1.1.12} crictl=${CRICTL_VERSION:-v1.28.0}
gh=$GITHUB_URL
for b in kubeadm kubelet kubectl; do download "$k8s/$VERSION/bin/linux/$ARCH/$b" "$DL/bin/$b"; done
download "$gh/containerd/containerd/releases/download/v$containerd/containerd-$containerd-linux-$ARCH.tar.gz" "$DL/containerd.tgz"
download "$gh/opencontainers/runc/releases/download/$runc/runc.$ARCH" "$DL/bin/runc"
download "$gh/kubernetes-sigs/cri-tools/releases/download/$crictl/crictl-$crictl-linux-$ARCH.tar.gz" "$DL/crictl.tgz"
download_registry
tar -C "$DL/bin" --strip-components=1 -xzf "$DL/containerd.tgz" bin/containerd bin/ctr bin/containerd-shim-runc-v2
tar -C "$DL/bin" -xzf "$DL/crictl.tgz" crictl
chmod 0755 "$DL"/bin/*
[ "$ARCH" = "$(arch_of_machine)" ] || fetch_die "kubeadm for $ARCH cannot run here to list the control plane's images; fetch on an $ARCH machine"
images=$("$DL/bin/kubeadm" config images list --kubernetes-version "$VERSION") || fetch_die "kubeadm could not list the images of $VERSION"
mkdir -p "$DL/images/shim"
{ echo "# the control plane's images for $VERSION (kubeadm config images list), bundled into registry/"; echo "$images"; } \
  > "$DL/images/shim/imageList"
place_downloads "$ctx" base containerd kubernetes
