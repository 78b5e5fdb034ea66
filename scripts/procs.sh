# shellcheck shell=bash
# Start/stop the project's own programs in the background, with pid and log files under $EVC_VAR.
# Source after lib.sh.
#   start_proc NAME CMD [ARGS...]   start it (stdin from /dev/null: consoles keep running on EOF)
#   stop_procs                      stop every program started this way (SIGTERM, then SIGKILL)

start_proc() {
    local name="$1"
    shift
    ensure_dirs
    local pidfile="$EVC_VAR/run/proc.$name.pid" out="$EVC_VAR/log/$name.out"
    if [ -f "$pidfile" ] && pid_alive "$(cat "$pidfile")"; then
        log "$name already running (pid $(cat "$pidfile"))"
        return 0
    fi
    (cd "$ROOT" && exec nohup "$@" </dev/null >>"$out" 2>&1) &
    echo $! >"$pidfile"
}

stop_procs() {
    local f pid
    for f in "$EVC_VAR"/run/proc.*.pid; do
        [ -e "$f" ] || continue
        pid="$(cat "$f")"
        pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for f in "$EVC_VAR"/run/proc.*.pid; do
        [ -e "$f" ] || continue
        pid="$(cat "$f")"
        wait_for 10 "$(basename "$f" .pid) to stop" bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
        rm -f "$f"
    done
}
