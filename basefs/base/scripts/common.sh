#!/bin/bash
# Shared by every cluster image's lifecycle scripts (sourced, never run): the env they need, logging, a
# manifest of everything init put on the host (so clean removes exactly that and nothing else), daemons
# without systemd (setsid + pid files under /run, logs under /var/log) and bash-only network probes.
# The layers above (basefs/containerd, basefs/<runtime>) add their own helpers next to this file.
#
# Host layout (all of it undone by clean.sh / clean-registry.sh):
#   /usr/local/bin/...                 the binaries init.sh installs (each one in the manifest)
#   /etc/imgbuild-cluster/             settings rendered from etc/*.tmpl, registry.yml, certs.d/ ...
#   /var/lib/imgbuild-cluster/         the manifests (installed, registry.installed) and the data list
#   /run/imgbuild-cluster/             pid files          /var/log/imgbuild-cluster/   daemon logs
# shellcheck disable=SC2034  # the variables below are read by the scripts that source this file
set -euo pipefail

ROOTFS="${SEALOS_SYS_ROOTFS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
BIN_DIR=/usr/local/bin
CONF_DIR=/etc/imgbuild-cluster
STATE_DIR=/var/lib/imgbuild-cluster
RUN_DIR=/run/imgbuild-cluster
LOG_DIR=/var/log/imgbuild-cluster
MANIFEST="$STATE_DIR/installed"
registryDomain="${registryDomain:-sealos.hub}"
registryPort="${registryPort:-5000}"

log() { echo "[$(basename "$0" .sh)] $*"; }
die() { echo "[$(basename "$0" .sh)] error: $*" >&2; exit 1; }

need_env() {  # need_env VAR...: fail naming every variable the engine should have set
  local v missing=()
  for v in "$@"; do [ -n "${!v:-}" ] || missing+=("$v"); done
  [ ${#missing[@]} -eq 0 ] || die "not set: ${missing[*]} (the run engine sets them for every lifecycle script)"
}

masters() { tr ',' ' ' <<< "${MASTERS:-${MASTER0:-}}"; }  # the masters' addresses, master0 first
is_master0() { [ "${HOST_IP:-}" = "${MASTER0:-}" ]; }
is_master() { case ",${MASTERS:-${MASTER0:-}}," in *",${HOST_IP:-},"*) return 0 ;; esac; return 1; }
pki() { echo "${SEALOS_SYS_PKI:?SEALOS_SYS_PKI is not set}/$1"; }

load_env() {  # load_env FILE: export every KEY=VALUE of FILE (comments allowed)
  set -a
  # shellcheck source=/dev/null
  . "$1"
  set +a
}

rendered_problem() {  # rendered_problem ETC_FILE: print why $ROOTFS/etc/ETC_FILE is not a rendered template
  if [ ! -f "$ROOTFS/etc/$1" ]; then echo "missing $ROOTFS/etc/$1 (rendered from $1.tmpl)"
  elif grep -q -e '{{' -e '<no value>' "$ROOTFS/etc/$1"; then echo "$ROOTFS/etc/$1 is not fully rendered"
  fi
}

pki_problems() {  # print what the engine's PKI lacks on this host
  local f
  for f in ca.crt host.crt host.key; do [ -r "$(pki "$f")" ] || echo "missing $(pki "$f") (the engine's PKI)"; done
}

report_problems() {  # report_problems LINE...: fail naming every problem, or say the host is fine
  if [ $# -gt 0 ]; then
    printf '[%s] %s\n' "$(basename "$0" .sh)" "$@" >&2
    die "host ${HOST_IP:-?} cannot take the cluster ($# problem(s) above)"
  fi
  log "host ${HOST_IP:-?} ok (roles ${HOST_ROLES:-?})"
}

shared_dirs() { mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$CONF_DIR"; }
drop_shared_dirs() {  # remove the shared directories once nothing of ours is left in them
  local d
  for d in "$RUN_DIR" "$LOG_DIR" "$CONF_DIR" "$STATE_DIR"; do rmdir "$d" 2>/dev/null || true; done
}

# --- the manifest: one path a line, in the order they were made; clean undoes them in reverse ---
ours() { [ -f "$MANIFEST" ] && grep -qxF -- "$1" "$MANIFEST"; }
record() { mkdir -p "$STATE_DIR"; ours "$1" || printf '%s\n' "$1" >> "$MANIFEST"; }

claim_dir() {  # claim_dir DIR [MODE]: make DIR (and missing parents), recording each directory made
  local dir=$1 mode=${2:-0755} p todo=()
  p=$dir
  while [ ! -d "$p" ]; do todo=("$p" "${todo[@]}"); p=$(dirname "$p"); done
  for p in "${todo[@]}"; do
    mkdir "$p"
    record "$p"
  done
  [ ${#todo[@]} -eq 0 ] || chmod "$mode" "$dir"
}

own_data() {  # own_data DIR MODE: make DIR if missing; its contents are this cluster's (clean empties it)
  claim_dir "$1" "$2"
  grep -qxF -- "$1" "$STATE_DIR/data" 2>/dev/null || printf '%s\n' "$1" >> "$STATE_DIR/data"
}
owns_data() { grep -qxF -- "$1" "$STATE_DIR/data" 2>/dev/null; }
foreign_data() { [ -d "$1" ] && ! owns_data "$1" && [ -n "$(ls -A "$1")" ]; }

empty_data() {  # empty every directory own_data claimed, then forget the list
  local d
  [ -f "$STATE_DIR/data" ] || return 0
  while IFS= read -r d; do [ ! -d "$d" ] || find "$d" -mindepth 1 -delete; done < "$STATE_DIR/data"
  rm -f "$STATE_DIR/data"
}

PUT_CHANGED=0
put_file() {  # put_file SRC DEST MODE: install SRC at DEST unless equal; refuses a DEST that is not ours
  local src=$1 dest=$2 mode=$3
  [ -f "$src" ] || die "$src is missing from the image"
  if [ -e "$dest" ] && ! ours "$dest"; then
    die "$dest exists and was not installed by this cluster image (remove it, or use a clean host)"
  fi
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    chmod "$mode" "$dest"
    return 0
  fi
  claim_dir "$(dirname "$dest")"
  install -m "$mode" "$src" "$dest"
  record "$dest"
  PUT_CHANGED=1
}

undo_manifest() {  # remove every file and directory in $MANIFEST, newest first, then the manifest
  local p
  [ -f "$MANIFEST" ] || return 0
  while IFS= read -r p; do
    if [ -d "$p" ] && [ ! -L "$p" ]; then
      rmdir "$p" 2>/dev/null || log "kept $p: it holds files this image did not put there"
    else
      rm -f "$p"
    fi
  done < <(tac "$MANIFEST")
  rm -f "$MANIFEST"
}

# --- daemons: setsid + a pid file; a pid counts only while it still runs the expected binary ---
pid_of() {  # pid_of NAME BINARY: the running pid of daemon NAME, or nothing
  local name=$1 bin=$2 pid exe
  [ -f "$RUN_DIR/$name.pid" ] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  case "$exe" in */"$bin" | */"$bin (deleted)") echo "$pid" ;; esac
}

start_daemon() {  # start_daemon NAME BINARY ARG...: start BINARY detached, logging to $LOG_DIR/NAME.log
  local name=$1 pid
  shift
  shared_dirs
  record "$LOG_DIR/$name.log"
  setsid nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$RUN_DIR/$name.pid"
  log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

stop_daemon() {  # stop_daemon NAME BINARY: TERM, then KILL after 10 s; removes the pid file
  local name=$1 bin=$2 pid i
  pid=$(pid_of "$name" "$bin")
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then kill -9 "$pid" 2>/dev/null || true; log "killed $name (pid $pid)"; else log "stopped $name (pid $pid)"; fi
    : "$i"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

wait_until() {  # wait_until WHAT SECONDS LOGNAME CMD...: retry CMD for SECONDS of wall time; fail with the log's tail
  local what=$1 secs=$2 logname=$3 deadline
  shift 3
  deadline=$((SECONDS + secs))
  while :; do
    if "$@" >/dev/null 2>&1; then log "$what"; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.5
  done
  echo "--- last lines of $LOG_DIR/$logname.log ---" >&2
  tail -n 20 "$LOG_DIR/$logname.log" >&2 2>/dev/null || true
  die "timed out after ${secs}s waiting: $what"
}

port_open() {  # port_open ADDR PORT: true when something accepts connections there
  timeout 1 bash -c ": </dev/tcp/$1/$2" 2>/dev/null
}

http_ok() {  # http_ok ADDR PORT PATH: true when GET answers 200 (bash only: hosts need no curl)
  local status
  status=$(timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2; printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' '$3' '$1' >&3; head -n1 <&3" 2>/dev/null) || return 1
  case "$status" in "HTTP/1."?" 200"*) return 0 ;; *) return 1 ;; esac
}
