#!/bin/bash
# clean: undo init.
rm -f /etc/e2e-demo.conf
rm -rf /var/lib/e2e-demo
