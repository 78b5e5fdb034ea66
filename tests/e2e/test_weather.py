"""End to end: the weather office (SPEC §10) with real CENTRAL, CPs, drivers and EV_W against a local OpenWeather stub.

Every test uses its own made-up cities, so the CPs other tests left in the shared database are never
touched by an alert; thresholds are global, so the test that changes them puts the defaults back.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.harness import free_port, uid, wait_until
from tests.e2e.test_supply_flows import CONNECTED, plug_in, request, ticket
from tests.support.openweather_stub import OpenWeatherStub

CENTRAL_KEY = "wx-e2e-" + uid("")
OPENWEATHER_KEY = "test-key"
UNREACHABLE = "Imposible acceder al clima. Conexión con Openweather no disponible"


@pytest.fixture
def stub():
    """The OpenWeather stand-in; cities nobody set answer 15 °C (the CPs other tests left behind)."""
    s = OpenWeatherStub(keys=(OPENWEATHER_KEY,), default_temperature=15.0).start()
    yield s
    s.stop()


@pytest.fixture
def wx(stack, stub):
    """CENTRAL with the weather key; returns the stack."""
    stack.env["EVC_WEATHER_API_KEY"] = CENTRAL_KEY
    stack.start_central()
    return stack


def start_weather(stack, stub, poll_s: float = 1.0, sync_s: float = 60.0, key: str = CENTRAL_KEY, *flags: str):
    """EV_W on this stack's API_Central and the stub; waits for its ready line."""
    proc = stack.start(f"ev_w-{stack.group}", [
        "EV_Weather/EV_W.py", "--api", f"http://127.0.0.1:{stack.api_port}", "--provider", "openweather",
        "--openweather-url", stub.url, "--poll-s", str(poll_s), "--sync-s", str(sync_s),
        "--web-port", str(free_port()), *flags], env={"EVC_OPENWEATHER_API_KEY": OPENWEATHER_KEY,
                                                       "EVC_WEATHER_API_KEY": key})
    proc.wait_line(r"EV_W listo", 30)
    return proc


def city_cps(stack, city: str, n: int) -> list[str]:
    """Register and start n CPs in a city; waits until they are ACTIVADO."""
    ids = [uid("W") for _ in range(n)]
    for cp_id in ids:
        stack.register_cp(cp_id, city=city)
        stack.start_cp(cp_id, register=False)
    return ids


def wait_temperature(stack, cp_id: str, value: float, timeout: float = 10.0) -> dict:
    """Wait until API_Central shows this temperature on a CP."""
    return wait_until(lambda: (cp := stack.cp(cp_id))["temperature"] == value and cp, timeout,
                      f"{cp_id} at {value} °C")


def watched_cp(stack, stub, prefix: str, celsius: float) -> tuple[str, str, object]:
    """One CP in a new city at `celsius`, EV_W polling every second and the reading on API_Central;
    returns (city, cp_id, EV_W)."""
    city = uid(prefix)
    stub.set_temperature(city, "ES", celsius)
    (cp_id,) = city_cps(stack, city, 1)
    ew = start_weather(stack, stub, poll_s=1.0)
    wait_temperature(stack, cp_id, celsius)
    return city, cp_id, ew


def alert_rows(stack, city: str) -> list[str]:
    """weather_alerts kinds of a city, oldest first."""
    with stack.repo.db.transaction() as cur:
        cur.execute("SELECT kind FROM weather_alerts WHERE city = %s ORDER BY id", (city,))
        return [r["kind"] for r in cur.fetchall()]


def test_freeze_stops_idle_cps_once_and_thaw_brings_them_back(wx, stub):
    cold, warm = uid("Frio"), uid("Templado")
    stub.set_temperature(cold, "ES", 5.0)
    stub.set_temperature(warm, "ES", 10.0)
    cold_cps, warm_cps = city_cps(wx, cold, 2), city_cps(wx, warm, 1)
    ew = start_weather(wx, stub, poll_s=4.0)
    for cp_id in cold_cps:
        wait_temperature(wx, cp_id, 5.0, 10)
    wait_temperature(wx, warm_cps[0], 10.0, 10)

    mark = ew.mark()
    stub.set_temperature(cold, "ES", -2.0)
    t0 = time.monotonic()
    for cp_id in cold_cps:
        cp = wx.wait_state(cp_id, "PARADO", 4.0 + 3.0)  # within one poll (plus the round's own time)
        assert cp["out_of_service"] == ["WEATHER"] and cp["temperature"] == -2.0
    latency = time.monotonic() - t0
    print(f"\nthreshold crossing -> PARADO on API_Central: {latency:.2f} s (poll 4 s)")
    assert wx.cp(warm_cps[0])["state"] == "ACTIVADO"
    ew.wait_line(rf"\] ALERTA {cold},ES: -2 °C", 5, mark)

    time.sleep(3 * 4.0)  # still freezing for three more rounds: no second alert
    assert len(ew.matching(rf"\] ALERTA {cold},ES")) == 1
    assert alert_rows(wx, cold) == ["ALERT"]

    stub.set_temperature(cold, "ES", 3.0)
    for cp_id in cold_cps:
        cp = wx.wait_state(cp_id, "ACTIVADO", 4.0 + 3.0)
        assert cp["out_of_service"] == []
    ew.wait_line(rf"FIN DE ALERTA {cold},ES: 3 °C", 5, mark)
    time.sleep(2 * 4.0)
    assert len(ew.matching(rf"FIN DE ALERTA {cold},ES")) == 1
    assert alert_rows(wx, cold) == ["ALERT", "CLEAR"]
    status, overview = wx.api("/api/weather")
    place = next(c for c in overview["cities"] if c["city"] == cold)
    assert status == 200 and place["alert"] is False and place["temperature"] == 3.0
    assert sorted(place["charging_points"]) == sorted(cold_cps)
    assert [a["kind"] for a in overview["alerts"] if a["city"] == cold] == ["CLEAR", "ALERT"]


def test_supplying_cp_finishes_its_supply_before_going_parado(wx, stub):
    city = uid("Nieve")
    stub.set_temperature(city, "ES", 4.0)
    (cp_id,) = city_cps(wx, city, 1)
    engine = next(p for p in wx.procs if p.name == f"engine-{cp_id}")
    driver = wx.start_driver(uid("D"))
    driver.wait_line(CONNECTED, 20)
    mark, supply_id = plug_in(driver, engine, cp_id)
    wx.wait_state(cp_id, "SUMINISTRANDO", 5)
    ew = start_weather(wx, stub, poll_s=1.0)
    wait_temperature(wx, cp_id, 4.0)

    stub.set_temperature(city, "ES", -5.0)
    ew.wait_line(rf"ALERTA {city},ES", 5)
    time.sleep(3.0)  # three rounds under alert: the supply goes on
    cp = wx.cp(cp_id)
    assert cp["state"] == "SUMINISTRANDO" and cp["out_of_service"] == [] and cp["supply"]["supply_id"] == supply_id
    engine.send("u")
    kwh, reason = ticket(driver, mark)
    assert reason == "UNPLUGGED" and kwh > 0
    cp = wx.wait_state(cp_id, "PARADO", 5)
    assert cp["out_of_service"] == ["WEATHER"]
    (row,) = wx.assert_every_supply_ticketed([cp_id])
    assert row["end_reason"] == "UNPLUGGED"
    mark = request(driver, cp_id)
    assert driver.wait_line(rf"DENEGADO en {cp_id}: (\w+)", 10, mark).group(1) == "WEATHER"
    stub.set_temperature(city, "ES", 2.0)
    wx.wait_state(cp_id, "ACTIVADO", 5)


def test_operator_stop_and_weather_alert_are_independent(wx, stub):
    city, cp_id, _ = watched_cp(wx, stub, "Helada", 6.0)

    def reasons(expected: list[str]) -> dict:
        return wait_until(lambda: (cp := wx.cp(cp_id))["out_of_service"] == expected and cp, 5, f"reasons {expected}")

    assert wx.api(f"/api/charging_points/{cp_id}/stop", "POST")[0] == 200
    reasons(["OPERATOR"])
    stub.set_temperature(city, "ES", -1.0)
    reasons(["OPERATOR", "WEATHER"])
    stub.set_temperature(city, "ES", 1.0)  # CLEAR: the operator stop stays
    reasons(["OPERATOR"])
    time.sleep(2.0)
    assert wx.cp(cp_id)["state"] == "PARADO"
    stub.set_temperature(city, "ES", -3.0)
    reasons(["OPERATOR", "WEATHER"])
    assert wx.api(f"/api/charging_points/{cp_id}/resume", "POST")[0] == 200  # resume: the alert stays
    reasons(["WEATHER"])
    time.sleep(2.0)
    assert wx.cp(cp_id)["state"] == "PARADO"
    stub.set_temperature(city, "ES", 4.0)
    wx.wait_state(cp_id, "ACTIVADO", 5)


def _messages(stack) -> list[str]:
    status, rows = stack.api("/api/messages")
    assert status == 200
    return [r["text"] for r in rows if r["component"] == "EV_W"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_provider_error_for_one_city_shows_the_message_and_others_keep_updating(wx, stub, status):
    bad, good = uid("Roto"), uid("Bueno")
    stub.set_temperature(bad, "ES", 7.0)
    stub.set_temperature(good, "ES", 8.0)
    (bad_cp,), (good_cp,) = city_cps(wx, bad, 1), city_cps(wx, good, 1)
    ew = start_weather(wx, stub, poll_s=1.0)
    wait_temperature(wx, bad_cp, 7.0)

    stub.set_error(bad, "ES", status)
    line = ew.wait_line(rf"{UNREACHABLE} \({bad},ES: OpenWeather HTTP {status}", 5).group(0)
    wait_until(lambda: any(UNREACHABLE in t and bad in t and str(status) in t for t in _messages(wx)), 5,
               "the message on API_Central")
    for value in (9.0, 10.5):  # the other city keeps updating
        stub.set_temperature(good, "ES", value)
        wait_temperature(wx, good_cp, value, 5)
    assert wx.cp(bad_cp)["temperature"] == 7.0  # last known value kept
    assert len(ew.matching(UNREACHABLE)) == 1, line  # once per outage, not every round
    stub.set_error(bad, "ES", None)
    stub.set_temperature(bad, "ES", 6.5)
    ew.wait_line(rf"Clima disponible de nuevo: .*{bad},ES", 5)
    wait_temperature(wx, bad_cp, 6.5, 5)
    assert ew.alive()


def test_openweather_down_shows_the_message_and_ew_recovers(wx, stub):
    city, cp_id, ew = watched_cp(wx, stub, "Caido", 11.0)
    stub.stop()
    ew.wait_line(rf"{UNREACHABLE} \((todas las ciudades|.*{city},ES).*: sin conexión con OpenWeather", 6)
    wait_until(lambda: any(UNREACHABLE in t and "sin conexión" in t for t in _messages(wx)), 5,
               "the message on API_Central")
    time.sleep(2.0)
    assert ew.alive() and wx.cp(cp_id)["temperature"] == 11.0
    stub.set_temperature(city, "ES", 12.0)
    stub.start()
    wait_temperature(wx, cp_id, 12.0, 6)
    ew.wait_line(r"Clima disponible de nuevo", 5)
    assert not any(k in line for line in ew.lines for k in (OPENWEATHER_KEY, CENTRAL_KEY))  # keys never shown


def test_thresholds_changed_through_the_api_apply_on_the_next_poll(wx, stub):
    city, cp_id, ew = watched_cp(wx, stub, "Umbral", 5.0)
    try:
        assert wx.api("/api/weather/thresholds", "PUT", {"min_c": 3, "max_c": 2})[0] == 400
        status, body = wx.api("/api/weather/thresholds", "PUT", {"min_c": 6, "max_c": None})
        assert status == 200 and body == {"min_c": 6.0, "max_c": None}
        t0 = time.monotonic()
        wx.wait_state(cp_id, "PARADO", 1.0 + 3.0)
        print(f"\nthreshold change -> PARADO: {time.monotonic() - t0:.2f} s (poll 1 s)")
        ew.wait_line(r"Umbrales: \[6 °C, —\]", 3)
        assert wx.api("/api/weather/thresholds", "PUT", {"min_c": 0, "max_c": 4.5})[0] == 200  # too hot now
        time.sleep(2.5)
        assert wx.cp(cp_id)["out_of_service"] == ["WEATHER"]  # still out of range: no CLEAR, no second ALERT
        assert alert_rows(wx, city) == ["ALERT"]
        assert wx.api("/api/weather/thresholds", "PUT", {"min_c": 0, "max_c": 30})[0] == 200
        wx.wait_state(cp_id, "ACTIVADO", 4)
    finally:
        wx.api("/api/weather/thresholds", "PUT", {"min_c": 0, "max_c": None})


def test_locations_follow_the_api_and_the_operator_without_restart(wx, stub):
    ew = start_weather(wx, stub, poll_s=1.0, sync_s=2.0)
    city, manual = uid("Nueva"), uid("Manual")
    stub.set_temperature(city, "ES", 13.0)
    stub.set_temperature(manual, "FR", 14.0)
    cp_id = uid("N")
    status, _ = wx.api("/api/charging_points", "POST", {"cp_id": cp_id, "address": "Calle Nueva 1", "city": city,
                                                        "country": "ES", "price_eur_kwh": "0.30", "power_kw": "22"})
    assert status == 201
    t0 = time.monotonic()
    ew.wait_line(rf"Ubicación añadida \(CP\): {city},ES", 2.0 + 3.0)
    print(f"\nCP added -> in EV_W's list: {time.monotonic() - t0:.2f} s (sync 2 s)")
    wait_temperature(wx, cp_id, 13.0, 5)

    ew.send(f"add {manual},FR")  # console (stdin, no terminal)
    ew.wait_line(rf"Ubicación añadida: {manual},FR", 5)
    wait_until(lambda: stub.count(manual, "FR") > 0, 5, "EV_W polling the operator's city")
    ew.send(f"remove {manual},FR")
    ew.wait_line(rf"Ubicación retirada: {manual},FR", 5)
    time.sleep(1.5)
    seen = stub.count(manual, "FR")
    time.sleep(2.5)
    assert stub.count(manual, "FR") == seen

    assert wx.api(f"/api/charging_points/{cp_id}", "DELETE")[0] == 200
    ew.wait_line(rf"Ubicación retirada \(sin CPs\): {city},ES", 2.0 + 3.0)
    assert ew.alive()


def test_weather_writes_without_the_key_are_refused_and_audited(wx, stub, repo):
    city = uid("Clave")
    for headers in ({}, {"X-API-Key": "wrong"}):
        req = urllib.request.Request(f"http://127.0.0.1:{wx.api_port}/api/weather/alerts", method="POST",
                                     data=json.dumps({"city": city, "kind": "ALERT", "temperature": -9}).encode(),
                                     headers={"Content-Type": "application/json", **headers})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 401 and json.loads(info.value.read())["error"] == "BAD_API_KEY"
    with repo.db.transaction() as cur:
        cur.execute("SELECT description FROM audit_log WHERE category = 'SECURITY' AND action LIKE 'weather_key_refused%%' "
                    "AND ts > now() - interval '1 minute'")
        whys = [r["description"] for r in cur.fetchall()]
    assert "missing API key" in whys and "wrong API key" in whys
    assert alert_rows(wx, city) == []
    stub.set_temperature(city, "ES", -4.0)
    (cp_id,) = city_cps(wx, city, 1)
    ew = start_weather(wx, stub, poll_s=1.0, key="not-the-key")
    ew.wait_line(r"rechaza la clave del servicio de clima", 5)
    time.sleep(2.0)
    assert wx.cp(cp_id)["state"] == "ACTIVADO" and alert_rows(wx, city) == []


def test_scenario_provider_freezes_a_city_offline(wx, stub, tmp_path):
    city = uid("Escena")
    (cp_id,) = city_cps(wx, city, 1)
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"period_s": 1000, "cities": {f"{city},ES": [[0, 5], [3, 5], [3.5, -2], [1000, -2]]}}))
    ew = start_weather(wx, stub, 1.0, 60.0, CENTRAL_KEY, "--provider", "scenario", "--scenario", str(scenario))
    wait_temperature(wx, cp_id, 5.0)
    cp = wx.wait_state(cp_id, "PARADO", 10)
    assert cp["out_of_service"] == ["WEATHER"] and cp["temperature"] == -2.0
    ew.wait_line(rf"\] ALERTA {city},ES", 3)
    assert stub.count(city, "ES") == 0  # offline: OpenWeather never asked
