#!/bin/bash
# For the kubefiles' fetch.sh (sourced, never copied into an image): assemble a build context from basefs
# layers (scripts/ and etc/ of each, later layers win), take binaries from this machine or download them.
# Every failure names what is missing and how to get it.
#   env BASEFS      the basefs directory (default: the one holding this file)
#   env FETCH_PATH  directories searched for local binaries (default: $PATH:/usr/sbin:/sbin)
#   env GITHUB_URL  where GitHub's release downloads are (default https://github.com): a mirror
#   env REGISTRY_VERSION  the version of the registry (distribution) downloaded for the registry host
set -euo pipefail
BASEFS=${BASEFS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
FETCH_PATH=${FETCH_PATH:-$PATH:/usr/sbin:/sbin}
GITHUB_URL=${GITHUB_URL:-https://github.com}
declare -A FOUND=()
VERSION="" ARCH="" DL=""

fetch_die() { echo "fetch.sh: $*" >&2; exit 1; }

locate_bins() {  # locate_bins NAME=DEBIAN_PACKAGE...: FOUND[NAME] for each, or fail naming the packages
  local spec name dir dirs missing=() pkgs=()
  IFS=: read -r -a dirs <<< "$FETCH_PATH"
  for spec in "$@"; do
    name=${spec%%=*}
    for dir in "${dirs[@]}"; do
      if [ -n "$dir" ] && [ -f "$dir/$name" ] && [ -x "$dir/$name" ]; then FOUND[$name]=$dir/$name; break; fi
    done
    [ -n "${FOUND[$name]:-}" ] || { missing+=("$name"); pkgs+=("${spec#*=}"); }
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "fetch.sh: not found on this machine: ${missing[*]} (searched $FETCH_PATH)" >&2
    fetch_die "install them with: apt-get install $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')(or run hack/install-deps.sh)"
  fi
}

assemble() {  # assemble CTX LAYER...: CTX's scripts/ and etc/ become the layers' (in order); bin/ starts empty
  local ctx=$1 layer d
  shift
  for layer in "$@"; do [ -d "$BASEFS/$layer" ] || fetch_die "no basefs layer $BASEFS/$layer (set BASEFS)"; done
  rm -rf "${ctx:?}/bin" "${ctx:?}/scripts" "${ctx:?}/etc"
  mkdir -p "$ctx/bin" "$ctx/scripts" "$ctx/etc"
  for layer in "$@"; do
    for d in scripts etc; do [ ! -d "$BASEFS/$layer/$d" ] || cp -R "$BASEFS/$layer/$d/." "$ctx/$d/"; done
  done
}

install_found() {  # install_found CTX: copy every located binary into CTX/bin
  local name
  for name in "${!FOUND[@]}"; do install -m 0755 "${FOUND[$name]}" "$1/bin/$name"; done
}

download() {  # download URL DEST: fetch URL into DEST (atomically); fail saying the network or mirror is missing
  local url=$1 dest=$2 err
  mkdir -p "$(dirname "$dest")"
  if ! err=$(curl -fsSL --connect-timeout 10 --retry 2 -o "$dest.part" "$url" 2>&1); then
    rm -f "$dest.part"
    fetch_die "cannot download $url: ${err:-curl failed} (no network here? put the files on a mirror and set its URL variable)"
  fi
  mv "$dest.part" "$dest"
}

arch_of_machine() {  # the Go-style architecture of this machine (amd64, arm64)
  case "$(uname -m)" in x86_64) echo amd64 ;; aarch64 | arm64) echo arm64 ;; *) uname -m ;; esac
}

start_downloads() {  # start_downloads [VERSION [ARCH]]: check them into VERSION and ARCH; DL, a temp dir removed at exit
  VERSION=${1:-} ARCH=${2:-$(arch_of_machine)}
  [[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]] || fetch_die "VERSION must look like v1.28.2, not '$VERSION' (usage: fetch.sh VERSION [ARCH])"
  case "$ARCH" in amd64 | arm64) ;; *) fetch_die "ARCH must be amd64 or arm64, not '$ARCH'" ;; esac
  DL=$(mktemp -d)
  trap 'rm -rf "$DL"' EXIT
}

download_registry() {  # the stock registry (distribution) for ARCH, as DL/bin/docker-registry
  local v=${REGISTRY_VERSION:-2.8.3}
  download "$GITHUB_URL/distribution/distribution/releases/download/v$v/registry_${v}_linux_$ARCH.tar.gz" "$DL/registry.tgz"
  tar -C "$DL" -xzf "$DL/registry.tgz" registry
  mkdir -p "$DL/bin" && mv "$DL/registry" "$DL/bin/docker-registry"
}

place_downloads() {  # place_downloads CTX LAYER...: assemble CTX from the layers, then DL's bin/ and images/ into it
  local ctx=$1
  shift
  chmod 0755 "$DL"/bin/*
  assemble "$ctx" "$@"
  rm -rf "${ctx:?}/images"
  mkdir -p "$ctx/images"
  cp "$DL"/bin/* "$ctx/bin/"
  if [ -d "$DL/images" ]; then cp -R "$DL/images/." "$ctx/images/"; fi
  echo "fetch.sh: $ctx ready for $VERSION/$ARCH: $(cd "$ctx" && find bin images -type f | sort | tr '\n' ' ')"
}
