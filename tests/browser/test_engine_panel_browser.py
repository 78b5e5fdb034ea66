"""The Engine's owner panel in headless Chromium against the real CP (Engine + Monitor) and CENTRAL."""
from __future__ import annotations

import re
import urllib.request

from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.e2e.harness import free_port, uid, wait_until


def test_panel_ko_recover_and_an_anonymous_supply_with_its_ticket(stack, new_page):
    cp_id, port = uid("EP"), free_port()
    stack.start_central()
    engine, _monitor = stack.start_cp(cp_id, "--web-port", str(port))
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 20, "the Engine panel")
    page = new_page()
    page.goto(url)
    expect(page.locator("#cp-id")).to_have_text(cp_id, timeout=10_000)
    expect(page.locator("#state")).to_have_attribute("data-state", "ACTIVADO", timeout=10_000)
    expect(page.locator("#monitor-link")).to_have_text("conectado")
    expect(page.locator("#central-link")).to_have_text("conectada")

    page.click("#btn-ko")
    expect(page.locator("#state")).to_have_attribute("data-state", "AVERIADO", timeout=3_000)
    stack.wait_state(cp_id, "AVERIADO", 5)  # CENTRAL sees it too: the same path as the console's k
    expect(page.locator("#btn-request")).to_be_disabled()
    page.click("#btn-recover")
    expect(page.locator("#state")).to_have_attribute("data-state", "ACTIVADO", timeout=3_000)
    stack.wait_state(cp_id, "ACTIVADO", 5)

    page.click("#btn-request")
    expect(page.locator("#supply")).to_have_attribute("data-phase", "AUTHORIZED", timeout=10_000)
    page.click("#btn-plug")
    expect(page.locator("#supply")).to_have_attribute("data-phase", "CHARGING", timeout=5_000)
    expect(page.locator("#supply-kwh")).not_to_contain_text("0.000", timeout=5_000)
    stack.wait_state(cp_id, "SUMINISTRANDO", 5)
    page.click("#btn-unplug")
    last = page.locator("#last")
    expect(last).not_to_have_attribute("data-ticket-id", "", timeout=10_000)  # CENTRAL's ticket for ANON-<cp>
    expect(last).to_contain_text("TICKET")
    expect(last).to_contain_text("Vehicle unplugged")
    expect(page.locator("#messages")).to_contain_text("Plugged in")
    screenshot(page, "engine-panel-anonymous-ticket")
    engine.wait_line(r"TICKET \S+: supply", 5)  # the console showed the same ticket


def test_panel_shows_centrals_operator_stop_and_blocks_the_request_until_resume(stack, new_page):
    cp_id, port = uid("EP"), free_port()
    stack.start_central()
    stack.start_cp(cp_id, "--web-port", str(port))
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 20, "the Engine panel")
    page = new_page()
    page.goto(url)
    state = page.locator("#state")
    expect(state).to_have_attribute("data-state", "ACTIVADO", timeout=10_000)
    expect(page.locator("#btn-request")).to_be_enabled()

    assert stack.api(f"/api/charging_points/{cp_id}/stop", "POST")[0] == 200
    expect(state).to_have_attribute("data-state", "PARADO", timeout=2_000)  # CENTRAL's CpStatus, pushed live
    expect(state).to_contain_text("Parado por CENTRAL: Out of Order (OPERATOR)")
    expect(state).to_have_class(re.compile(r"\bstate-PARADO\b"))  # the shared orange
    expect(page.locator("#btn-request")).to_be_disabled()
    expect(page.locator("#refusal")).to_contain_text("OPERATOR")
    screenshot(page, "engine-panel-stopped-by-central")

    assert stack.api(f"/api/charging_points/{cp_id}/resume", "POST")[0] == 200
    expect(state).to_have_attribute("data-state", "ACTIVADO", timeout=2_000)
    expect(state).not_to_contain_text("OPERATOR")
    expect(page.locator("#btn-request")).to_be_enabled()
    expect(page.locator("#refusal")).to_have_text("")
