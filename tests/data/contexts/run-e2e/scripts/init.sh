#!/bin/bash
# init: install the rendered config and count the runs (a re-run of an unchanged cluster must not come here).
set -euo pipefail
mkdir -p /var/lib/e2e-demo
cp ../etc/e2e.conf /etc/e2e-demo.conf
echo "init $1 $(date +%s%N)" >> /var/lib/e2e-demo/runs
