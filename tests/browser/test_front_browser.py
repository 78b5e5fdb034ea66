"""The operator Front in headless Chromium against the real system (issue 3).

CENTRAL, CPs and drivers run as real processes (tests/e2e/harness.Stack) on the test broker and
database; the Front runs as its own process. Every expectation has an explicit timeout and no sleep
stands in for synchronisation. Lags are measured two ways and printed (and appended to
$EVC_VAR/log/e2e/front-lag.log):
  * expect: time.monotonic() before the action to the moment Playwright's expectation passed (an upper
    bound: Playwright re-checks at 100/250/500/1000 ms intervals);
  * page: the wall-clock time (Date.now()) at which a MutationObserver in the page saw the tile's
    data-state change, minus time.time() just before the action (same machine, same clock).
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from tests.browser.conftest import screenshot
from tests.e2e.harness import LOG_DIR, free_port, uid, wait_until

expect = pytest.importorskip("playwright.sync_api").expect

CONNECTED = r"Conectado con la CENTRAL"
TELEMETRY = r"cargando: [\d.]+ kW"
LAG_LOG = LOG_DIR / "front-lag.log"

WATCH_TILES = """
() => {
  window.__evcLog = [];
  const last = {};
  const record = () => {
    for (const tile of document.querySelectorAll('#tiles [data-cp]')) {
      const cp = tile.dataset.cp, state = tile.dataset.state;
      if (last[cp] !== state) { last[cp] = state; window.__evcLog.push({cp, state, t: Date.now()}); }
    }
  };
  new MutationObserver(record).observe(document.getElementById('tiles'),
    {attributes: true, subtree: true, childList: true, attributeFilter: ['data-state']});
  record();
  window.__evcLoaded = 'no reload since ' + Date.now();
}
"""


def start_front(stack):
    """The Front as its own process, pointed at this stack's API_Central; returns its URL."""
    port = free_port()
    proc = stack.start(f"front-{stack.group}", ["EV_Central_Server/EV_Front.py", "--api", f"http://127.0.0.1:{stack.api_port}",
                                                "--port", str(port), "--host", "127.0.0.1"])
    proc.wait_line(r"Front listo", 20)
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: urllib.request.urlopen(url + "front/health", timeout=2).status == 200, 20, "the Front")
    return url


def open_front(new_page, url: str, cp_ids, state: str = "ACTIVADO"):
    """A Front page showing these CPs in a state, with the tile watcher installed."""
    page = new_page()
    page.goto(url)
    expect(page).to_have_title("EV Charging Network — CENTRAL")
    for cp_id in cp_ids:
        expect(tile(page, cp_id)).to_have_attribute("data-state", state, timeout=5000)
    page.evaluate(WATCH_TILES)
    return page


def tile(page, cp_id: str):
    return page.locator(f'[data-cp="{cp_id}"]')


def state_class(state: str):
    return re.compile(rf"\bstate-{state}\b")


def seen_in_page(page, cp_id: str, state: str, after: float) -> float:
    """Seconds from `after` (time.time()) to the moment the page showed the CP in that state."""
    log = page.evaluate("() => window.__evcLog")
    times = [entry["t"] / 1000 for entry in log if entry["cp"] == cp_id and entry["state"] == state and entry["t"] / 1000 >= after - 0.05]
    assert times, f"the page never recorded {cp_id} {state}: {log}"
    return times[0] - after


def report_lag(what: str, expect_s: float, page_s=None) -> None:
    """Print and keep one lag figure."""
    entry = {"what": what, "expect_s": round(expect_s, 3), "page_s": None if page_s is None else round(page_s, 3)}
    print(f"LAG {json.dumps(entry, ensure_ascii=False)}")
    LAG_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LAG_LOG, "a", encoding="utf-8") as out:
        out.write(json.dumps({**entry, "ts": time.time()}) + "\n")


def timed_state(page, cp_id: str, state: str, timeout_s: float, started_wall: float, started_mono: float, what: str):
    """Expect a tile to turn to a state within a bound; report both lag measures."""
    expect(tile(page, cp_id)).to_have_class(state_class(state), timeout=timeout_s * 1000)
    expect_s = time.monotonic() - started_mono
    report_lag(what, expect_s, seen_in_page(page, cp_id, state, started_wall))
    return expect_s


def test_operator_stop_is_seen_in_a_second_page_and_the_driver_gets_a_ticket(stack, new_page):
    stack.start_central()
    cp_id, other, offline, driver_id = uid("ALC"), uid("MAD"), uid("SEV"), uid("DRV")
    stack.register_cp(cp_id, city="Alicante", price="0.35")
    stack.register_cp(other, city="Madrid", price="0.42", power="50")
    stack.register_cp(offline, city="Sevilla")  # never started: grey
    engine, _ = stack.start_cp(cp_id, register=False)
    stack.start_cp(other, register=False)
    url = start_front(stack)
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    operator = open_front(new_page, url, [cp_id, other])
    watcher = open_front(new_page, url, [cp_id, other])
    expect(tile(watcher, offline)).to_have_class(state_class("DESCONECTADO"))
    screenshot(watcher, "front-idle")

    mark = driver.mark()
    driver.send(f"request {cp_id}")
    supply_id = driver.wait_line(rf"AUTORIZADO en {cp_id} \(suministro (\w+)", 10, mark).group(1)
    engine.wait_line(rf"Supply {supply_id} authorized", 10)
    wall, mono = time.time(), time.monotonic()
    engine.send("p")
    timed_state(watcher, cp_id, "SUMINISTRANDO", 2, wall, mono, "plug on the Engine -> tile SUMINISTRANDO")
    driver.wait_line(TELEMETRY, 10, mark)
    live = tile(watcher, cp_id)
    expect(live.locator('[data-field="driver"]')).to_have_text(driver_id, timeout=2000)
    expect(live.locator('[data-field="kwh"]')).not_to_have_text(re.compile(r"^0\.000 kWh$"), timeout=5000)
    expect(live.locator('[data-field="kw"]')).to_have_text(re.compile(r"^[\d.]+ kW$"))
    expect(live.locator('[data-field="eur"]')).to_have_text(re.compile(r"^[\d.]+ €$"))
    ongoing = watcher.locator(f'#ongoing tr[data-ongoing-cp="{cp_id}"]')
    expect(ongoing).to_contain_text(driver_id, timeout=2000)
    expect(ongoing.locator("td").nth(0)).to_have_text(re.compile(r"\d{1,2}/\d{1,2}/\d{4}"))
    expect(ongoing.locator("td").nth(1)).to_have_text(re.compile(r"\d{1,2}:\d{2}:\d{2}"))
    watcher.bring_to_front()
    screenshot(watcher, "front-supplying")

    operator.bring_to_front()  # Chromium throttles animation frames (Playwright's click checks) in background tabs
    wall, mono = time.time(), time.monotonic()
    tile(operator, cp_id).locator('[data-action="stop"]').click()
    timed_state(watcher, cp_id, "PARADO", 1, wall, mono, "stop clicked on page 1 -> orange tile on page 2")
    expect(tile(watcher, cp_id).locator('[data-field="caption"]')).to_have_text("Out of Order (OPERATOR)")
    expect(tile(watcher, cp_id)).to_have_attribute("data-colour", "orange")
    expect(operator.locator("#notice")).to_contain_text(f"{cp_id}: parado por el operador")
    expect(ongoing).to_have_count(0, timeout=2000)
    driver.wait_line(r"Finalizado por : STOPPED_BY_OPERATOR", 10, mark)
    expect(tile(watcher, other)).to_have_attribute("data-state", "ACTIVADO")
    expect(watcher.locator("#messages")).to_contain_text(f"CP {cp_id} parado (OPERATOR)", timeout=4000)
    watcher.bring_to_front()
    screenshot(watcher, "front-stopped")

    operator.bring_to_front()
    wall, mono = time.time(), time.monotonic()
    tile(operator, cp_id).locator('[data-action="resume"]').click()
    timed_state(watcher, cp_id, "ACTIVADO", 1, wall, mono, "resume clicked on page 1 -> green tile on page 2")
    expect(tile(watcher, cp_id)).to_have_attribute("data-colour", "green")

    wall, mono = time.time(), time.monotonic()
    operator.locator("#stop-all").click()
    for cp in (cp_id, other):
        timed_state(watcher, cp, "PARADO", 1, wall, mono, "stop all -> every tile orange")
    operator.locator("#resume-all").click()
    for cp in (cp_id, other):
        expect(tile(watcher, cp)).to_have_class(state_class("ACTIVADO"), timeout=1000)

    for action, state in (("stop", "PARADO"), ("resume", "ACTIVADO")):  # the Front's own share of the lag
        wall, mono = time.time(), time.monotonic()
        assert stack.api(f"/api/charging_points/{other}/{action}", "POST")[0] == 200
        timed_state(watcher, other, state, 1, wall, mono, f"API_Central {action} call -> tile {state}")
    stack.assert_every_supply_ticketed([cp_id])


def post_observation(stack, key: str, city: str, temperature: float) -> None:
    """What EV_W sends: one temperature for a city (with the weather office's API key)."""
    body = json.dumps({"observations": [{"city": city, "country": "ES", "temperature": temperature}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{stack.api_port}/api/weather/observations", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def test_engine_ko_turns_the_tile_red_and_recover_turns_it_back(stack, new_page):
    key = uid("key-")
    stack.env["EVC_WEATHER_API_KEY"] = key
    stack.start_central()
    cp_id, city = uid("FK"), uid("Teruel-")
    stack.register_cp(cp_id, city=city)
    engine, _ = stack.start_cp(cp_id, register=False)
    page = open_front(new_page, start_front(stack), [cp_id])

    post_observation(stack, key, city, 3.5)
    expect(tile(page, cp_id).locator('[data-field="temperature"]')).to_have_text("3.5 °C", timeout=4000)
    expect(page.locator(f'#weather-cities tr[data-city="{city}"]')).to_contain_text("3.5", timeout=4000)

    wall, mono = time.time(), time.monotonic()
    engine.send("k")
    timed_state(page, cp_id, "AVERIADO", 2, wall, mono, "KO on the Engine console -> red tile")
    expect(tile(page, cp_id)).to_have_attribute("data-colour", "red")
    screenshot(page, "front-faulty")
    wall, mono = time.time(), time.monotonic()
    engine.send("o")
    timed_state(page, cp_id, "ACTIVADO", 2, wall, mono, "recover on the Engine console -> green tile")


def test_weather_thresholds_are_changed_through_the_front(stack, new_page):
    stack.start_central()
    status, before = stack.api("/api/weather/thresholds")
    assert status == 200, before
    page = open_front(new_page, start_front(stack), [])
    notice = page.locator("#notice")
    try:
        page.locator("#min_c").fill("-5")
        page.locator("#max_c").fill("40")
        page.locator('#thresholds-form button[type="submit"]').click()
        expect(notice).to_have_attribute("data-kind", "ok", timeout=3000)
        expect(notice).to_contain_text("mínima -5 °C, máxima 40 °C")
        expect(page.locator("#weather-status")).to_have_text("Alerta fuera de -5 … 40 °C", timeout=4000)
        assert stack.api("/api/weather/thresholds")[1] == {"min_c": -5, "max_c": 40}
        page.locator("#min_c").fill("5")
        page.locator("#max_c").fill("1")
        page.locator('#thresholds-form button[type="submit"]').click()
        expect(notice).to_contain_text("La mínima debe ser menor que la máxima", timeout=3000)
        expect(notice).to_have_attribute("data-kind", "error")
    finally:
        stack.api("/api/weather/thresholds", "PUT", before)


def test_central_down_shows_the_banner_and_recovers_without_a_reload(stack, new_page):
    stack.start_central()
    cp_a, cp_b = uid("FC"), uid("FC")
    stack.start_cp(cp_a)
    stack.start_cp(cp_b)
    page = open_front(new_page, start_front(stack), [cp_a, cp_b])
    banner = page.locator("#central-banner")
    expect(banner).to_be_hidden()
    loaded = page.evaluate("() => window.__evcLoaded")

    mono = time.monotonic()
    stack.central.kill9()
    expect(banner).to_be_visible(timeout=3000)
    report_lag("CENTRAL killed -> banner visible", time.monotonic() - mono)
    expect(banner).to_contain_text("Imposible conectar con la CENTRAL")
    expect(page.locator("body")).to_have_class(re.compile(r"\bcentral-down\b"))
    expect(tile(page, cp_a)).to_have_attribute("data-state", "ACTIVADO")  # last known data stays, greyed
    screenshot(page, "front-central-down")

    mono = time.monotonic()
    stack.restart(stack.central)
    expect(banner).to_be_hidden(timeout=60000)
    report_lag("CENTRAL restarted -> banner cleared (includes CENTRAL's start)", time.monotonic() - mono)
    for cp_id in (cp_a, cp_b):
        expect(tile(page, cp_id)).to_have_class(state_class("ACTIVADO"), timeout=30000)
    report_lag("CENTRAL restarted -> tiles ACTIVADO again (Monitors re-authenticated)", time.monotonic() - mono)
    assert stack.cp(cp_a)["state"] == "ACTIVADO"
    assert page.evaluate("() => window.__evcLoaded") == loaded, "the page was reloaded"
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bcentral-down\b"))
    screenshot(page, "front-central-back")


def test_add_and_remove_a_cp_and_see_api_errors_on_the_page(stack, new_page):
    stack.start_central()
    page = open_front(new_page, start_front(stack), [])
    cp_id = uid("FN")
    form = page.locator("#add-cp-form")
    form.locator('[name="cp_id"]').fill(cp_id)
    form.locator('[name="address"]').fill("Gran Vía 1")
    form.locator('[name="city"]').fill("Murcia")
    form.locator('[name="price_eur_kwh"]').fill("mucho")
    form.locator('[name="power_kw"]').fill("22")
    form.locator('button[type="submit"]').click()
    notice = page.locator("#notice")
    expect(notice).to_have_attribute("data-kind", "error", timeout=3000)
    expect(notice).to_contain_text("API_Central:")
    screenshot(page, "front-add-error")

    form.locator('[name="price_eur_kwh"]').fill("0.39")
    form.locator('button[type="submit"]').click()
    expect(notice).to_have_attribute("data-kind", "ok", timeout=3000)
    new_tile = tile(page, cp_id)
    expect(new_tile).to_have_class(state_class("DESCONECTADO"), timeout=2000)
    expect(new_tile).to_contain_text("Murcia")
    expect(new_tile.locator('[data-field="price"]')).to_contain_text("0.39 €/kWh")

    page.on("dialog", lambda dialog: dialog.accept())
    new_tile.locator('[data-action="remove"]').click()
    expect(new_tile).to_have_count(0, timeout=2000)
    assert stack.api(f"/api/charging_points/{cp_id}")[0] == 404
