#!/usr/bin/env bash
# Assemble this build context as real cluster images' fetch.sh do: the basefs layers base, containerd and etcd
# (scripts/ and etc/*.tmpl) and the binaries in bin/. Real images download their binaries; there is no network
# here, so they are copied from this machine's Debian packages, and a missing one fails naming the package.
# Usage: kubefiles/etcd/fetch.sh   (env FETCH_PATH, BASEFS: see basefs/base/fetch-lib.sh)
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../basefs/base/fetch-lib.sh
source "${BASEFS:-$ctx/../../basefs}/base/fetch-lib.sh"

locate_bins etcd=etcd-server etcdctl=etcd-client containerd=containerd ctr=containerd \
  containerd-shim-runc-v2=containerd runc=runc docker-registry=docker-registry
assemble "$ctx" base containerd etcd
install_found "$ctx"
echo "fetch.sh: $ctx ready: bin/ ($("$ctx/bin/etcd" --version | head -n1), $("$ctx/bin/containerd" --version | awk '{print "containerd " $3}')), scripts/, etc/"
