# shellcheck shell=bash
# Shared helpers for the infrastructure scripts. Source it, don't run it:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Environment (all optional):
#   EVC_VAR                    runtime dir (default $ROOT/var; a relative path is
#                              taken relative to the repo root, e.g. var/test)
#   EVC_KAFKA_PORT             Kafka client listener          (default 9092)
#   EVC_KAFKA_CONTROLLER_PORT  Kafka KRaft controller listener (default 9093)
#   EVC_PG_PORT                PostgreSQL TCP port             (default 5432)
#   EVC_WAIT_INTERVAL          poll interval of wait_for, seconds (default 0.5)

if [ -n "${_EVC_LIB_SOURCED:-}" ]; then
    return 0
fi
_EVC_LIB_SOURCED=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export ROOT

EVC_VAR="${EVC_VAR:-$ROOT/var}"
case "$EVC_VAR" in
    /*) ;;
    *) EVC_VAR="$ROOT/$EVC_VAR" ;;
esac
# Normalise (strip trailing slashes); the directory may not exist yet.
EVC_VAR="${EVC_VAR%/}"
VAR="$EVC_VAR"
export EVC_VAR VAR

export EVC_KAFKA_PORT="${EVC_KAFKA_PORT:-9092}"
export EVC_KAFKA_CONTROLLER_PORT="${EVC_KAFKA_CONTROLLER_PORT:-9093}"
export EVC_PG_PORT="${EVC_PG_PORT:-5432}"

# log MESSAGE... : timestamped message on stderr (stdout stays clean for data).
log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# die MESSAGE... : log and exit 1.
die() {
    log "ERROR: $*"
    exit 1
}

# now_ms : milliseconds since the epoch.
now_ms() {
    date +%s%3N
}

# elapsed_s START_MS : seconds (one decimal) since START_MS.
elapsed_s() {
    local start="$1" end
    end="$(now_ms)"
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
}

# wait_for TIMEOUT_S DESCRIPTION CMD [ARGS...]
#   Runs CMD every EVC_WAIT_INTERVAL seconds until it exits 0 (returns 0) or
#   TIMEOUT_S seconds have passed (returns 1). If CMD exits with 99 it means
#   "this will never succeed" (e.g. the process died): give up at once (returns 2).
#   Sets WAIT_FOR_ELAPSED to the seconds waited.
wait_for() {
    local timeout="$1" what="$2"
    shift 2
    local interval="${EVC_WAIT_INTERVAL:-0.5}"
    local start deadline rc
    start="$(now_ms)"
    deadline=$((start + timeout * 1000))
    while :; do
        "$@"
        rc=$?
        WAIT_FOR_ELAPSED="$(elapsed_s "$start")"
        if [ "$rc" -eq 0 ]; then
            return 0
        fi
        if [ "$rc" -eq 99 ]; then
            log "gave up waiting for $what after ${WAIT_FOR_ELAPSED}s"
            return 2
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep "$interval"
    done
}

# port_in_use PORT [HOST] : true when something accepts TCP connections there.
port_in_use() {
    local port="$1" host="${2:-127.0.0.1}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# pid_alive PID : true when the process exists (and is not a zombie).
pid_alive() {
    local pid="$1" state
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)"
    [ "$state" != "Z" ]
}

# is_root : true when running as uid 0.
is_root() {
    [ "$(id -u)" -eq 0 ]
}

# apt_install PKG... : install Debian packages (root only), one apt-get update per run.
apt_install() {
    is_root || die "need root to install: $* (install them by hand)"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    if [ -z "${_EVC_APT_UPDATED:-}" ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        _EVC_APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

# ensure_dirs : the runtime layout under $EVC_VAR.
ensure_dirs() {
    mkdir -p "$EVC_VAR/run" "$EVC_VAR/log"
}
