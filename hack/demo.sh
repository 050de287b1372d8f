#!/usr/bin/env bash
# The main job on the embedded examples (kubefiles/): build cluster images, ship them through a local
# registry, and look inside them — all offline, on this machine.
# The run half (hack/demo-run.sh: an etcd cluster image run on local sandbox hosts) follows it in ./demo.
set -euo pipefail
cd "$(dirname "$0")/.."
IB="$PWD/.venv/bin/imgbuild"
PY="$PWD/.venv/bin/python"
DEMO="$PWD/.demo"
rm -rf "$DEMO" && mkdir -p "$DEMO"
export IMGBUILD_HOME="$DEMO/home"
export SOURCE_DATE_EPOCH=1700000000

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ imgbuild %s\n' "$*"; "$IB" "$@"; }

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG="127.0.0.1:$port"
pids=()
cleanup() {
  "$IB" umount --all >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_registry() {  # wait until a registry answers /v2/
  for _ in $(seq 100); do
    "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://$1/v2/', timeout=1)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "registry on $1 did not start" >&2; return 1
}

step "imgbuild version: the tools found on this machine"
run version

step "A local registry to ship to (the stock docker-registry, via imgbuild registry serve)"
mkdir -p "$DEMO/registry-storage"
"$IB" registry serve "$DEMO/registry-storage" --address 127.0.0.1 --port "$port" >"$DEMO/registry.log" 2>&1 &
pids+=($!)
wait_registry "$REG"
echo "serving on $REG"

step "Lint the example Kubefiles"
for k in pause-demo rootfs-demo app-demo sealer-app; do run lint "kubefiles/$k"; done

step "Build the small container image the cluster image bundles"
run build -t imgbuild.local/demo/pause:3.9 kubefiles/pause-demo

step "Which images does the rootfs context need? (images/shim, manifests/, charts/)"
run images find kubefiles/rootfs-demo

step "Build a sealos-style rootfs cluster image: rootfs, scripts and registry/ in their own layers"
run build -t "$REG/demo/rootfs:v1" kubefiles/rootfs-demo

step "Build an application image and a sealer-style image (APP/LAUNCH)"
run build -t "$REG/demo/app:v1" kubefiles/app-demo
run build -t "$REG/demo/sealer-app:v1" kubefiles/sealer-app
run images

step "Inspect the rootfs image: sealos labels, registry env, role-split layers"
run inspect "$REG/demo/rootfs:v1"

step "Push to the registry, drop it locally, pull it back: same digest"
first=$("$IB" images --json | "$PY" -c "import json,sys; print([i['digest'] for i in json.load(sys.stdin) if i['repository'].endswith('demo/rootfs')][0])")
run push "$REG/demo/rootfs:v1"
run rmi "$REG/demo/rootfs:v1"
run pull "$REG/demo/rootfs:v1"
again=$("$IB" images --json | "$PY" -c "import json,sys; print([i['digest'] for i in json.load(sys.stdin) if i['repository'].endswith('demo/rootfs')][0])")
[ "$first" = "$again" ] && echo "same digest after the round trip: $again"

step "Rebuild with nothing changed: served from the step cache, same digest, the push uploads nothing"
run build -q -t "$REG/demo/rootfs:v1" kubefiles/rootfs-demo
run push "$REG/demo/rootfs:v1"

step "Mount the image read-only and look inside, then list the registry/ it carries"
mnt=$("$IB" mount "$REG/demo/rootfs:v1")
echo "mounted at $mnt"
(cd "$mnt" && find . -maxdepth 2 | sort | head -40)
run registry ls "$mnt/registry"

step "Serve the bundled registry/ straight from the mount and pull the bundled image from it"
port2=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$IB" registry serve "$mnt/registry" --address 127.0.0.1 --port "$port2" >"$DEMO/bundled-registry.log" 2>&1 &
pids+=($!)
wait_registry "127.0.0.1:$port2"
run pull "127.0.0.1:$port2/demo/pause:3.9"

step "What changed between two releases: build v2 with a new label and compare"
run build -q -t "$REG/demo/rootfs:v2" --label version=v0.2.0 --env registryPort=5001 kubefiles/rootfs-demo
run diff "$REG/demo/rootfs:v1" "$REG/demo/rootfs:v2"

step "Save the image for an air-gapped site, and check the store"
run save "$REG/demo/rootfs:v1" -o "$DEMO/rootfs-v1.tar"
ls -l "$DEMO/rootfs-v1.tar"
run store verify
run umount --all

step "Drop an image and collect what nothing uses any more (blobs, build cache, unpacked layers)"
run rmi "$REG/demo/app:v1"
run store gc

printf '\n\033[1mimage side done.\033[0m\n'
