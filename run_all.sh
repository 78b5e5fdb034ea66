#!/usr/bin/env bash
# Runs the whole EV Charging Network on this machine: local Kafka and PostgreSQL under var/,
# CENTRAL (+ API_Central), the operator Front, the Weather office (scenario: Bilbao freezes for a
# while), the demo network of 8 CPs (Engine + Monitor + owner panel each) and 3 drivers working
# through their services files (each with its web app). ./stop_all.sh stops everything.
#
# Environment: EVC_CENTRAL_PORT (8020), EVC_API_PORT (8000), EVC_FRONT_PORT (5000), EVC_WEATHER_PORT (5003),
# EVC_KAFKA_PORT (9092), EVC_PG_PORT (5432), EVC_ENGINE_BASE_PORT (6001), EVC_PANEL_BASE_PORT (5051),
# EVC_DRIVER_WEB_BASE_PORT (5101), EVC_DEMO_PLUG_S (2), EVC_DEMO_CHARGE_S (8),
# EVC_OPENWEATHER_API_KEY (real weather instead of the scenario).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
. "$ROOT/scripts/procs.sh"
t0="$(now_ms)"

CENTRAL_PORT="${EVC_CENTRAL_PORT:-8020}"
API_PORT="${EVC_API_PORT:-8000}"
ENGINE_BASE="${EVC_ENGINE_BASE_PORT:-6001}"
PANEL_BASE="${EVC_PANEL_BASE_PORT:-5051}"
DRIVER_WEB_BASE="${EVC_DRIVER_WEB_BASE_PORT:-5101}"
FRONT_PORT="${EVC_FRONT_PORT:-5000}"
WEATHER_PORT="${EVC_WEATHER_PORT:-5003}"
BROKER="127.0.0.1:$EVC_KAFKA_PORT"

"$ROOT/scripts/python_env.sh" >/dev/null
PY="$ROOT/.venv/bin/python"
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/postgres.sh" start
export EVC_DB_ENV_FILE="$EVC_VAR/db.env"

# Secrets are generated on this machine, kept in var/secrets (mode 600) and never printed or committed.
mkdir -p "$EVC_VAR/secrets"
new_secret() { [ -s "$1" ] || (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$1"); }
export EVC_WEATHER_API_KEY_FILE="$EVC_VAR/secrets/weather_api_key"
new_secret "$EVC_WEATHER_API_KEY_FILE"

"$PY" EV_Central_Server/admin.py load demo/network.json
LOGINS="$EVC_VAR/secrets/demo-driver-logins.txt"
if [ ! -s "$LOGINS" ]; then
    (umask 077; : >"$LOGINS")
    for driver in $("$PY" -c 'import json; print(" ".join(json.load(open("demo/network.json"))["drivers"]))'); do
        password="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(9))')"
        printf '%s\n' "$password" | "$PY" EV_Central_Server/admin.py set-password "$driver" >/dev/null
        printf '%s %s\n' "$driver" "$password" >>"$LOGINS"
    done
fi
start_proc central "$PY" EV_Central_Server/EV_Central.py "$CENTRAL_PORT" "$BROKER" --api-port "$API_PORT"
wait_for 60 "API_Central" curl -fs "http://127.0.0.1:$API_PORT/api/health" -o /dev/null \
    || die "CENTRAL did not start; see $EVC_VAR/log/central.out"

mapfile -t CPS < <("$PY" -c 'import json,sys; [print(c["cp_id"]) for c in json.load(open(sys.argv[1]))["charging_points"]]' demo/network.json)
n=0
for cp in "${CPS[@]}"; do  # Engines first: a Monitor that finds no Engine reports a fault (AVERIADO)
    start_proc "engine-$cp" "$PY" EV_CP/EV_CP_E.py "$BROKER" --listen-port $((ENGINE_BASE + n)) \
        --auto-plug "${EVC_DEMO_PLUG_S:-2}" --auto-unplug "${EVC_DEMO_CHARGE_S:-8}" --web-port $((PANEL_BASE + n))
    n=$((n + 1))
done
n=0
for cp in "${CPS[@]}"; do
    port=$((ENGINE_BASE + n))
    wait_for 30 "the Engine of $cp" port_in_use "$port" || log "Engine of $cp not listening yet; see $EVC_VAR/log/engine-$cp.out"
    start_proc "monitor-$cp" "$PY" EV_CP/EV_CP_M.py "127.0.0.1:$port" "127.0.0.1:$CENTRAL_PORT" "$cp"
    n=$((n + 1))
done

cps_up() {
    curl -fs "http://127.0.0.1:$API_PORT/api/charging_points" \
        | "$PY" -c 'import json,sys; sys.exit(0 if all(c["state"] != "DESCONECTADO" for c in json.load(sys.stdin)) else 1)'
}
wait_for 60 "every CP to authenticate" cps_up || log "some CPs are still DESCONECTADO; see $EVC_VAR/log/monitor-*.out"

i=1
for services in demo/services/driver*.txt; do
    driver="$(printf 'DRV%03d' "$i")"
    start_proc "driver-$driver" "$PY" EV_Driver/EV_Driver.py "$BROKER" "$driver" --file "$services" \
        --web-port $((DRIVER_WEB_BASE + i - 1))
    i=$((i + 1))
done

start_proc front "$PY" EV_Central_Server/EV_Front.py --api "http://127.0.0.1:$API_PORT" --port "$FRONT_PORT"
WEATHER_PROVIDER=scenario
[ -n "${EVC_OPENWEATHER_API_KEY:-}" ] && WEATHER_PROVIDER=openweather
start_proc weather "$PY" EV_Weather/EV_W.py --api "http://127.0.0.1:$API_PORT" --provider "$WEATHER_PROVIDER" \
    --scenario demo/weather/scenario.json --web-port "$WEATHER_PORT" --no-console
wait_for 30 "the operator Front" curl -fs "http://127.0.0.1:$FRONT_PORT/" -o /dev/null || log "the Front is not up yet; see $EVC_VAR/log/front.out"

cat <<MSG

EV Charging Network is up in $(elapsed_s "$t0") s.
  Operator Front   http://127.0.0.1:$FRONT_PORT/
  Driver web apps  http://127.0.0.1:$DRIVER_WEB_BASE/ … (DRV001, DRV002, DRV003; logins in $LOGINS)
  Engine panels    http://127.0.0.1:$PANEL_BASE/ … http://127.0.0.1:$((PANEL_BASE + ${#CPS[@]} - 1))/ (one per CP, same order as demo/network.json)
  Weather office   http://127.0.0.1:$WEATHER_PORT/  (provider: $WEATHER_PROVIDER; Bilbao freezes for a while)
  API_Central      http://127.0.0.1:$API_PORT/api/charging_points
                   http://127.0.0.1:$API_PORT/api/supplies
  CENTRAL sockets  127.0.0.1:$CENTRAL_PORT      Kafka $BROKER      PostgreSQL 127.0.0.1:$EVC_PG_PORT
  Logs             $EVC_VAR/log/  (central.out, engine-<CP>.out, monitor-<CP>.out, driver-<ID>.out)
  Watch            tail -f $EVC_VAR/log/driver-DRV001.out $EVC_VAR/log/central.out
  Stop             ./stop_all.sh
MSG
