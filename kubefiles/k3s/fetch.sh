#!/usr/bin/env bash
# Assemble this build context: the basefs layers base and k3s, the k3s binary and its airgap images for VERSION
# and ARCH, and the registry. Without a network it fails, naming the URL it could not download.
# Usage: kubefiles/k3s/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2+k3s1 amd64
#   env GITHUB_URL, REGISTRY_VERSION: see basefs/base/fetch-lib.sh
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"
start_downloads "$@"
release="$GITHUB_URL/k3s-io/k3s/releases/download/${VERSION//+/%2B}"
binary=k3s
[ "$ARCH" = amd64 ] || binary=k3s-$ARCH
download "$release/$binary" "$DL/bin/k3s"
download "$release/k3s-airgap-images-$ARCH.tar.zst" "$DL/images/k3s-airgap-images-$ARCH.tar.zst"
download_registry
place_downloads "$ctx" base k3s
