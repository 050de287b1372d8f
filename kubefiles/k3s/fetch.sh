#!/usr/bin/env bash
# Assemble this build context: the basefs layers base and k3s, the k3s binary and its airgap images for VERSION
# and ARCH, and the registry. Without a network it fails, naming the URL it could not download.
# Usage: kubefiles/k3s/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2+k3s1 amd64
#   env GITHUB_URL (https://github.com): a mirror of the downloads; REGISTRY_VERSION: the registry's version.
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"
version=${1:-}
arch=${2:-$(arch_of_machine)}
check_version_arch "$version" "$arch"
gh=${GITHUB_URL:-https://github.com}
registry=${REGISTRY_VERSION:-2.8.3}
release="$gh/k3s-io/k3s/releases/download/${version//+/%2B}"
binary=k3s
[ "$arch" = amd64 ] || binary=k3s-$arch

dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
download "$release/$binary" "$dl/bin/k3s"
download "$release/k3s-airgap-images-$arch.tar.zst" "$dl/images/k3s-airgap-images-$arch.tar.zst"
download "$gh/distribution/distribution/releases/download/v$registry/registry_${registry}_linux_$arch.tar.gz" "$dl/registry.tgz"
tar -C "$dl" -xzf "$dl/registry.tgz" registry && mv "$dl/registry" "$dl/bin/docker-registry"
chmod 0755 "$dl"/bin/*

assemble "$ctx" base k3s
rm -rf "${ctx:?}/images" && mkdir -p "$ctx/images"
cp "$dl"/bin/* "$ctx/bin/"
cp "$dl"/images/* "$ctx/images/"
echo "fetch.sh: $ctx ready for k3s $version/$arch: bin/k3s, bin/docker-registry, images/ (airgap)"
