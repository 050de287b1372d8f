#!/usr/bin/env bash
# Assemble this build context: the basefs layers base (with the registry hosts files) and k0s, the k0s
# binary and its airgap bundle for VERSION and ARCH, and the registry. Without a network it fails, naming the URL.
# Usage: kubefiles/k0s/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2+k0s.0 amd64
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
release="$gh/k0sproject/k0s/releases/download/${version//+/%2B}"

dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
download "$release/k0s-$version-$arch" "$dl/bin/k0s"
download "$release/k0s-airgap-bundle-$version-$arch" "$dl/images/k0s-airgap-bundle-$arch.tar"
download "$gh/distribution/distribution/releases/download/v$registry/registry_${registry}_linux_$arch.tar.gz" "$dl/registry.tgz"
tar -C "$dl" -xzf "$dl/registry.tgz" registry && mv "$dl/registry" "$dl/bin/docker-registry"
chmod 0755 "$dl"/bin/*

assemble "$ctx" base k0s
rm -rf "${ctx:?}/images" && mkdir -p "$ctx/images"
cp "$dl"/bin/* "$ctx/bin/"
cp "$dl"/images/* "$ctx/images/"
echo "fetch.sh: $ctx ready for k0s $version/$arch: bin/k0s, bin/docker-registry, images/ (airgap)"
