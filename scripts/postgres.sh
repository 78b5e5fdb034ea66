#!/usr/bin/env bash
# Private PostgreSQL cluster for the project (the system's server binaries,
# our own data dir, port and socket; Debian's own cluster is left alone/stopped).
#
#   scripts/postgres.sh start    init once, start, create role+db evc, wait until ready
#   scripts/postgres.sh stop     fast shutdown (immediate after a bound)
#   scripts/postgres.sh status   exit 0 when running and accepting connections, else 3
#   scripts/postgres.sh url      print the connection settings (never the password)
#   scripts/postgres.sh psql ... psql as the superuser on the evc database (debugging)
#
# Environment (see scripts/lib.sh for EVC_VAR / EVC_PG_PORT):
#   EVC_PG_BIN            directory with initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin)
#   EVC_PG_LISTEN         listen_addresses (default 127.0.0.1)
#   EVC_PG_START_TIMEOUT  seconds (default 60)
#   EVC_PG_STOP_TIMEOUT   seconds (default 60)
#
# Files:
#   $EVC_VAR/pg                  data directory (or a symlink to it, see below)
#   $EVC_VAR/run/pg/             unix socket directory
#   $EVC_VAR/log/postgres.log    server log
#   $EVC_VAR/secrets/db_password password of role evc (0600, generated once)
#   $EVC_VAR/db.env              EVC_DB_HOST/PORT/NAME/USER/PASSWORD_FILE (+ EVC_DB_URL)
#
# As root the server runs as the OS user `postgres` (created if missing). If that
# user cannot traverse to $EVC_VAR, the data dir and socket go to
# /var/lib/evc-pg/<hash of EVC_VAR>/ and $EVC_VAR/pg is a symlink to the data dir.
# If the socket path would be too long for a unix socket, the socket goes to
# /tmp/evc-pg-<hash>/.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_LISTEN="${EVC_PG_LISTEN:-127.0.0.1}"
START_TIMEOUT="${EVC_PG_START_TIMEOUT:-60}"
STOP_TIMEOUT="${EVC_PG_STOP_TIMEOUT:-60}"
DB_NAME=evc
DB_USER=evc
SECRETS="$EVC_VAR/secrets"
PWFILE="$SECRETS/db_password"
DBENV="$EVC_VAR/db.env"
LOGFILE="$EVC_VAR/log/postgres.log"
VAR_HASH="$(printf '%s' "$EVC_VAR" | sha256sum | cut -c1-12)"

# ---------------------------------------------------------------- binaries

find_pgbin() {
    if [ -n "${EVC_PG_BIN:-}" ]; then
        [ -x "$EVC_PG_BIN/pg_ctl" ] || die "EVC_PG_BIN=$EVC_PG_BIN has no pg_ctl"
        echo "$EVC_PG_BIN"
        return 0
    fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
        return 0
    fi
    return 1
}

install_postgres() {
    log "PostgreSQL server binaries not found: installing Debian's postgresql"
    # Keep Debian's packaged cluster from starting (and grabbing port 5432).
    local own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt_install postgresql
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
    # Stop and disable auto-start of any cluster the package created.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        local ver name
        while read -r ver name _; do
            [ -n "$ver" ] || continue
            pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
            if [ -f "/etc/postgresql/$ver/$name/start.conf" ]; then
                echo manual >"/etc/postgresql/$ver/$name/start.conf"
            fi
            log "Debian cluster $ver/$name stopped and set to manual start"
        done < <(pg_lsclusters -h 2>/dev/null)
    fi
}

PGBIN="$(find_pgbin || true)"

need_pgbin() {
    if [ -z "$PGBIN" ]; then
        is_root || die "PostgreSQL server binaries not found (install postgresql or set EVC_PG_BIN)"
        install_postgres
        PGBIN="$(find_pgbin)" || die "postgresql installed but no /usr/lib/postgresql/*/bin found"
    fi
}

# ---------------------------------------------------------------- who runs the server

if is_root; then
    PG_OS_USER=postgres
else
    PG_OS_USER="$(id -un)"
fi

ensure_pg_user() {
    is_root || return 0
    if ! id postgres >/dev/null 2>&1; then
        log "creating OS user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/sh postgres || die "useradd postgres failed"
    fi
}

# as_pg CMD... : run CMD as the server's OS user, from a directory it can read.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- layout

# Sets PGDATA and SOCKDIR. With "create", also makes the fallback dir/symlink.
resolve_layout() {
    local base create="${1:-}"
    if [ -L "$EVC_VAR/pg" ]; then
        # An earlier run put the data elsewhere.
        PGDATA="$(readlink -f "$EVC_VAR/pg")"
        base="$(dirname "$PGDATA")"
        SOCKDIR="$base/run"
    else
        PGDATA="$EVC_VAR/pg"
        SOCKDIR="$EVC_VAR/run/pg"
        if is_root && ! as_pg test -x "$EVC_VAR" 2>/dev/null; then
            base="/var/lib/evc-pg/$VAR_HASH"
            PGDATA="$base/data"
            SOCKDIR="$base/run"
            if [ "$create" = create ]; then
                log "user postgres cannot reach $EVC_VAR: data dir in $base (symlinked from $EVC_VAR/pg)"
                mkdir -p "$base/data"
                chmod 755 /var/lib/evc-pg "$base"
                [ -e "$EVC_VAR/pg" ] || ln -s "$PGDATA" "$EVC_VAR/pg"
            fi
        fi
    fi
    local sock="$SOCKDIR/.s.PGSQL.$EVC_PG_PORT"
    if [ "${#sock}" -gt 100 ]; then
        SOCKDIR="/tmp/evc-pg-$VAR_HASH"
    fi
}

prepare_dirs() {
    ensure_dirs
    mkdir -p "$PGDATA" "$SOCKDIR"
    chmod 700 "$PGDATA" "$SOCKDIR"
    if is_root; then
        chown postgres:postgres "$PGDATA" "$SOCKDIR"
    fi
    touch "$LOGFILE"
}

# ---------------------------------------------------------------- secrets

ensure_password() {
    (umask 077 && mkdir -p "$SECRETS")
    chmod 700 "$SECRETS"
    if [ ! -s "$PWFILE" ]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PWFILE.tmp")
        mv "$PWFILE.tmp" "$PWFILE"
        log "generated the evc database password into $PWFILE"
    fi
    chmod 600 "$PWFILE"
}

write_db_env() {
    local host="127.0.0.1"
    case "$PG_LISTEN" in
        127.0.0.1 | localhost | '*' | 0.0.0.0) host=127.0.0.1 ;;
        *) host="${PG_LISTEN%%,*}" ;;
    esac
    cat >"$DBENV.tmp" <<EOF
EVC_DB_HOST=$host
EVC_DB_PORT=$EVC_PG_PORT
EVC_DB_NAME=$DB_NAME
EVC_DB_USER=$DB_USER
EVC_DB_PASSWORD_FILE=$PWFILE
EVC_DB_URL=postgresql://$DB_USER@$host:$EVC_PG_PORT/$DB_NAME
EOF
    mv "$DBENV.tmp" "$DBENV"
}

# ---------------------------------------------------------------- cluster

init_cluster() {
    if [ -f "$PGDATA/PG_VERSION" ]; then
        return 0
    fi
    log "initialising a new cluster in $PGDATA"
    local t0
    t0="$(now_ms)"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$PG_OS_USER" -E UTF8 --no-locale -A peer >>"$LOGFILE" 2>&1 \
        || { tail -n 20 "$LOGFILE" >&2; die "initdb failed (see $LOGFILE)"; }
    echo "include_if_exists = 'evc.conf'" >>"$PGDATA/postgresql.conf"
    PG_INIT_TIME="$(elapsed_s "$t0")"
    log "initdb took ${PG_INIT_TIME}s"
}

# Regenerated at each start: ports/paths may change between runs.
write_server_config() {
    cat >"$PGDATA/evc.conf" <<EOF
# Generated by scripts/postgres.sh at every start.
listen_addresses = '$PG_LISTEN'
port = $EVC_PG_PORT
unix_socket_directories = '$SOCKDIR'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 200
EOF
    {
        echo "# Generated by scripts/postgres.sh at every start."
        echo "# TYPE  DATABASE USER ADDRESS        METHOD"
        echo "local   all      all                 peer"
        echo "host    all      all  127.0.0.1/32   scram-sha-256"
        echo "host    all      all  ::1/128        scram-sha-256"
        case "$PG_LISTEN" in
            127.0.0.1 | localhost | ::1) ;;
            *) echo "host    all      all  all            scram-sha-256" ;;
        esac
    } >"$PGDATA/pg_hba.conf"
    if is_root; then
        chown postgres:postgres "$PGDATA/evc.conf" "$PGDATA/pg_hba.conf"
    fi
    chmod 600 "$PGDATA/evc.conf" "$PGDATA/pg_hba.conf"
}

server_running() {
    [ -n "$PGBIN" ] && [ -f "$PGDATA/postmaster.pid" ] || return 1
    as_pg "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1
}

tcp_ready() {
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$EVC_PG_PORT" -t 2 >/dev/null 2>&1
}

# For wait_for: 0 ready, 1 not yet, 99 server gone.
ready_or_dead() {
    server_running || return 99
    tcp_ready
}

# Create role and database evc (idempotent); (re)set the role's password from
# the password file. The password travels on psql's stdin, never in argv.
ensure_role_and_db() {
    local pw
    pw="$(cat "$PWFILE")"
    case "$pw" in
        *[!A-Za-z0-9]*) die "$PWFILE must contain only letters and digits" ;;
    esac
    {
        echo "SET log_statement = 'none';"
        echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN CREATE ROLE $DB_USER LOGIN; END IF; END \$\$;"
        echo "ALTER ROLE $DB_USER WITH LOGIN CREATEDB PASSWORD '$pw';"
        echo "SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \\gexec"
    } | as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$EVC_PG_PORT" \
            -U "$PG_OS_USER" -d postgres >/dev/null 2>>"$LOGFILE" \
        || die "could not create role/database $DB_USER/$DB_NAME (see $LOGFILE)"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    ensure_dirs
    exec 9>"$EVC_VAR/run/postgres.lock"
    flock -w 180 9 || die "another postgres.sh is busy with $EVC_VAR"
    need_pgbin
    ensure_pg_user
    resolve_layout create
    prepare_dirs
    ensure_password

    if server_running; then
        if tcp_ready; then
            ensure_role_and_db
            write_db_env
            log "PostgreSQL already running on 127.0.0.1:$EVC_PG_PORT (data $PGDATA)"
            return 0
        fi
        wait_for "$START_TIMEOUT" "PostgreSQL on port $EVC_PG_PORT" ready_or_dead \
            || die "PostgreSQL is running but not accepting connections (see $LOGFILE)"
        ensure_role_and_db
        write_db_env
        log "PostgreSQL ready on 127.0.0.1:$EVC_PG_PORT"
        return 0
    fi
    if port_in_use "$EVC_PG_PORT" 127.0.0.1; then
        die "port $EVC_PG_PORT is already in use by another server (Debian's own cluster? see pg_lsclusters; or set EVC_PG_PORT)"
    fi

    local t0
    t0="$(now_ms)"
    init_cluster
    write_server_config
    log "starting PostgreSQL ($PGBIN) on $PG_LISTEN:$EVC_PG_PORT, data $PGDATA, log $LOGFILE"
    # The log is opened here (by us) and inherited by the server, so the server's
    # user needs no access to $EVC_VAR/log. fd 9 (our lock) is not passed on.
    echo "=== $(date -Is) starting server ===" >>"$LOGFILE"
    as_pg "$PGBIN/pg_ctl" start -D "$PGDATA" -w -t "$START_TIMEOUT" -s </dev/null >>"$LOGFILE" 2>&1 9>&- \
        || { tail -n 20 "$LOGFILE" >&2; die "PostgreSQL did not start (see $LOGFILE)"; }
    wait_for "$START_TIMEOUT" "PostgreSQL on 127.0.0.1:$EVC_PG_PORT" ready_or_dead \
        || { tail -n 20 "$LOGFILE" >&2; die "PostgreSQL does not accept TCP connections (see $LOGFILE)"; }
    ensure_role_and_db
    write_db_env
    log "PostgreSQL ready on 127.0.0.1:$EVC_PG_PORT in $(elapsed_s "$t0")s${PG_INIT_TIME:+ (initdb ${PG_INIT_TIME}s)}; settings in $DBENV"
}

cmd_stop() {
    ensure_dirs
    [ -n "$PGBIN" ] || { log "PostgreSQL not installed"; return 0; }
    resolve_layout
    if ! server_running; then
        log "PostgreSQL not running ($EVC_VAR)"
        return 0
    fi
    log "stopping PostgreSQL ($PGDATA)"
    local t0
    t0="$(now_ms)"
    if ! as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t "$STOP_TIMEOUT" -s >>"$LOGFILE" 2>&1; then
        log "fast shutdown did not finish in ${STOP_TIMEOUT}s: immediate shutdown"
        as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA" -m immediate -w -t 30 -s >>"$LOGFILE" 2>&1 \
            || die "could not stop PostgreSQL (see $LOGFILE)"
    fi
    log "PostgreSQL stopped in $(elapsed_s "$t0")s"
}

cmd_status() {
    if [ -z "$PGBIN" ]; then
        echo "postgres: not installed"
        return 3
    fi
    resolve_layout
    if ! server_running; then
        echo "postgres: stopped ($PGDATA)"
        return 3
    fi
    if tcp_ready; then
        echo "postgres: running on 127.0.0.1:$EVC_PG_PORT, data $PGDATA, socket $SOCKDIR, settings $DBENV"
        return 0
    fi
    echo "postgres: running but not accepting connections on 127.0.0.1:$EVC_PG_PORT"
    return 1
}

cmd_url() {
    ensure_password
    write_db_env
    cat "$DBENV"
}

cmd_psql() {
    need_pgbin
    resolve_layout
    exec 9>&-
    as_pg "$PGBIN/psql" -X -h "$SOCKDIR" -p "$EVC_PG_PORT" -U "$PG_OS_USER" -d "$DB_NAME" "$@"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart) cmd_stop; cmd_start ;;
    url) cmd_url ;;
    psql) shift; cmd_psql "$@" ;;
    *) echo "usage: $0 start|stop|status|restart|url|psql [args]" >&2; exit 2 ;;
esac
