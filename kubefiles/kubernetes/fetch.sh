#!/usr/bin/env bash
# Assemble this build context: the basefs layers base, containerd and kubernetes, and the binaries downloaded
# for VERSION and ARCH (kubeadm, kubelet, kubectl, crictl, containerd, runc, the registry), plus the control
# plane's image list (images/shim/imageList, from kubeadm). Without a network it fails, naming the URL.
# Usage: kubefiles/kubernetes/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2 amd64
#   env K8S_URL (https://dl.k8s.io/release), GITHUB_URL (https://github.com): mirrors of the downloads;
#   CONTAINERD_VERSION, RUNC_VERSION, CRICTL_VERSION, REGISTRY_VERSION: the other binaries' versions.
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"
version=${1:-}
arch=${2:-$(arch_of_machine)}
check_version_arch "$version" "$arch"
k8s=${K8S_URL:-https://dl.k8s.io/release}
gh=${GITHUB_URL:-https://github.com}
containerd=${CONTAINERD_VERSION:-1.7.13} runc=${RUNC_VERSION:-v1.1.12} crictl=${CRICTL_VERSION:-v1.28.0}
registry=${REGISTRY_VERSION:-2.8.3}

dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
for b in kubeadm kubelet kubectl; do download "$k8s/$version/bin/linux/$arch/$b" "$dl/bin/$b"; done
download "$gh/containerd/containerd/releases/download/v$containerd/containerd-$containerd-linux-$arch.tar.gz" "$dl/containerd.tgz"
download "$gh/opencontainers/runc/releases/download/$runc/runc.$arch" "$dl/bin/runc"
download "$gh/kubernetes-sigs/cri-tools/releases/download/$crictl/crictl-$crictl-linux-$arch.tar.gz" "$dl/crictl.tgz"
download "$gh/distribution/distribution/releases/download/v$registry/registry_${registry}_linux_$arch.tar.gz" "$dl/registry.tgz"
tar -C "$dl/bin" --strip-components=1 -xzf "$dl/containerd.tgz" bin/containerd bin/ctr bin/containerd-shim-runc-v2
tar -C "$dl/bin" -xzf "$dl/crictl.tgz" crictl
tar -C "$dl" -xzf "$dl/registry.tgz" registry && mv "$dl/registry" "$dl/bin/docker-registry"
chmod 0755 "$dl"/bin/*
[ "$arch" = "$(arch_of_machine)" ] || fetch_die "kubeadm for $arch cannot run here to list the control plane's images; fetch on an $arch machine"
images=$("$dl/bin/kubeadm" config images list --kubernetes-version "$version") || fetch_die "kubeadm could not list the images of $version"

assemble "$ctx" base containerd kubernetes
cp "$dl"/bin/* "$ctx/bin/"
mkdir -p "$ctx/images/shim"
{ echo "# the control plane's images for $version (kubeadm config images list), bundled into registry/"; echo "$images"; } \
  > "$ctx/images/shim/imageList"
echo "fetch.sh: $ctx ready for kubernetes $version/$arch: bin/ ($(find "$ctx/bin" -type f -printf '%f ' | sort)), $(wc -l <<< "$images") images"
