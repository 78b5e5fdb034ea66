#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller).
#
#   scripts/kafka.sh start    start it (idempotent) and wait until it serves requests
#   scripts/kafka.sh stop     stop it (SIGTERM, then SIGKILL after a bound)
#   scripts/kafka.sh status   exit 0 and say so when running and answering, else exit 3
#   scripts/kafka.sh libs     only obtain the jars; prints the libs dir
#
# Environment (see scripts/lib.sh for EVC_VAR and the ports):
#   KAFKA_HOME                 use $KAFKA_HOME/libs (an unpacked Kafka 4.x distribution)
#   EVC_KAFKA_VERSION          version fetched from Maven Central (default 4.1.0)
#   EVC_KAFKA_BIND_HOST        client listener bind address (default 127.0.0.1)
#   EVC_KAFKA_ADVERTISED_HOST  host advertised to clients (default = bind host, or
#                              127.0.0.1 when binding 0.0.0.0)
#   EVC_KAFKA_HEAP_OPTS        JVM heap (default "-Xmx512m -Xms256m")
#   EVC_KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   EVC_KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 60)
#
# Files: $EVC_VAR/kafka/{server.properties,data/}, $EVC_VAR/run/kafka.pid,
#        $EVC_VAR/log/kafka.out. Jars cached in $ROOT/.cache/kafka-<version>/libs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="${EVC_KAFKA_VERSION:-4.1.0}"
KDIR="$EVC_VAR/kafka"
KDATA="$KDIR/data"
KCONF="$KDIR/server.properties"
PIDFILE="$EVC_VAR/run/kafka.pid"
OUT="$EVC_VAR/log/kafka.out"
BIND_HOST="${EVC_KAFKA_BIND_HOST:-127.0.0.1}"
if [ -n "${EVC_KAFKA_ADVERTISED_HOST:-}" ]; then
    ADV_HOST="$EVC_KAFKA_ADVERTISED_HOST"
elif [ "$BIND_HOST" = "0.0.0.0" ]; then
    ADV_HOST=127.0.0.1
else
    ADV_HOST="$BIND_HOST"
fi
BOOTSTRAP="$ADV_HOST:$EVC_KAFKA_PORT"
PROBE_ADDR="127.0.0.1"
[ "$BIND_HOST" = "0.0.0.0" ] || PROBE_ADDR="$BIND_HOST"
START_TIMEOUT="${EVC_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${EVC_KAFKA_STOP_TIMEOUT:-60}"
HEAP_OPTS="${EVC_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KSCRIPTS="$ROOT/scripts/kafka"

# ---------------------------------------------------------------- helpers

python_for_probe() {
    if [ -x "$ROOT/.venv/bin/python" ]; then
        echo "$ROOT/.venv/bin/python"
    else
        command -v python3 || die "python3 not found"
    fi
}

# The pid in the pid file if that process is our broker, else nothing.
running_pid() {
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [ -n "$pid" ] || return 1
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "kafka.Kafka $KCONF" || return 1
    echo "$pid"
}

ensure_java() {
    if ! command -v java >/dev/null 2>&1; then
        log "java not found: installing Debian's headless JRE"
        apt_install default-jre-headless
    fi
    local major
    major="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}' | awk -F. '{ if ($1 == 1) print $2; else print $1 }')"
    if [ -n "$major" ] && [ "$major" -lt 17 ] 2>/dev/null; then
        die "Kafka $KAFKA_VERSION needs Java 17+, found Java $major (put a newer java first on PATH)"
    fi
}

# Sets KAFKA_LIBS to a directory with the broker's jars.
resolve_libs() {
    if [ -n "${KAFKA_HOME:-}" ]; then
        KAFKA_LIBS="$KAFKA_HOME/libs"
        ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 \
            || die "KAFKA_HOME=$KAFKA_HOME has no libs/kafka_2.13-*.jar"
        return 0
    fi
    local cache="$ROOT/.cache/kafka-$KAFKA_VERSION"
    KAFKA_LIBS="$cache/libs"
    if [ -f "$cache/.complete" ] && ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        log "mvn not found: installing Debian's maven"
        apt_install maven
    fi
    mkdir -p "$ROOT/.cache"
    # Serialise concurrent resolutions (two var dirs starting at once).
    exec 8>"$ROOT/.cache/kafka-$KAFKA_VERSION.lock"
    flock -w 600 8 || die "timed out waiting for another Kafka download"
    if [ -f "$cache/.complete" ]; then
        exec 8>&-
        return 0
    fi
    local tmp="$cache.tmp.$$"
    rm -rf "$tmp"
    log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven"
    local t0
    t0="$(now_ms)"
    local mvnlog="$ROOT/.cache/kafka-$KAFKA_VERSION.mvn.log"
    if ! mvn -q -B -Dstyle.color=never -f "$KSCRIPTS/pom.xml" dependency:copy-dependencies \
            -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
            -DoutputDirectory="$tmp/libs" >"$mvnlog" 2>&1; then
        tail -n 40 "$mvnlog" >&2
        rm -rf "$tmp"
        die "Maven could not resolve Kafka $KAFKA_VERSION (full output: $mvnlog; see scripts/kafka/README.md)"
    fi
    rm -rf "$cache"
    mv "$tmp" "$cache"
    touch "$cache/.complete"
    exec 8>&-
    log "Kafka jars ready in $KAFKA_LIBS ($(ls "$KAFKA_LIBS" | wc -l) jars, mvn took $(elapsed_s "$t0")s)"
}

java_cmd() {
    # shellcheck disable=SC2086
    java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KSCRIPTS/log4j2.properties" \
        -Dkafka.logs.dir="$EVC_VAR/log" \
        -cp "$KAFKA_LIBS/*" "$@"
}

write_config() {
    mkdir -p "$KDATA"
    cat >"$KCONF.tmp" <<EOF
# Generated by scripts/kafka.sh at every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$EVC_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$BIND_HOST:$EVC_KAFKA_PORT,CONTROLLER://127.0.0.1:$EVC_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$ADV_HOST:$EVC_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KDATA
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
    mv "$KCONF.tmp" "$KCONF"
}

# Format the storage once, with a generated cluster id kept in $KDIR/cluster.id.
format_storage() {
    if [ -f "$KDATA/meta.properties" ]; then
        return 0
    fi
    local cid
    if [ -s "$KDIR/cluster.id" ]; then
        cid="$(cat "$KDIR/cluster.id")"
    else
        # Same shape as Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe
        # base64 without padding, never starting with '-'.
        cid="$(python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')"
        echo "$cid" >"$KDIR/cluster.id"
    fi
    log "formatting Kafka storage in $KDATA (cluster id $cid)"
    java_cmd kafka.tools.StorageTool format -t "$cid" -c "$KCONF" --ignore-formatted >>"$OUT" 2>&1 \
        || { tail -n 20 "$OUT" >&2; die "kafka storage format failed (see $OUT)"; }
}

probe() {
    "$PROBE_PY" "$KSCRIPTS/ready.py" "$PROBE_ADDR:$EVC_KAFKA_PORT"
}

# For wait_for: 0 ready, 1 not yet, 99 the broker process is gone.
probe_or_dead() {
    if ! pid_alive "$(cat "$PIDFILE" 2>/dev/null)"; then
        return 99
    fi
    probe
}

# ---------------------------------------------------------------- commands

cmd_start() {
    ensure_dirs
    mkdir -p "$KDIR"
    exec 9>"$EVC_VAR/run/kafka.lock"
    flock -w 180 9 || die "another kafka.sh is busy with $EVC_VAR"
    PROBE_PY="$(python_for_probe)"

    local pid
    if pid="$(running_pid)"; then
        if probe; then
            log "Kafka already running (pid $pid) on $BOOTSTRAP"
            return 0
        fi
        log "Kafka process $pid is up but not answering yet; waiting"
        wait_for "$START_TIMEOUT" "Kafka on $BOOTSTRAP" probe_or_dead \
            || die "Kafka (pid $pid) does not answer; see $OUT"
        log "Kafka ready on $BOOTSTRAP"
        return 0
    fi
    rm -f "$PIDFILE"
    for p in "$EVC_KAFKA_PORT" "$EVC_KAFKA_CONTROLLER_PORT"; do
        if port_in_use "$p" "$PROBE_ADDR" || port_in_use "$p" 127.0.0.1; then
            die "port $p is already in use by another process (set EVC_KAFKA_PORT / EVC_KAFKA_CONTROLLER_PORT)"
        fi
    done

    local t0
    t0="$(now_ms)"
    ensure_java
    resolve_libs
    write_config
    format_storage

    log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (controller 127.0.0.1:$EVC_KAFKA_CONTROLLER_PORT), log $OUT"
    local t1
    t1="$(now_ms)"
    echo "=== $(date -Is) starting broker ===" >>"$OUT"
    # setsid: own session, so the terminal's Ctrl-C or the caller's exit leave it alone.
    # The inner shell writes its own pid and then becomes the JVM (exec).
    KAFKA_LIBS="$KAFKA_LIBS" HEAP_OPTS="$HEAP_OPTS" KSCRIPTS="$KSCRIPTS" KCONF="$KCONF" \
        PIDFILE="$PIDFILE" EVC_VAR="$EVC_VAR" \
        setsid nohup bash -c '
            echo $$ >"$PIDFILE"
            exec java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
                -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
                -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$KSCRIPTS/log4j2.properties" \
                -Dkafka.logs.dir="$EVC_VAR/log" \
                -cp "$KAFKA_LIBS/*" kafka.Kafka "$KCONF"
        ' </dev/null >>"$OUT" 2>&1 8>&- 9>&- &
    # Wait (bounded) for the pid file the child writes.
    wait_for 10 "Kafka pid file" test -s "$PIDFILE" || die "Kafka did not start (see $OUT)"

    if ! wait_for "$START_TIMEOUT" "Kafka on $BOOTSTRAP" probe_or_dead; then
        tail -n 30 "$OUT" >&2
        if pid="$(running_pid)"; then
            log "stopping the unresponsive broker (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
        die "Kafka did not become ready (see $OUT)"
    fi
    log "Kafka ready on $BOOTSTRAP (pid $(cat "$PIDFILE")): broker answered ${WAIT_FOR_ELAPSED}s after launch, $(elapsed_s "$t0")s in total"
}

not_running() {
    ! pid_alive "$1"
}

cmd_stop() {
    ensure_dirs
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        log "Kafka not running ($EVC_VAR)"
        return 0
    fi
    log "stopping Kafka (pid $pid)"
    local t0
    t0="$(now_ms)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! EVC_WAIT_INTERVAL=0.2 wait_for "$STOP_TIMEOUT" "Kafka to exit" not_running "$pid"; then
        log "Kafka ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        EVC_WAIT_INTERVAL=0.2 wait_for 10 "Kafka to die" not_running "$pid" || die "cannot kill pid $pid"
    fi
    rm -f "$PIDFILE"
    log "Kafka stopped in $(elapsed_s "$t0")s"
}

cmd_status() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "kafka: stopped ($EVC_VAR)"
        return 3
    fi
    PROBE_PY="$(python_for_probe)"
    if probe; then
        echo "kafka: running pid $pid, bootstrap $BOOTSTRAP, controller 127.0.0.1:$EVC_KAFKA_CONTROLLER_PORT, data $KDATA"
        return 0
    fi
    echo "kafka: pid $pid alive but not answering on $BOOTSTRAP"
    return 1
}

cmd_libs() {
    ensure_java
    resolve_libs
    echo "$KAFKA_LIBS"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart) cmd_stop; cmd_start ;;
    libs) cmd_libs ;;
    *) echo "usage: $0 start|stop|status|restart|libs" >&2; exit 2 ;;
esac
