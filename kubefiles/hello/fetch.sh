#!/usr/bin/env bash
# Put a static busybox (Debian's busybox-static) in this context's bin/, as a real image's fetch step would
# download it; fails naming the package when it is missing or not static. Env FETCH_PATH: directories searched.
set -euo pipefail
ctx=$(cd "$(dirname "$0")" && pwd)
IFS=: read -r -a dirs <<< "${FETCH_PATH:-$PATH:/usr/sbin:/sbin}"
src=""
for dir in "${dirs[@]}"; do [ -n "$dir" ] && [ -x "$dir/busybox" ] && { src=$dir/busybox; break; }; done
[ -n "$src" ] || { echo "fetch.sh: busybox not found; install it with: apt-get install busybox-static" >&2; exit 1; }
if ldd "$src" >/dev/null 2>&1; then
  echo "fetch.sh: $src is dynamically linked; a FROM scratch image needs busybox-static (apt-get install busybox-static)" >&2
  exit 1
fi
mkdir -p "$ctx/bin"
install -m 0755 "$src" "$ctx/bin/busybox"
echo "fetch.sh: $ctx/bin/busybox ready ($("$src" | head -n1 | cut -d' ' -f1-2))"
