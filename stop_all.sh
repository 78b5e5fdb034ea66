#!/usr/bin/env bash
# Stops everything ./run_all.sh started: the programs, then Kafka and PostgreSQL.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
. "$ROOT/scripts/procs.sh"
stop_procs
"$ROOT/scripts/kafka.sh" stop
"$ROOT/scripts/postgres.sh" stop
log "stopped"
