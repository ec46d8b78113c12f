#!/usr/bin/env bash
# Local S3-protocol server (moto) for tests.
#
#   scripts/s3-server.sh start   install moto[server] if needed, start, print URL
#   scripts/s3-server.sh stop    stop it (no-op if not running)
#   scripts/s3-server.sh url     print the endpoint URL
#   scripts/s3-server.sh status  say whether it is running (exit 1 if not)
#
# KMDB_S3_PORT=25000 is the TCP port (127.0.0.1) `start` uses; once the server
# runs, `url` and `status` give the port it was started with.
#
# State is in memory only: every start begins with no buckets. Pid and log are
# in .dev-db/s3/ at the repo root (git-ignored). Any access key is accepted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.dev-db/s3"
PIDFILE="$DIR/moto.pid"
LOG="$DIR/moto.log"
# Below the ephemeral range (32768+), so no outgoing connection can hold it.
PORT="${KMDB_S3_PORT:-25000}"
PORTFILE="$DIR/moto.port"
# Stay on moto 5's server CLI/behaviour; override to try another version.
MOTO_SPEC="${KMDB_MOTO_SPEC:-moto[server]>=5,<6}"

log() { echo "s3-server: $*" >&2; }
die() { log "$*"; exit 1; }

# The pid from our pid file, if that process is alive and is moto (guards
# against a stale pid file whose pid got reused).
running_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto || return 1
    echo "$pid"
}

# The port of the running server (saved when it was started), else the one
# `start` would use.
port() {
    local p=""
    if running_pid >/dev/null; then p="$(cat "$PORTFILE" 2>/dev/null || true)"; fi
    [[ "$p" =~ ^[0-9]+$ ]] || p="$PORT"
    echo "$p"
}

url() { echo "http://127.0.0.1:$(port)"; }

# Python (always present, unlike curl) probes whether the endpoint answers HTTP.
answers_http() {
    python3 - "http://127.0.0.1:$PORT/" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # any HTTP status means the server is up
EOF
}

# Sets MOTO_CMD to a working moto server command, installing moto if needed.
# Under pyenv a freshly installed entry point may lack a shim until
# `pyenv rehash`, so fall back to `python3 -m moto.server`.
find_moto() {
    if command -v moto_server >/dev/null && moto_server --help >/dev/null 2>&1; then
        MOTO_CMD=(moto_server)
    elif python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
        MOTO_CMD=(python3 -m moto.server)
    else
        return 1
    fi
}

start() {
    if running_pid >/dev/null; then
        if [ "$(port)" != "$PORT" ]; then
            log "already running on port $(port) (not $PORT): stop it first to change the port"
        else
            log "already running"
        fi
        url
        return 0
    fi
    if ! find_moto; then
        log "installing $MOTO_SPEC with pip"
        python3 -m pip install --quiet --disable-pip-version-check "$MOTO_SPEC" >&2 ||
            die "pip install failed"
        find_moto || die "moto installed but no moto server command works"
    fi
    mkdir -p "$DIR"
    : >"$LOG"
    log "starting ${MOTO_CMD[*]} on http://127.0.0.1:$PORT (log: $LOG)"
    # setsid + nohup: the server must outlive this script and its terminal.
    setsid nohup "${MOTO_CMD[@]}" -H 127.0.0.1 -p "$PORT" </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "$PORT" >"$PORTFILE"

    for _ in $(seq 120); do
        answers_http && break
        if ! running_pid >/dev/null; then
            tail -n 30 "$LOG" >&2 || true
            die "moto exited during startup (port $PORT in use?)"
        fi
        sleep 0.5
    done
    answers_http || { tail -n 30 "$LOG" >&2 || true; stop; die "no HTTP answer within 60 s"; }
    log "ready"
    url
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "did not exit; killing pid $pid"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE" "$PORTFILE"
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    status)
        if pid="$(running_pid)"; then echo "running (pid $pid) at $(url)"; else echo "not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
