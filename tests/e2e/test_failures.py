"""Failures (SPEC §5), with kill -9: only the failed part's service is lost, and every supply gets one ticket."""
from __future__ import annotations

import json
import os
import subprocess
import time
from decimal import Decimal

from tests.e2e.harness import LOG_DIR, ROOT, uid, wait_until
from tests.e2e.test_supply_flows import CONNECTED, TELEMETRY, last_telemetry_kwh, plug_in, ticket


def charging(stack, *engine_flags: str):
    """CENTRAL, one CP and one driver with a supply in progress; returns (cp_id, engine, monitor, driver, mark)."""
    stack.start_central()
    cp_id, driver_id = uid("K"), uid("D")
    engine, monitor = stack.start_cp(cp_id, *engine_flags)
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    mark, _ = plug_in(driver, engine, cp_id)
    driver.wait_line(TELEMETRY, 10, mark)
    stack.wait_state(cp_id, "SUMINISTRANDO", 5)
    return cp_id, engine, monitor, driver, mark


def persisted_kwh(cp_id: str) -> Decimal:
    """kWh of the running supply in the Engine's crash file (0 when none)."""
    path = LOG_DIR.parent / "engine-state" / f"{cp_id}.json"
    supply = json.loads(path.read_text()).get("supply") or {}
    return Decimal(supply.get("energy_kwh", "0"))


def test_monitor_killed_while_idle_shows_desconectado_at_once(stack):
    stack.start_central()
    cp_id = uid("M")
    engine, monitor = stack.start_cp(cp_id)
    monitor.kill9()
    started = time.monotonic()
    stack.wait_state(cp_id, "DESCONECTADO", 3)
    assert time.monotonic() - started < 1.5
    engine.wait_line(r"Sin monitor", 5)
    stack.restart(monitor)
    stack.wait_state(cp_id, "ACTIVADO", 15)


def test_monitor_killed_mid_supply_ends_the_supply_with_a_ticket(stack):
    cp_id, engine, monitor, driver, mark = charging(stack)
    monitor.kill9()
    stack.wait_state(cp_id, "DESCONECTADO", 3)
    kwh, reason = ticket(driver, mark, 15)
    assert reason == "MONITOR_LOST" and kwh >= last_telemetry_kwh(driver, cp_id)
    after = engine.mark()
    engine.send("r")  # not even a manual supply without a Monitor
    engine.wait_line(r"Cannot request a supply", 5, after)
    stack.assert_every_supply_ticketed([cp_id])


def test_engine_killed_mid_supply_is_closed_by_its_final_record_after_restart(stack):
    cp_id, engine, monitor, driver, mark = charging(stack)
    seen_before_kill = last_telemetry_kwh(driver, cp_id)
    wait_until(lambda: persisted_kwh(cp_id) >= seen_before_kill, 5, "the engine to persist its supply to disk")
    engine.kill9()
    killed = time.monotonic()
    stack.wait_state(cp_id, "AVERIADO", 4)
    assert time.monotonic() - killed < 3.5
    driver.wait_line(r"averiado", 5, mark)
    stack.restart(engine)
    kwh, reason = ticket(driver, mark, 30)
    assert reason == "ENGINE_LOST"
    assert kwh >= seen_before_kill > 0
    stack.wait_state(cp_id, "ACTIVADO", 15)
    stack.assert_every_supply_ticketed([cp_id])


def test_driver_killed_mid_supply_sees_its_ticket_after_restart(stack):
    cp_id, engine, monitor, driver, mark = charging(stack)
    driver.kill9()
    seen = last_telemetry_kwh(driver, cp_id)
    engine.wait_line(r"Charging \w+: .* kWh", 5, engine.mark())  # the supply goes on without the driver
    stack.wait_state(cp_id, "SUMINISTRANDO", 2)
    engine.send("u")
    stack.assert_every_supply_ticketed([cp_id])
    driver = stack.restart(driver)
    kwh, reason = ticket(driver, 0, 30)
    assert reason == "UNPLUGGED" and kwh >= seen


def test_central_killed_mid_supply_recovers_with_exactly_one_ticket(stack):
    cp_id, engine, monitor, driver, mark = charging(stack)
    stack.central.kill9()
    monitor.wait_line(r"Imposible conectar con la CENTRAL", 10)
    engine.wait_line(r"Charging \w+: .* kWh", 5, engine.mark())  # the CP finishes the supply in progress
    mark_down = driver.mark()
    driver.send(f"request {cp_id}")
    driver.wait_line(r"Imposible conectar con la CENTRAL", 20, mark_down)
    engine.send("u")
    engine.wait_line(r"finished", 5)
    stack.restart(stack.central).wait_line(r"CENTRAL listo", 60)
    wait_until(lambda: stack.api("/api/health"), 20, "API_Central back")
    stack.wait_state(cp_id, "ACTIVADO", 20)
    kwh, reason = ticket(driver, mark, 40)
    assert reason == "UNPLUGGED" and kwh >= last_telemetry_kwh(driver, cp_id)
    rows = stack.assert_every_supply_ticketed([cp_id])
    assert len(rows) == 1


def test_kafka_broker_down_for_ten_seconds_mid_supply(stack, broker):
    cp_id, engine, monitor, driver, mark = charging(stack)
    env = {**os.environ, "EVC_KAFKA_PORT": broker.rpartition(":")[2]}  # restart the test broker, not another
    subprocess.run([str(ROOT / "scripts/kafka.sh"), "stop"], env=env, check=True, timeout=90)
    try:
        time.sleep(10)  # the outage itself is what is being tested: ten seconds without a broker
    finally:
        subprocess.run([str(ROOT / "scripts/kafka.sh"), "start"], env=env, check=True, timeout=120)
    engine.wait_line(r"Charging \w+: .* kWh", 20, engine.mark())
    driver.wait_line(TELEMETRY, 60, driver.mark())
    engine.send("u")
    kwh, reason = ticket(driver, mark, 60)
    assert reason == "UNPLUGGED" and kwh >= last_telemetry_kwh(driver, cp_id)
    for proc in stack.procs:
        assert proc.alive(), f"{proc.name} died during the broker outage"
    stack.assert_every_supply_ticketed([cp_id])
