#!/bin/bash
# clean-registry: stop the registry init-registry started.
pidfile=/run/e2e-registry.pid
if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
rm -f /var/log/e2e-registry.log
