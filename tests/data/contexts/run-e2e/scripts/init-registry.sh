#!/bin/bash
# init-registry: serve the bundled registry/ with the stock registry, in the background, and wait for it.
set -euo pipefail
port="${1:-5000}"
pidfile=/run/e2e-registry.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then exit 0; fi
setsid nohup /usr/bin/docker-registry serve ../etc/registry.yml >/var/log/e2e-registry.log 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then exit 0; fi
  sleep 0.1
done
echo "registry did not answer on :$port" >&2; tail -5 /var/log/e2e-registry.log >&2; exit 1
