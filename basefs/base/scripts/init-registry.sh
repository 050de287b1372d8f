#!/bin/bash
# init-registry: serve the rootfs' registry/ directory (every image's bundled registry/, merged by the engine)
# with the stock docker-registry on registryPort, read-only, until clean-registry. Idempotent.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
MANIFEST="$STATE_DIR/registry.installed"

[ -x "$ROOTFS/bin/docker-registry" ] || die "missing $ROOTFS/bin/docker-registry (the image's bin/)"
conf="$ROOTFS/etc/registry.yml"
[ -f "$conf" ] || die "missing $conf (rendered from registry.yml.tmpl)"
! grep -q -e '{{' -e '<no value>' "$conf" || die "$conf is not fully rendered"
shared_dirs
claim_dir "$ROOTFS/registry"
PUT_CHANGED=0
put_file "$conf" "$CONF_DIR/registry.yml" 0644
if [ -n "$(pid_of registry docker-registry)" ] && [ "$PUT_CHANGED" = 1 ]; then
  log "the registry's config changed: restarting it"
  stop_daemon registry docker-registry
fi
if [ -n "$(pid_of registry docker-registry)" ]; then
  log "the registry already serves $ROOTFS/registry (pid $(pid_of registry docker-registry))"
  exit 0
fi
if port_open 127.0.0.1 "$registryPort"; then die "port $registryPort is in use by something else"; fi
start_daemon registry "$ROOTFS/bin/docker-registry" serve "$CONF_DIR/registry.yml"
wait_until "the registry serves $ROOTFS/registry on :$registryPort" 30 registry http_ok 127.0.0.1 "$registryPort" /v2/
