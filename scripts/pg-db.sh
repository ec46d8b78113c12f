#!/usr/bin/env bash
# Private, throwaway PostgreSQL server for development, tests and CI.
#
#   scripts/pg-db.sh start    install if needed, initdb, start, create role/db, print URL
#   scripts/pg-db.sh stop     clean shutdown (no-op if not running)
#   scripts/pg-db.sh url      print the connection URL
#   scripts/pg-db.sh status   say whether it runs, and on which port (exit 1 if not)
#   scripts/pg-db.sh client [ARGS...]   open psql as the superuser, on database kmdb
#
# The port is KMDB_PG_PORT (default 25432). KMDB_PG_SETTINGS="fsync=off;jit=on"
# adds server settings after the ones below (they win), from the next start.
#
# Everything lives in .pg-db/ at the repo root (git-ignored): data/ (the
# cluster), run/ (its socket), kmdb.conf (the settings below, included by the
# cluster's postgresql.conf), server.log. As root (CI), the server runs as
# the `postgres` user of Debian's package, through runuser, and .pg-db is
# that user's; when it cannot reach the checkout (a parent directory without
# o+x), .pg-db links to a per-checkout directory under /var/tmp. The
# package's own cluster and service are never used, and stopped if running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.pg-db"
# Below the ephemeral range (32768+), so no outgoing connection can hold it.
PORT="${KMDB_PG_PORT:-25432}"
DB_NAME=kmdb
DB_USER=kmdb
DB_PASS=kmdb-dev-pw
SUPERUSER=postgres
# A name unique to this checkout, for what cannot live inside it.
TAG="$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"

log() { echo "pg-db: $*" >&2; }
die() { log "$*"; exit 1; }

# Debian keeps the server binaries out of PATH, one directory per major version.
bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
    elif command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    fi
}

# Root runs the server as `postgres` (PostgreSQL refuses to run as root);
# anyone else runs it as themselves.
if [ "$(id -u)" = 0 ]; then
    OWNER=postgres
    # From /, which it can enter (pg_ctl complains about an unreachable cwd).
    as_owner() { (cd / && runuser -u "$OWNER" -- "$@"); }
else
    OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

# The directory of the cluster (data/, the socket's run/, kmdb.conf,
# server.log), where the server's user can reach it: .pg-db itself, or the
# directory under /var/tmp it links to.
home() { readlink -f "$DIR"; }
data_dir() { echo "$(home)/data"; }

# Unix socket paths are limited to ~107 bytes: a deep checkout gets a
# per-checkout directory under /tmp instead.
sock_dir() {
    local d
    d="$(home)/run"
    if [ "${#d}" -gt 80 ]; then d="/tmp/kmdb-pg-db-$TAG"; fi
    echo "$d"
}

# The pid and port of our server, from its postmaster.pid, if that process
# is alive and is a PostgreSQL server (a stale file's pid may be reused).
running() {
    local pidfile pid comm
    pidfile="$(data_dir)/postmaster.pid"
    [ -f "$pidfile" ] || return 1
    pid="$(sed -n 1p "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    case "$comm" in postgres | postmaster) ;; *) return 1 ;; esac
    echo "$pid $(sed -n 4p "$pidfile")"
}

# The port clients should use: the running server's, else the configured one.
port() {
    local r
    if r="$(running)"; then echo "${r#* }"; else echo "$PORT"; fi
}

url() { echo "postgres://$DB_USER:$DB_PASS@127.0.0.1:$(port)/$DB_NAME"; }

# psql as the superuser over our socket (trust: only the owner and root can
# enter the socket's directory).
admin_psql() {
    "$(bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(sock_dir)" -p "$(port)" -U "$SUPERUSER" "$@"
}

install_postgresql() {
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed: install Debian's postgresql package (as root: apt-get install postgresql)"
    command -v apt-get >/dev/null || die "pg_ctl not found and apt-get unavailable; install PostgreSQL yourself"
    log "installing postgresql with apt-get (takes a minute)"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package's own cluster from starting: invoke-rc.d and
    # deb-systemd-invoke honour policy-rc.d exit 101. Respect one that exists.
    local made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT # even if apt-get is interrupted
    fi
    local rc=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; } >&2 || rc=$?
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
    stop_system_service
}

# If the package's cluster did get started (or is enabled under systemd),
# stop and disable it: only our private server is wanted.
stop_system_service() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
    if command -v pg_lsclusters >/dev/null; then
        local version cluster status
        while read -r version cluster _ status _; do
            if [ "$status" = online ]; then
                log "stopping the package's cluster $version/$cluster"
                pg_ctlcluster "$version" "$cluster" stop >&2 || true
            fi
        done < <(pg_lsclusters --no-header 2>/dev/null || true)
    fi
}

# .pg-db, owned by the server's user; when that user cannot reach the
# checkout, a per-checkout directory under /var/tmp that .pg-db links to.
make_home() {
    [ -e "$DIR" ] && return 0
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then
        chown "$OWNER": "$DIR"
        if ! as_owner test -w "$DIR"; then
            local away="/var/tmp/kmdb-pg-db-$TAG"
            log "user $OWNER cannot reach $DIR; keeping the cluster in $away"
            rmdir "$DIR"
            mkdir -p "$away"
            chown "$OWNER": "$away"
            ln -s "$away" "$DIR"
        fi
    fi
    chmod 700 "$(home)"
}

init_cluster() {
    local data
    data="$(data_dir)"
    [ -f "$data/PG_VERSION" ] && return 0
    log "initializing cluster in $data"
    # UTF8 and the C locale: byte-order text everywhere and English messages
    # whatever the machine's locale. Local (socket) logins are trusted, TCP
    # logins need their password.
    as_owner "$(bindir)/initdb" -D "$data" -U "$SUPERUSER" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$(home)/initdb.log" 2>&1 ||
        { cat "$(home)/initdb.log" >&2; die "initdb failed"; }
    echo "include_if_exists = '$(home)/kmdb.conf'" | as_owner tee -a "$data/postgresql.conf" >/dev/null
}

# Settings for a throwaway server that bulk-loads (see README "PostgreSQL").
write_conf() {
    local sock
    sock="$(sock_dir)"
    # Regenerated on every start so a changed port or setting takes effect.
    cat >"$(home)/kmdb.conf" <<EOF
# Generated by scripts/pg-db.sh; edits are overwritten on the next start.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
max_connections = 100
# Not UTC on purpose: kmdb sets its sessions to UTC, and every test then
# shows that stored times do not depend on the server's zone.
timezone = 'Pacific/Chatham'
lc_messages = 'C'
# The buffer cache holds the indexes that COPY into filled partitions
# updates at random (user_id, n / key, t): as MariaDB's buffer pool, 2 GB.
shared_buffers = 2GB
# No checkpoint during a load: each one writes every dirty page and makes the
# next change of each page log a whole-page image.
max_wal_size = 16GB
checkpoint_timeout = 30min
# No replica or archive: a COPY into a partition truncated in its own
# transaction then writes no WAL at all, only the table files, synced at
# commit.
wal_level = minimal
max_wal_senders = 0
archive_mode = off
# Torn pages are a crash-of-the-machine risk: acceptable on a throwaway
# server (as innodb_doublewrite=0 on the MariaDB one).
full_page_writes = off
# Commits still wait for their WAL: kmdb commits once per file of tens of
# MB, so that costs nothing measurable, and a server killed mid-import never
# loses a commit kmdb was told of (the state store commits after it).
synchronous_commit = on
# Index builds, and the hash tables of the catch-up's joins.
maintenance_work_mem = 1GB
work_mem = 64MB
# Overrides from KMDB_PG_SETTINGS (';'-separated).
$(tr ';' '\n' <<<"${KMDB_PG_SETTINGS:-}")
EOF
    if [ "$(id -u)" = 0 ]; then chown "$OWNER": "$(home)/kmdb.conf"; fi
    mkdir -p "$sock"
    if [ "$(id -u)" = 0 ]; then chown "$OWNER": "$sock"; fi
    chmod 700 "$sock"
}

create_db_and_user() {
    local exists
    exists="$(admin_psql -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")"
    if [ "$exists" != 1 ]; then
        admin_psql -d postgres -c "CREATE ROLE $DB_USER LOGIN CREATEDB"
    fi
    # Tests create and drop their own databases, hence CREATEDB.
    admin_psql -d postgres -c "ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS'"
    exists="$(admin_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")"
    if [ "$exists" != 1 ]; then
        admin_psql -d postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
}

start() {
    local r
    if r="$(running)"; then
        log "already running on port ${r#* }"
        url
        return 0
    fi
    [ -n "$(bindir)" ] || install_postgresql
    [ -n "$(bindir)" ] || die "no pg_ctl after install"
    stop_system_service
    make_home
    init_cluster
    write_conf
    local data
    data="$(data_dir)"
    log "starting $(bindir)/postgres on 127.0.0.1:$PORT (log: $(home)/server.log)"
    : >"$(home)/server.log"
    if [ "$(id -u)" = 0 ]; then chown "$OWNER": "$(home)/server.log"; fi
    # pg_ctl detaches the server (setsid), so it outlives this script.
    if ! as_owner "$(bindir)/pg_ctl" -D "$data" -l "$(home)/server.log" -w -t 60 start >/dev/null; then
        tail -n 30 "$(home)/server.log" >&2 || true
        die "server did not start"
    fi
    create_db_and_user
    log "ready"
    url
}

stop() {
    local r
    if ! r="$(running)"; then
        log "not running"
        return 0
    fi
    log "stopping (pid ${r%% *})"
    # fast: roll back open transactions and shut down cleanly.
    as_owner "$(bindir)/pg_ctl" -D "$(data_dir)" -m fast -w -t 60 stop >/dev/null ||
        die "shutdown failed; see $(home)/server.log"
    log "stopped"
}

status() {
    local r
    if r="$(running)"; then
        echo "running (pid ${r%% *}) on 127.0.0.1:${r#* } at $(url)"
    else
        echo "not running"
        return 1
    fi
}

client() {
    running >/dev/null || die "not running; run: scripts/pg-db.sh start"
    exec "$(bindir)/psql" -X -h "$(sock_dir)" -p "$(port)" -U "$SUPERUSER" -d "$DB_NAME" "$@"
}

cmd="${1:-}"
if [ $# -gt 0 ]; then shift; fi
case "$cmd" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    status) status ;;
    client) client "$@" ;;
    *) echo "usage: $0 start|stop|url|status|client [psql args...]" >&2; exit 2 ;;
esac
