#!/usr/bin/env bash
# Install the system packages imgbuild and its tests use, when missing (Debian/Ubuntu, as root or via sudo).
set -euo pipefail
pkgs=(buildah skopeo docker-registry openssh-server openssh-client iproute2 zstd fuse-overlayfs uidmap
      python3 python3-venv python3-dev gcc tar gzip curl ca-certificates)
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
