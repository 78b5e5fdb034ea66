"""End to end: supplies, denials, services files and operator commands with real programs (SPEC §4)."""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.harness import uid, wait_until

TELEMETRY = r"(?P<cp>\S+) cargando: (?P<kw>[\d.]+) kW · (?P<kwh>[\d.]+) kWh"
TICKET_KWH = r"Energía\s+: (?P<kwh>[\d.]+) kWh"
TICKET_REASON = r"Finalizado por : (?P<reason>[A-Z_]+)"
CONNECTED = r"Conectado con la CENTRAL"


def last_telemetry_kwh(driver, cp_id: str) -> Decimal:
    """The last kWh a driver saw for a CP (0 if none)."""
    values = [Decimal(m.group("kwh")) for m in driver.matching(TELEMETRY) if m.group("cp") == cp_id]
    return values[-1] if values else Decimal(0)


def request(driver, cp_id: str) -> int:
    """Type a request on the driver's console; returns the output mark before it."""
    mark = driver.mark()
    driver.send(f"request {cp_id}")
    return mark


def authorized(driver, cp_id: str, mark: int, timeout: float = 10) -> str:
    """Wait for the authorization of a request; returns the supply id."""
    return driver.wait_line(rf"AUTORIZADO en {cp_id} \(suministro (\w+)", timeout, mark).group(1)


def plug_in(driver, engine, cp_id: str) -> tuple[int, str]:
    """Request a supply on the driver's console and plug in at the Engine once it is authorized;
    returns (the output mark before the request, the supply id)."""
    mark = request(driver, cp_id)
    supply_id = authorized(driver, cp_id, mark)
    engine.wait_line(rf"Supply {supply_id} authorized", 10)
    engine.send("p")
    return mark, supply_id


def ticket(driver, mark: int, timeout: float = 20) -> tuple[Decimal, str]:
    """Wait for the next ticket; returns (kWh, end reason)."""
    driver.wait_line(r"TICKET", timeout, mark)
    kwh = Decimal(driver.wait_line(TICKET_KWH, 5, mark).group("kwh"))
    reason = driver.wait_line(TICKET_REASON, 5, mark).group("reason")
    return kwh, reason


def test_full_supply_ends_with_one_ticket(stack):
    stack.start_central()
    cp_id, driver_id = uid("C"), uid("D")
    engine, _ = stack.start_cp(cp_id)
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    mark, supply_id = plug_in(driver, engine, cp_id)
    driver.wait_line(rf"Carga INICIADA en {cp_id}", 10, mark)
    stack.wait_state(cp_id, "SUMINISTRANDO", 5)
    driver.wait_line(TELEMETRY, 10, mark)
    live = wait_until(lambda: (cp := stack.cp(cp_id))["supply"] and Decimal(cp["supply"]["energy_kwh"]) > 0 and cp, 10,
                      "live figures on API_Central")
    assert live["supply"]["driver_id"] == driver_id
    engine.send("u")
    kwh, reason = ticket(driver, mark)
    assert reason == "UNPLUGGED"
    assert kwh >= last_telemetry_kwh(driver, cp_id) > 0
    stack.wait_state(cp_id, "ACTIVADO", 5)
    rows = stack.assert_every_supply_ticketed([cp_id])
    assert [r["supply_id"] for r in rows] == [supply_id]
    status, supplies = stack.api(f"/api/supplies?status=finished&cp_id={cp_id}")
    assert status == 200 and supplies[0]["end_reason"] == "UNPLUGGED"


def test_every_denial_reason_is_shown_to_the_driver(stack, repo):
    weather_cp = uid("W")
    stack.register_cp(weather_cp)
    with repo.db.transaction() as cur:  # a weather alert stored before CENTRAL starts
        cur.execute("UPDATE charging_points SET out_of_service = '{WEATHER}' WHERE cp_id = %s", (weather_cp,))
    stack.start_central()
    idle, faulty, stopped, busy, other = (uid(p) for p in ("I", "F", "S", "B", "O"))
    stack.register_cp(idle)  # registered, never connected: DISCONNECTED
    faulty_engine, _ = stack.start_cp(faulty)
    stack.start_cp(stopped)
    stack.start_cp(busy)
    stack.start_cp(other)
    stack.start_engine(weather_cp)
    stack.start_monitor(weather_cp)
    stack.wait_state(weather_cp, "PARADO", 20)
    faulty_engine.send("k")
    stack.wait_state(faulty, "AVERIADO", 5)
    assert stack.api(f"/api/charging_points/{stopped}/stop", "POST")[0] == 200
    first, second = uid("D"), uid("D")
    d1 = stack.start_driver(first)
    d2 = stack.start_driver(second)
    stranger = stack.start_driver(uid("U"), register=False)
    twin = stack.start_driver(first, register=False)  # the same driver on a second app: CENTRAL must still refuse
    for d in (d1, d2, stranger, twin):
        d.wait_line(CONNECTED, 20)
    authorized(d1, busy, request(d1, busy))

    cases = [(d2, "NOPE" + uid(""), "CP_NOT_FOUND"), (d2, idle, "DISCONNECTED"), (d2, faulty, "FAULTY"),
             (d2, stopped, "OUT_OF_ORDER"), (d2, busy, "BUSY"), (d2, weather_cp, "WEATHER"),
             (twin, other, "DRIVER_BUSY"), (stranger, other, "UNKNOWN_DRIVER")]
    for driver, cp_id, reason in cases:
        mark = request(driver, cp_id)
        line = driver.wait_line(rf"DENEGADO en {cp_id}: (\w+)", 10, mark)
        assert line.group(1) == reason, (cp_id, line.group(0))
    d1.send("stop")
    stack.assert_every_supply_ticketed([busy])


def test_services_file_runs_every_entry_with_four_second_waits(stack, tmp_path: Path):
    stack.start_central()
    cps = [uid("F") for _ in range(3)]
    for cp_id in cps:
        stack.start_cp(cp_id, "--auto-plug", "0.3", "--auto-unplug", "1")
    entries = [cps[i % 3] for i in range(9)] + ["XXX" + uid(""), cps[0]]
    services = tmp_path / "services.txt"
    services.write_text("# test services\n\n" + "\n".join(entries) + "\n")
    driver = stack.start_driver(uid("D"), "--file", str(services), "--exit-when-done")
    driver.wait_line(r"RESUMEN", 180)
    starts = [t for t, line in driver.timed_lines() if re.search(r"\[\d+/11\] Solicitando", line)]
    ends = [t for t, line in driver.timed_lines() if re.search(r"^\[[\d:]+\] \[\s*\d+/11\] \S+\s+(ok|denied|failed)", line)]
    assert len(starts) == len(ends) == 11
    gaps = [start - end for end, start in zip(ends, starts[1:])]
    assert min(gaps) >= 3.9, gaps
    assert driver.wait_line(r"ok: (\d+) · denied: (\d+)", 5).groups() == ("10", "1")
    rows = stack.assert_every_supply_ticketed(cps)
    assert len(rows) == 10 and all(r["ticket_reason"] == "UNPLUGGED" for r in rows)
    wait_until(lambda: not driver.alive(), 10, "driver to exit when done")


def test_operator_stop_and_resume_one_and_all(stack):
    stack.start_central()
    cp_a, cp_b, driver_id = uid("A"), uid("B"), uid("D")
    engine, _ = stack.start_cp(cp_a)
    stack.start_cp(cp_b)
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    mark, _ = plug_in(driver, engine, cp_a)
    driver.wait_line(TELEMETRY, 10, mark)
    assert stack.api(f"/api/charging_points/{cp_a}/stop", "POST")[0] == 200
    kwh, reason = ticket(driver, mark)
    assert reason == "STOPPED_BY_OPERATOR" and kwh >= last_telemetry_kwh(driver, cp_a)
    cp = stack.wait_state(cp_a, "PARADO", 5)
    assert cp["colour"] == "orange" and "Out of Order" in cp["caption"]
    assert stack.api(f"/api/charging_points/{cp_a}/resume", "POST")[0] == 200
    stack.wait_state(cp_a, "ACTIVADO", 5)
    status, body = stack.api("/api/charging_points/stop", "POST")
    assert status == 200 and {cp_a, cp_b} <= set(body["charging_points"])
    for cp_id in (cp_a, cp_b):
        stack.wait_state(cp_id, "PARADO", 5)
    assert stack.api("/api/charging_points/resume", "POST")[0] == 200
    for cp_id in (cp_a, cp_b):
        stack.wait_state(cp_id, "ACTIVADO", 5)
    stack.assert_every_supply_ticketed([cp_a])


def test_authorization_expires_and_frees_the_cp(stack):
    stack.start_central(auth_timeout=2)
    cp_id, driver_id = uid("E"), uid("D")
    engine, _ = stack.start_cp(cp_id)
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    mark = request(driver, cp_id)
    authorized(driver, cp_id, mark)
    kwh, reason = ticket(driver, mark, 10)
    assert reason == "AUTH_EXPIRED" and kwh == 0
    engine.wait_line(r"cancelled by CENTRAL \(AUTH_EXPIRED\)|expired", 10)
    stack.wait_state(cp_id, "ACTIVADO", 5)
    mark = request(driver, cp_id)
    authorized(driver, cp_id, mark)  # the CP is free again
    stack.api(f"/api/charging_points/{cp_id}/stop", "POST")
    stack.assert_every_supply_ticketed([cp_id])


def test_two_drivers_each_see_only_their_own_messages(stack):
    stack.start_central()
    cp_1, cp_2 = uid("P"), uid("Q")
    stack.start_cp(cp_1, "--auto-plug", "0.2", "--auto-unplug", "3")
    stack.start_cp(cp_2, "--auto-plug", "0.2", "--auto-unplug", "3")
    d1, d2 = stack.start_driver(uid("D")), stack.start_driver(uid("D"))
    d1.wait_line(CONNECTED, 20)
    d2.wait_line(CONNECTED, 20)
    m1, m2 = request(d1, cp_1), request(d2, cp_2)
    s1, s2 = authorized(d1, cp_1, m1), authorized(d2, cp_2, m2)
    ticket(d1, m1)
    ticket(d2, m2)
    text1, text2 = "\n".join(d1.lines), "\n".join(d2.lines)
    assert s2 not in text1 and f"{cp_2} cargando" not in text1
    assert s1 not in text2 and f"{cp_1} cargando" not in text2
    stack.assert_every_supply_ticketed([cp_1, cp_2])


@pytest.mark.parametrize("reason_cmd", ["stop"])
def test_driver_stop_request_ends_its_supply(stack, reason_cmd):
    stack.start_central()
    cp_id, driver_id = uid("S"), uid("D")
    stack.start_cp(cp_id, "--auto-plug", "0.2")
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    mark = request(driver, cp_id)
    authorized(driver, cp_id, mark)
    driver.wait_line(TELEMETRY, 10, mark)
    driver.send(reason_cmd)
    kwh, reason = ticket(driver, mark)
    assert reason == "DRIVER_STOP" and kwh >= last_telemetry_kwh(driver, cp_id)
    stack.assert_every_supply_ticketed([cp_id])
