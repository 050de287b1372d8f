#!/usr/bin/env bash
# Assemble this build context as real cluster images' fetch.sh do: the base tree (basefs/etcd: scripts/ and
# etc/*.tmpl) and the binaries in bin/. Real images download their binaries; there is no network here, so
# they are copied from this machine's Debian packages, and a missing one fails naming the package to install.
# Usage: kubefiles/etcd/fetch.sh   (env FETCH_PATH: directories searched, default $PATH:/usr/sbin:/sbin;
#                                   BASEFS: the base tree, default basefs/etcd of this checkout)
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
basefs=${BASEFS:-$ctx/../../basefs/etcd}
search=${FETCH_PATH:-$PATH:/usr/sbin:/sbin}
bins=(etcd etcdctl containerd ctr containerd-shim-runc-v2 runc docker-registry)
declare -A pkg=([etcd]=etcd-server [etcdctl]=etcd-client [containerd]=containerd [ctr]=containerd
                [containerd-shim-runc-v2]=containerd [runc]=runc [docker-registry]=docker-registry)

find_bin() {  # find_bin NAME: the first executable NAME in $search
  local dir
  IFS=: read -r -a dirs <<< "$search"
  for dir in "${dirs[@]}"; do [ -n "$dir" ] && [ -f "$dir/$1" ] && [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }; done
  return 1
}

if [ ! -d "$basefs/scripts" ] || [ ! -d "$basefs/etc" ]; then
  echo "fetch.sh: no base tree at $basefs (set BASEFS)" >&2
  exit 1
fi
declare -A found=()
missing=()
for b in "${bins[@]}"; do
  if path=$(find_bin "$b"); then found[$b]=$path; else missing+=("$b"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  need=$(for b in "${missing[@]}"; do echo "${pkg[$b]}"; done | sort -u | tr '\n' ' ')
  echo "fetch.sh: not found on this machine: ${missing[*]} (searched $search)" >&2
  echo "fetch.sh: install them with: apt-get install $need(or run hack/install-deps.sh)" >&2
  exit 1
fi
rm -rf "${ctx:?}/bin" "${ctx:?}/scripts" "${ctx:?}/etc"
mkdir -p "$ctx/bin"
for b in "${bins[@]}"; do install -m 0755 "${found[$b]}" "$ctx/bin/$b"; done
cp -R "$basefs/scripts" "$basefs/etc" "$ctx/"
echo "fetch.sh: $ctx ready: bin/ ($("$ctx/bin/etcd" --version | head -n1), $("$ctx/bin/containerd" --version | awk '{print "containerd " $3}')), scripts/, etc/"
