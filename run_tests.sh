#!/usr/bin/env bash
# Runs every test: sets up the virtualenv, starts a private Kafka and PostgreSQL for the tests
# (var/test, ports 19092/19093/15432 unless EVC_TEST_VAR, EVC_TEST_KAFKA_PORT,
# EVC_TEST_KAFKA_CONTROLLER_PORT, EVC_TEST_PG_PORT say otherwise), runs pytest, and stops them again.
# Extra arguments go to pytest, e.g. ./run_tests.sh tests/e2e -k failures; with only tests/unit paths
# (./run_tests.sh tests/unit -q) no service is started.
set -euo pipefail
export EVC_VAR="${EVC_TEST_VAR:-var/test}"
export EVC_KAFKA_PORT="${EVC_TEST_KAFKA_PORT:-19092}"
export EVC_KAFKA_CONTROLLER_PORT="${EVC_TEST_KAFKA_CONTROLLER_PORT:-19093}"
export EVC_PG_PORT="${EVC_TEST_PG_PORT:-15432}"
. "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
t0="$(now_ms)"

"$ROOT/scripts/python_env.sh" >/dev/null
cd "$ROOT"

# Only unit tests asked for: they need no broker, database or browser.
only_unit=1
for arg in "$@"; do
    case "$arg" in
        -*) ;;
        tests/unit|tests/unit/*) ;;
        *) only_unit=0 ;;
    esac
done
[ $# -eq 0 ] && only_unit=0
if [ "$only_unit" = 1 ]; then
    exec "$ROOT/.venv/bin/python" -m pytest "$@"
fi

EVC_CHROMIUM="$("$ROOT/scripts/browser.sh")"
export EVC_CHROMIUM
cleanup() {
    "$ROOT/scripts/kafka.sh" stop || true
    "$ROOT/scripts/postgres.sh" stop || true
}
trap cleanup EXIT
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/postgres.sh" start
export EVC_DB_ENV_FILE="$EVC_VAR/db.env"
export EVC_TEST_BROKER="127.0.0.1:$EVC_KAFKA_PORT"
log "services ready in $(elapsed_s "$t0") s; running pytest"

set +e
"$ROOT/.venv/bin/python" -m pytest "${@:-tests}"
rc=$?
set -e
log "tests finished in $(elapsed_s "$t0") s (exit $rc)"
exit "$rc"
