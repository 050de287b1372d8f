#!/usr/bin/env bash
# Install the system packages imgbuild and its tests use, when missing (Debian/Ubuntu, as root or via sudo).
set -euo pipefail
pkgs=(buildah skopeo docker-registry openssh-server openssh-client iproute2 zstd fuse-overlayfs uidmap
      python3 python3-venv python3-dev gcc tar gzip curl ca-certificates
      sudo procps  # sandbox hosts: sudo for non-root SSH users, ps/pkill in the sandbox tests
      etcd-server etcd-client containerd runc busybox-static shellcheck)  # the etcd demo image's binaries
pkgs+=(podman)  # the docker tests: `podman system service` is the Docker-API daemon they start
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's registry package starts a system service on :5000; imgbuild's tests and demo run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
# The etcd demo image copies etcd and containerd from these packages; their services are not wanted here
# (disabled only when this script just installed them: a containerd that docker uses is left alone).
for svc in etcd containerd; do
  pkg=$svc; [ "$svc" = etcd ] && pkg=etcd-server
  case " ${missing[*]} " in *" $pkg "*) ;; *) continue ;; esac
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
