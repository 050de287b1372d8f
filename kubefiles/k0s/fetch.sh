#!/usr/bin/env bash
# Assemble this build context: the basefs layers base (with the registry hosts files) and k0s, the k0s binary
# and its airgap bundle for VERSION and ARCH, and the registry. Without a network it fails, naming the URL.
# Usage: kubefiles/k0s/fetch.sh VERSION [ARCH]      e.g. fetch.sh v1.28.2+k0s.0 amd64
#   env GITHUB_URL, REGISTRY_VERSION: see basefs/base/fetch-lib.sh
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"
start_downloads "$@"
release="$GITHUB_URL/k0sproject/k0s/releases/download/${VERSION//+/%2B}"
download "$release/k0s-$VERSION-$ARCH" "$DL/bin/k0s"
download "$release/k0s-airgap-bundle-$VERSION-$ARCH" "$DL/images/k0s-airgap-bundle-$ARCH.tar"
download_registry
place_downloads "$ctx" base k0s
