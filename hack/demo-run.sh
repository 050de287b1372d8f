#!/usr/bin/env bash
# The run half of the demo: the etcd cluster image and its application run on local sandbox hosts, proven
# healthy, scaled by a node, re-run without change, reset and torn down, all offline on this machine.
# Each step says what it proves. Builds the three images first when the local store lacks them.
# Usage: hack/demo-run.sh   (env IMGBUILD_HOME: the Home to use, default .demo/home; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
IB="$PWD/.venv/bin/imgbuild"
PY="$PWD/.venv/bin/python"
export IMGBUILD_HOME="${IMGBUILD_HOME:-$PWD/.demo/home}"
HELLO=imgbuild.local/demo/hello:v1
ETCD=imgbuild.local/demo/etcd:v3.4
APP=imgbuild.local/demo/etcd-app:v1
SB=etcd-demo        # the sandbox; its hosts are etcd-demo-1 .. etcd-demo-4
CL=etcd-demo        # the cluster
ENVS='set -a; . /etc/imgbuild-cluster/etcdctl.env; . /etc/imgbuild-cluster/containerd.env; set +a'
T0=$SECONDS

step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" "$((SECONDS - T0))"; }
run() { printf '$ imgbuild %s\n' "$*"; "$IB" "$@"; }
proves() { printf '\033[32m-> proves:\033[0m %s\n' "$*"; }
fail() { printf '\033[31mdemo failed:\033[0m %s\n' "$*" >&2; exit 1; }
on() { local host=$1; shift; "$IB" sandbox exec "$SB-$host" -- bash -c "$*"; }  # on N SCRIPT: run on host N

cleanup() {  # leave nothing behind, also when a step failed
  "$IB" reset --cluster "$CL" --force >/dev/null 2>&1 || true
  "$IB" sandbox down "$SB" >/dev/null 2>&1 || true
}

[ "$(id -u)" -eq 0 ] || fail "sandbox hosts need root (network namespaces, mounts)"
if ! "$IB" inspect "$ETCD" >/dev/null 2>&1 || ! "$IB" inspect "$APP" >/dev/null 2>&1; then
  step "Build the images: hello (busybox), the etcd rootfs image, the application bundling hello"
  bash kubefiles/hello/fetch.sh && bash kubefiles/etcd/fetch.sh
  run build -q -t "$HELLO" kubefiles/hello
  run build -q -t "$ETCD" kubefiles/etcd
  run build -q -t "$APP" kubefiles/etcd-app
fi
trap cleanup EXIT

step "Four sandbox hosts: network namespaces with their own /etc, /var, /run, PIDs and sshd"
run sandbox up 4 --name "$SB"
mapfile -t IP < <("$IB" sandbox ls --json | "$PY" -c "
import json, sys
[box] = [b for b in json.load(sys.stdin) if b['name'] == '$SB']
print(box['key_file'])
for h in sorted(box['hosts'], key=lambda h: h['index']): print(h['address'], h['dir'])")
KEY=${IP[0]}
read -r M1 D1 <<< "${IP[1]}"; read -r M2 D2 <<< "${IP[2]}"; read -r M3 D3 <<< "${IP[3]}"; read -r N4 D4 <<< "${IP[4]}"
UPPERS=("$D1/upper" "$D2/upper" "$D3/upper" "$D4/upper")
snapshot() {  # every non-directory in the hosts' upper layers (whiteouts too), with a checksum for files
  local u
  for u in "${UPPERS[@]}"; do
    (cd "$u" && find . ! -type d ! -type f -printf "$u %y %p\n" && find . -type f -exec md5sum {} + | sed "s|^|$u f |")
  done | sort
}
snapshot > "$IMGBUILD_HOME/hosts-before.txt"
proves "4 hosts at $M1 $M2 $M3 $N4 answer SSH with the sandbox key; their overlay upper dirs are recorded"

step "Run the etcd rootfs image and its application on three masters, the rootfs fanned out by the registry"
run run "$ETCD" "$APP" --masters "$M1,$M2,$M3" --cluster "$CL" --pk "$KEY" --distribute registry
tags=$(on 3 "curl -fsS http://$M1:5000/v2/imgbuild-distribute/rootfs/tags/list")
echo "the fan-out artifact on $M1's registry: $tags"
grep -q '"tags"' <<< "$tags" || fail "master0's registry does not serve the fan-out artifact"
proves "Distribute: $M1 got the rootfs as one zstd artifact over SSH; masters 2 and 3 fetched it from $M1's" \
       "registry (curl | zstd -d | tar -x), then got only their own files over SSH; Registry: $M1 serves the" \
       "bundled registry/ as sealos.hub:5000; Init: containerd on every host, etcd bootstrapped on master0;" \
       "Join: masters 2 and 3 joined over TLS; Guest: the app's CMD ran on master0"

step "Status of the cluster"
run status --cluster "$CL"

step "etcd is healthy: 3 members, peer and client TLS with the certificates made at Init"
health=$(on 2 "$ENVS; etcdctl endpoint health --cluster 2>&1; etcdctl member list -w table")
echo "$health"
[ "$(grep -c 'is healthy' <<< "$health")" = 3 ] || fail "etcd does not report 3 healthy members"
proves "a 3-member etcd cluster, every member healthy, reached with the cluster CA from master 2"

step "The application's data, read back from another member (master 3)"
value=$(on 3 "$ENVS; env -u ETCDCTL_ENDPOINTS etcdctl --endpoints https://$M3:2379 get --print-value-only /imgbuild/demo/greeting")
echo "/imgbuild/demo/greeting = $value"
[ "$value" = "hello from cluster $CL" ] || fail "the app's key is not on master 3"
on 1 "$ENVS; etcdctl get --prefix /imgbuild/demo"
proves "the app's CMD on master0 wrote keys that every member serves (it also pulled and ran hello)"

step "Add a fourth host as a node"
run add --nodes "$N4" --cluster "$CL"
proves "scale-up ran the phases on the new host only (its rootfs fetched from the registry: the cluster keeps" \
       "its --distribute): containerd there, etcd still 3 members"

step "The bundled image, pulled on every host from sealos.hub:5000 through containerd"
for h in 1 2 3 4; do
  on "$h" "$ENVS; ctr images pull --hosts-dir /etc/imgbuild-cluster/certs.d sealos.hub:5000/demo/hello:v1 >/dev/null \
    && printf '%s: %s\n' \"\$(hostname)\" \"\$(ctr images ls | awk 'NR == 2 {print \$1, \$3}')\" \
    && { ctr run --rm sealos.hub:5000/demo/hello:v1 hello-\$\$ 2>&1 || echo 'runc cannot run containers here'; }" \
    || fail "host $h could not pull the bundled image"
done
proves "every host resolves sealos.hub to the registry host and pulls the image the app image bundled"

step "Re-run: nothing changes"
pids=$(on 1 "cat /run/imgbuild-cluster/*.pid; $ENVS; etcdctl get /imgbuild/demo/greeting -w fields | grep ModRevision")
start=$SECONDS
run run "$ETCD" "$APP" --masters "$M1,$M2,$M3" --nodes "$N4" --cluster "$CL" --pk "$KEY"
again=$(on 1 "cat /run/imgbuild-cluster/*.pid; $ENVS; etcdctl get /imgbuild/demo/greeting -w fields | grep ModRevision")
[ "$pids" = "$again" ] || fail "the re-run restarted a daemon or re-ran the app"
proves "an unchanged re-run ($((SECONDS - start))s) restarted no daemon and did not re-run the app (same pids, same key revision)"

step "Reset: clean and clean-registry on the hosts, imgbuild's files removed, the cluster forgotten"
run reset --cluster "$CL"
snapshot > "$IMGBUILD_HOME/hosts-after.txt"
if ! diff "$IMGBUILD_HOME/hosts-before.txt" "$IMGBUILD_HOME/hosts-after.txt"; then
  fail "reset left files on the hosts (above: < before, > after)"
fi
left=$(for h in 1 2 3 4; do on "$h" "ps -eo comm= | grep -xE 'etcd|containerd|containerd-shim|docker-registry' || true"; done)
[ -z "$left" ] || fail "processes left after reset: $left"
proves "every host holds exactly the files it had before the run, and no etcd, containerd or registry runs"

step "Tear the sandbox down"
run sandbox down "$SB"
trap - EXIT
if ip netns list | grep -q "imgb-$SB-" || grep -q "$IMGBUILD_HOME/sandbox/$SB" /proc/self/mounts; then
  fail "the sandbox left a network namespace or a mount behind"
fi
proves "no sandbox, mount or process is left behind"
printf '\n\033[1mdone in %ss\033[0m\n' "$((SECONDS - T0))"
