"""Driver web app and Engine panel in headless Chromium, against the real running system.

CENTRAL, the CP (Engine with its panel, Monitor) and the driver app (with its web app) are the real
programs (tests/e2e/harness.Stack) on the test broker and database. Waits are Playwright's
auto-waiting expectations with explicit timeouts. The event -> visible lag is measured in the page
(``window.__evc`` keeps when each kWh value and each ticket was first drawn, ``Date.now()``) against
when the event happened (the Engine's console line for a telemetry tick, the click for an unplug).
"""
from __future__ import annotations

import re
import statistics
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.e2e.harness import free_port, uid, wait_until

PASSWORD = "correct-horse-battery"
LAGS: dict[str, list[float]] = {}


def _wait_http(url: str, timeout: float = 20.0) -> None:
    wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, timeout, f"{url} to answer")


def _start_driver_web(stack, driver_id: str):
    port = free_port()
    driver = stack.start_driver(driver_id, "--web-port", str(port), register=False)
    driver.wait_line(r"App web del conductor en", 30)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/login")
    return driver, url


def _register_and_login(page, url: str, driver_id: str) -> None:
    page.goto(url + "/login")
    page.fill("#register-id", driver_id)
    page.fill("#register-password", PASSWORD)
    page.click("#register-btn")
    expect(page.locator("#flash")).to_contain_text("creada", timeout=15_000)
    expect(page.locator("#login-id")).to_have_value(driver_id)
    page.fill("#login-password", PASSWORD)
    page.click("#login-btn")
    expect(page.locator("#driver-id")).to_have_text(driver_id, timeout=15_000)


def _kwh(page) -> float:
    return float(page.locator("#supply-kwh").get_attribute("data-value"))


def test_register_request_watch_unplug_ticket_survives_reload_and_restart(stack, new_page):
    cp_id, driver_id = uid("W"), uid("WD")
    panel_port = free_port()
    stack.start_central()
    engine, _monitor = stack.start_cp(cp_id, "--web-port", str(panel_port))
    driver, url = _start_driver_web(stack, driver_id)
    panel_url = f"http://127.0.0.1:{panel_port}"
    _wait_http(panel_url + "/")

    page = new_page()
    _register_and_login(page, url, driver_id)
    tile = page.locator(f'.tile[data-cp-id="{cp_id}"]')
    expect(tile).to_have_attribute("data-state", "ACTIVADO", timeout=15_000)
    expect(tile.locator(".price")).to_contain_text("0.40")
    tile.locator(".request-btn").click()
    expect(page.locator("#supply")).to_have_attribute("data-phase", "AUTHORIZED", timeout=10_000)

    panel = new_page()
    panel.goto(panel_url + "/")
    expect(panel.locator("#cp-id")).to_have_text(cp_id, timeout=10_000)
    expect(panel.locator("#supply")).to_have_attribute("data-phase", "AUTHORIZED", timeout=10_000)
    panel.click("#btn-plug")

    expect(page.locator("#supply")).to_have_attribute("data-phase", "CHARGING", timeout=10_000)
    expect(page.locator("#supply-tariff")).to_contain_text("0.40")
    expect(page.locator("#supply-kwh")).not_to_have_attribute("data-value", "0.000", timeout=10_000)
    first = _kwh(page)
    expect(page.locator("#supply-kwh")).not_to_have_attribute("data-value", f"{first:.3f}", timeout=5_000)
    assert _kwh(page) > first, "the kWh must grow"
    expect(page.locator(f'.tile[data-cp-id="{cp_id}"]')).to_have_attribute("data-state", "SUMINISTRANDO", timeout=5_000)
    expect(page.locator("#supply-elapsed")).not_to_have_text("0:00:00", timeout=5_000)
    expect(panel.locator("#state")).to_have_attribute("data-state", "SUMINISTRANDO")
    # a few more ticks for the lag figures
    for _ in range(3):
        current = page.locator("#supply-kwh").get_attribute("data-value")
        expect(page.locator("#supply-kwh")).not_to_have_attribute("data-value", current, timeout=5_000)
    screenshot(page, "driver-app-charging")
    screenshot(panel, "engine-panel-charging")
    _record_telemetry_lag(page, engine)

    clicked_ms = time.time() * 1000
    panel.click("#btn-unplug")
    ticket = page.locator("#ticket")
    expect(ticket).not_to_have_attribute("data-ticket-id", "", timeout=10_000)
    ticket_id = ticket.get_attribute("data-ticket-id")
    shown_ms = page.evaluate("(id) => window.__evc.ticketShownAt[id]", ticket_id)
    LAGS.setdefault("unplug click -> ticket visible (ms)", []).append(shown_ms - clicked_ms)
    expect(page.locator("#ticket-reason")).to_have_attribute("data-reason", "UNPLUGGED")
    expect(page.locator("#supply")).to_have_attribute("data-phase", "NONE", timeout=5_000)
    expect(page.locator(f'#history tr[data-supply-id="{ticket.get_attribute("data-supply-id")}"]')).to_be_visible(timeout=10_000)
    expect(panel.locator("#last")).to_have_attribute("data-supply-id", ticket.get_attribute("data-supply-id"), timeout=5_000)
    screenshot(page, "driver-app-ticket")
    screenshot(panel, "engine-panel-ticket")

    page.reload()
    expect(page.locator("#ticket")).to_have_attribute("data-ticket-id", ticket_id, timeout=5_000)

    driver.kill9()
    stack.restart(driver).wait_line(r"App web del conductor en", 30)
    _wait_http(url + "/login")
    page.reload()
    expect(page.locator("#driver-id")).to_have_text(driver_id)  # the cookie still holds (same secret)
    expect(page.locator("#ticket")).to_have_attribute("data-ticket-id", ticket_id, timeout=10_000)
    expect(page.locator("#ticket-total")).to_contain_text("€")


def _record_telemetry_lag(page, engine) -> None:
    """Engine console line 'Charging <supply>: P kW, E kWh' (arrival time) -> E first drawn in the page."""
    shown = page.evaluate("() => window.__evc.kwhShownAt")
    offset_ms = (time.time() - time.monotonic()) * 1000
    lags = []
    for at, line in engine.timed_lines():
        found = re.search(r"Charging \S+: [\d.]+ kW, ([\d.]+) kWh", line)
        if found and found.group(1) in shown:
            lags.append(shown[found.group(1)] - (at * 1000 + offset_ms))
    assert lags, "no telemetry tick could be matched with the page"
    LAGS.setdefault("telemetry tick -> kWh visible (ms)", []).extend(lags)


def test_banner_while_central_is_down_and_back(stack, new_page):
    driver_id = uid("WB")
    stack.start_central()
    _driver, url = _start_driver_web(stack, driver_id)
    page = new_page()
    _register_and_login(page, url, driver_id)
    banner = page.locator("#banner")
    expect(page.locator("body")).to_have_attribute("data-central", "up", timeout=15_000)
    expect(banner).to_be_hidden()

    killed_ms = time.time() * 1000
    stack.central.kill9()
    expect(banner).to_be_visible(timeout=20_000)
    expect(banner).to_have_text("Imposible conectar con la CENTRAL")
    LAGS.setdefault("CENTRAL kill -9 -> banner visible (ms)", []).append(time.time() * 1000 - killed_ms)
    expect(page.locator("#messages")).to_contain_text("Imposible conectar con la CENTRAL")
    screenshot(page, "driver-app-central-down")

    stack.restart(stack.central).wait_line(r"CENTRAL listo", 60)
    expect(banner).to_be_hidden(timeout=30_000)
    expect(page.locator("body")).to_have_attribute("data-central", "up")


def test_services_file_upload_runs_with_progress(stack, new_page, tmp_path):
    cp_a, cp_b, driver_id = uid("WF"), uid("WG"), uid("WU")
    stack.start_central()
    stack.start_cp(cp_a, "--auto-plug", "0.3", "--auto-unplug", "1.5")
    stack.start_cp(cp_b, "--auto-plug", "0.3", "--auto-unplug", "1.5")
    _driver, url = _start_driver_web(stack, driver_id)
    page = new_page()
    _register_and_login(page, url, driver_id)
    services = tmp_path / "services.txt"
    services.write_text(f"# two services\n{cp_a}\n{cp_b}\n", encoding="utf-8")
    page.set_input_files("#services-file", str(services))
    page.click("#upload-btn")
    batch = page.locator("#batch")
    expect(batch).to_have_attribute("data-total", "2", timeout=5_000)
    expect(page.locator("#batch-progress")).to_have_text("1/2", timeout=15_000)
    expect(batch).to_contain_text(f"Siguiente: {cp_b}", timeout=3_000)  # the 4 s wait, counting down
    expect(batch).to_have_attribute("data-finished", "true", timeout=20_000)
    expect(page.locator("#batch-progress")).to_have_text("2/2")
    expect(batch.locator('li[data-outcome="ok"]')).to_have_count(2)
    screenshot(page, "driver-app-services-file")


@pytest.fixture(scope="module", autouse=True)
def report_lags():
    """Print the measured lags at the end of the module (pytest -s shows them)."""
    yield
    for what, values in LAGS.items():
        print(f"\nLAG {what}: n={len(values)} median={statistics.median(values):.0f} "
              f"min={min(values):.0f} max={max(values):.0f}")
