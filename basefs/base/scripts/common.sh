#!/bin/bash
# Shared by every cluster image's lifecycle scripts (sourced, never run): the env they need, logging, a
# manifest of everything init put on the host (so clean removes exactly that and nothing else), services
# (a systemd unit where systemd runs, else a daemon: setsid + pid file under /run, log under /var/log), the
# cluster token and values derived from it, and bash-only network probes. The layers above
# (basefs/containerd, basefs/<runtime>) add their own helpers next to this file.
#
# Host layout (all of it undone by clean.sh / clean-registry.sh):
#   /usr/local/bin/...                 the binaries init.sh installs (each one in the manifest)
#   /etc/imgbuild-cluster/             settings rendered from etc/*.tmpl, registry.yml, certs.d/ ...
#   /var/lib/imgbuild-cluster/         the manifests (installed, registry.installed) and the data list
#   /run/imgbuild-cluster/             pid files          /var/log/imgbuild-cluster/   daemon logs
#   /etc/systemd/system/<service>.service   units, where systemd runs
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

install_registry_hosts() {  # containerd's hosts: the cluster registry (plain http), and the mirror of every other one
  put_file "$ROOTFS/etc/containerd/hosts.toml" "$CONF_DIR/certs.d/$registryDomain:$registryPort/hosts.toml" 0644
  put_file "$ROOTFS/etc/containerd/mirror.toml" "$CONF_DIR/certs.d/_default/hosts.toml" 0644
}

# --- the cluster token: what every host of the cluster shares, to derive join tokens without asking master0 ---
token_problem() {  # print why this host has no cluster token (nothing when it has one)
  if [ ! -r "$(pki token)" ] && [ -z "${clusterToken:-}" ]; then
    echo "no cluster token: neither $(pki token) nor clusterToken is there; give every host the same" \
      "clusterToken (e.g. -e clusterToken=\$(openssl rand -hex 16))"
  fi
}

cluster_token() {  # the cluster token: the engine's $SEALOS_SYS_PKI/token, else $clusterToken
  if [ -r "$(pki token)" ]; then tr -d '[:space:]' < "$(pki token)"; return 0; fi
  [ -z "$(token_problem)" ] || die "$(token_problem)"
  printf '%s' "$clusterToken"
}

derive() {  # derive PURPOSE: 64 hex digits only holders of the cluster token can compute (never on a command line)
  local token
  token=$(cluster_token)
  printf '%s\n%s\n' "$PURPOSE_PREFIX$1" "$token" | sha256sum | cut -d' ' -f1
}
PURPOSE_PREFIX="imgbuild-cluster/"

# --- host settings outside the manifest: /etc/hosts lines and sysctls, each undone by clean ---
HOSTS_MARK="# imgbuild-cluster"
hosts_entry() {  # hosts_entry NAME ADDRESS: /etc/hosts maps NAME to ADDRESS (one marked line, replaced in place)
  local rest
  rest=$(grep -vF " $1 $HOSTS_MARK" /etc/hosts || true)
  printf '%s\n%s %s %s\n' "$rest" "$2" "$1" "$HOSTS_MARK" > /etc/hosts
}
drop_hosts_entries() {  # remove every /etc/hosts line hosts_entry added (the file is rewritten in place)
  local rest
  grep -qF "$HOSTS_MARK" /etc/hosts 2>/dev/null || return 0
  rest=$(grep -vF "$HOSTS_MARK" /etc/hosts || true)
  printf '%s\n' "$rest" > /etc/hosts
}

set_sysctl() {  # set_sysctl KEY VALUE: set it, remembering the value before (restore_sysctls puts it back)
  local now
  now=$(sysctl -n "$1")
  [ "$now" != "$2" ] || return 0
  mkdir -p "$STATE_DIR"
  grep -q "^$1=" "$STATE_DIR/sysctl" 2>/dev/null || printf '%s=%s\n' "$1" "$now" >> "$STATE_DIR/sysctl"
  sysctl -qw "$1=$2"
}
restore_sysctls() {
  local kv
  [ -f "$STATE_DIR/sysctl" ] || return 0
  while IFS= read -r kv; do sysctl -qw "$kv" || log "could not restore sysctl $kv"; done < "$STATE_DIR/sysctl"
  rm -f "$STATE_DIR/sysctl"
}

kill_in_host() {  # kill_in_host PATTERN: kill -9 processes of this host (its network namespace) whose binary matches
  local p me exe
  me=$(readlink /proc/self/ns/net)
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    # shellcheck disable=SC2254  # PATTERN is a glob on purpose
    case "$exe" in $1) ;; *) continue ;; esac
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$me" ] || continue
    kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}

unmount_below() {  # unmount_below DIR...: every mount under DIR, deepest first
  local m d
  awk '{print $2}' /proc/self/mounts | while IFS= read -r m; do
    for d in "$@"; do case "$m" in "$d"/*) echo "$m" ;; esac; done
  done | sort -r | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
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
pid_of() {  # pid_of NAME BINARY: the running pid of daemon NAME (its argv[0] names BINARY), or nothing
  local name=$1 bin=$2 pid argv0=""
  [ -f "$RUN_DIR/$name.pid" ] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  [ -r "/proc/$pid/cmdline" ] || return 0
  IFS= read -r -d '' argv0 < "/proc/$pid/cmdline" || true
  case "$argv0" in "$bin" | */"$bin") echo "$pid" ;; esac
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

# --- services: a systemd unit where systemd runs (it restarts them, also at boot), else a daemon ---
has_systemd() { [ -d /run/systemd/system ]; }

start_service() {  # start_service NAME BINARY ARG...: keep BINARY ARG... running as service NAME; idempotent
  local name=$1 tmp
  shift
  if ! has_systemd; then
    if [ -z "$(pid_of "$name" "$(basename "$1")")" ]; then start_daemon "$name" "$@"; fi
    return 0
  fi
  tmp=$(mktemp)
  printf '%s\n' "[Unit]" "Description=$name of the imgbuild cluster" "After=network-online.target" "" \
    "[Service]" "ExecStart=$*" "Restart=always" "RestartSec=5" "Delegate=yes" "KillMode=process" \
    "LimitNOFILE=1048576" "" "[Install]" "WantedBy=multi-user.target" > "$tmp"
  PUT_CHANGED=0
  put_file "$tmp" "/etc/systemd/system/$name.service" 0644
  rm -f "$tmp"
  systemctl daemon-reload
  if [ "$PUT_CHANGED" = 1 ]; then systemctl enable "$name" && systemctl restart "$name"; else systemctl enable --now "$name"; fi
  log "service $name runs under systemd"
}

stop_service() {  # stop_service NAME BINARY: stop and disable what start_service started
  if has_systemd && ours "/etc/systemd/system/$1.service"; then
    systemctl disable --now "$1" >/dev/null 2>&1 || true
    log "stopped service $1"
  fi
  stop_daemon "$1" "$2"
}

service_running() {  # service_running NAME BINARY: true while the service runs
  if has_systemd && ours "/etc/systemd/system/$1.service"; then systemctl is-active --quiet "$1"; else [ -n "$(pid_of "$1" "$2")" ]; fi
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
