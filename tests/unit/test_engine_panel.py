"""The Engine's owner panel: its view of the core, the bridge, and the Flask/Socket.IO app via the factory.

No sockets: the core is driven with exact times, the app with Flask's and Socket.IO's test clients,
and the Engine's event loop is fed the queued keys by hand, exactly as its run loop would.
"""
from __future__ import annotations

import argparse
import json

import pytest

from common import messages as m
from EV_CP.engine_core import CpInfo, EngineCore
from EV_CP.panel import create_app, push_views, socketio
from EV_CP.panel.bridge import COMMAND_KEYS, PanelBridge
from EV_CP.panel.view import panel_view, price_text

T0 = 1_900_000_000.0
INFO = CpInfo("CP1", "default", "0.5", "22", "Calle Mayor 1, Madrid", "1", "secret-key")


def ready_core() -> EngineCore:
    core = EngineCore(time_scale=60.0, new_id=lambda: "R1")
    core.monitor_connected(T0)
    core.cp_info(INFO, None, T0)
    core.central_link(True)
    core.kafka_link(True)
    return core


def authorize(core, now=T0, driver="D1"):
    core.handle(m.AuthorizeSupply("S1", "CP1", driver, "0.5", "2030-01-01T00:00:00+00:00"), now)


# ---------------------------------------------------------------- view
def test_view_before_the_monitor_identifies_the_cp():
    view = panel_view(EngineCore(), T0)
    assert view["cp_id"] is None and view["state"] == "DESCONECTADO"
    assert view["actions"] == {"request": False, "plug": False, "unplug": False, "ko": True, "recover": False}
    json.dumps(view)  # plain data


def test_view_follows_a_supply_from_authorization_to_final_record():
    core = ready_core()
    view = panel_view(core, T0)
    assert (view["state"], view["price_eur_kwh"], view["actions"]["request"]) == ("ACTIVADO", "0.50", True)
    authorize(core)
    view = panel_view(core, T0)
    assert view["supply"]["phase"] == "AUTHORIZED" and view["actions"]["plug"] and not view["actions"]["request"]
    core.plug(T0 + 1)
    core.monitor_health("1", T0 + 2)
    core.tick(T0 + 3.1)
    view = panel_view(core, T0 + 3.1)
    assert view["state"] == "SUMINISTRANDO" and view["actions"]["unplug"] and not view["actions"]["plug"]
    assert view["supply"]["elapsed_s"] == 2 and view["supply"]["energy_kwh"] != "0.000"
    core.unplug(T0 + 4)
    view = panel_view(core, T0 + 4)
    assert view["supply"] is None and view["state"] == "ACTIVADO"
    assert view["last_finished"]["supply_id"] == "S1" and view["last_finished"]["reason_text"] == "Vehicle unplugged"
    assert view["last_finished"]["driver_id"] == "D1" and view["finals_pending"] == 1


def test_view_shows_forced_ko_lost_links_and_the_anonymous_ticket():
    core = ready_core()
    core.force_ko(T0)
    view = panel_view(core, T0)
    assert view["state"] == "AVERIADO" and view["actions"]["recover"] and not view["actions"]["ko"]
    core.recover(T0)
    core.central_link(False)
    view = panel_view(core, T0)
    assert view["state"] == "DESCONECTADO" and view["central_up"] is False
    assert view["refusal"] == "Imposible conectar con la CENTRAL" and not view["actions"]["request"]
    ticket = m.TicketIssued("T1", "S9", "CP1", "ANON-CP1", None, "2030-01-01T00:00:00+00:00", 0, "0.000", "0.5",
                            "0.00", "AUTH_EXPIRED")
    core.handle(ticket, T0)
    assert panel_view(core, T0)["last_ticket"]["ticket_id"] == "T1"


def test_view_shows_centrals_stop_and_disables_the_request_until_resumed():
    core = ready_core()
    core.handle(m.CpStatus("CP1", "PARADO", "Out of Order (OPERATOR)", ["OPERATOR"]), T0)
    view = panel_view(core, T0)
    assert (view["state"], view["out_of_service"]) == ("PARADO", ["OPERATOR"])
    assert view["out_of_service_text"] == "Parado por CENTRAL: Out of Order (OPERATOR)"
    assert not view["actions"]["request"] and view["refusal"] == "Parado por CENTRAL: Out of Order (OPERATOR)"
    assert view["actions"]["ko"]  # the owner can still simulate a fault
    core.force_ko(T0)
    view = panel_view(core, T0)  # a fault wins over the stop (SPEC §3), the reason is still known
    assert view["state"] == "AVERIADO" and view["out_of_service_text"]
    core.recover(T0)
    core.handle(m.CpStatus("CP1", "ACTIVADO", "ACTIVADO", []), T0 + 1)
    view = panel_view(core, T0 + 1)
    assert (view["state"], view["out_of_service"], view["out_of_service_text"]) == ("ACTIVADO", [], "")
    assert view["actions"]["request"] and view["refusal"] is None


def test_page_has_the_out_of_service_line_coloured_by_the_shared_state_class(panel):
    page = panel.client.get("/").get_data(as_text=True)
    assert 'id="out-of-service"' in page and "state-PARADO" in page
    response = panel.client.get("/static/panel.js")
    js = response.get_data(as_text=True)
    response.close()
    assert "out_of_service_text" in js and 'state-" + v.state' in js


def test_price_text():
    assert [price_text(v) for v in ("0.5", "0.395", "7")] == ["0.50", "0.395", "7.00"]


# ---------------------------------------------------------------- bridge
def test_bridge_maps_buttons_to_console_keys_and_skips_live_lines():
    keys: list[str] = []
    bridge = PanelBridge(keys.append)
    assert all(bridge.submit(name) for name in COMMAND_KEYS) and keys == ["r", "p", "u", "k", "o"]
    assert not bridge.submit("q")  # quitting the charger is not a panel button
    bridge.say("Charging S1: 22 kW, 0.100 kWh, 0.05 EUR (1 s, D1)")
    bridge.say("Plugged in: supply S1 charging for D1")
    assert [msg["text"] for msg in bridge.message_list()] == ["Plugged in: supply S1 charging for D1"]


def test_bridge_wakes_the_push_task_only_on_change():
    bridge = PanelBridge(lambda key: None)
    bridge.publish({"a": 1})
    assert bridge.changed.is_set()
    bridge.changed.clear()
    first = bridge.view()
    bridge.publish({"a": 1})
    assert not bridge.changed.is_set() and bridge.view() is first


# ---------------------------------------------------------------- app
@pytest.fixture
def panel():
    keys: list[str] = []
    bridge = PanelBridge(keys.append)
    bridge.publish(panel_view(ready_core(), T0))
    app = create_app(bridge, {"PUSH_TASK": False, "TESTING": True, "CENTRAL_URL": "http://central.example:5000/"})
    return argparse.Namespace(app=app, bridge=bridge, keys=keys, client=app.test_client())


def test_page_and_state(panel):
    page = panel.client.get("/")
    assert page.status_code == 200 and b"CP1" in page.data and b"http://central.example:5000/" in page.data
    assert panel.client.get("/api/state").get_json()["cp_id"] == "CP1"
    assert panel.client.get("/shared/states.css").status_code == 200


def test_page_links_the_shared_base_styles_before_its_own(panel):
    page = panel.client.get("/").get_data(as_text=True)
    assert page.index("/shared/states.css") < page.index("/shared/base.css") < page.index("panel.css")
    with panel.client.get("/shared/base.css") as css:
        assert ".card {" in css.get_data(as_text=True)


@pytest.mark.parametrize("name, key", sorted(COMMAND_KEYS.items()))
def test_buttons_send_the_console_keys(panel, name, key):
    response = panel.client.post(f"/api/command/{name}")
    assert response.status_code == 202 and panel.keys == [key]


def test_unknown_command_is_a_json_404(panel):
    response = panel.client.post("/api/command/explode")
    assert response.status_code == 404 and response.get_json()["error"] == "UNKNOWN_COMMAND"
    assert panel.client.get("/api/command/plug").status_code == 405
    assert panel.keys == []


def test_socket_gets_the_view_on_connect_and_on_change(panel):
    sio = socketio.test_client(panel.app)
    assert sio.get_received()[0]["args"][0]["cp_id"] == "CP1"
    core = ready_core()
    authorize(core)
    panel.bridge.publish(panel_view(core, T0))
    push_views(panel.app, rounds=1)
    pushed = [p["args"][0] for p in sio.get_received() if p["name"] == "state"]
    assert pushed and pushed[-1]["supply"]["phase"] == "AUTHORIZED"


# ---------------------------------------------------------------- the same command path as the console
def test_panel_buttons_and_console_keys_do_the_same_in_the_engine_loop(tmp_path):
    from EV_CP.EV_CP_E import Engine
    from EV_CP.engine_store import SupplyStore

    engine = Engine(argparse.Namespace(broker="fake:9092"), ready_core(), SupplyStore(tmp_path),
                    clock=lambda: T0 + 1)
    engine.panel = PanelBridge(lambda key: engine.events.put(("cmd", key)))
    authorize(engine.core)
    engine.panel.submit("plug")
    engine._on_event(engine.events.get_nowait())
    assert engine.core.supply.phase.value == "CHARGING"
    engine._publish_view(T0 + 1)
    assert engine.panel.view()["state"] == "SUMINISTRANDO"
    assert any("Plugged in" in msg["text"] for msg in engine.panel.message_list())
    engine.events.put(("cmd", "u"))  # the console key
    engine._on_event(engine.events.get_nowait())
    assert engine.core.supply is None and engine.core.last_finished.reason == "UNPLUGGED"


def test_a_cross_site_post_cannot_press_a_panel_button(panel):
    response = panel.client.post("/api/command/ko", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and response.get_json()["error"] == "CROSS_SITE" and panel.keys == []
    assert panel.client.post("/api/command/ko", headers={"Origin": "http://localhost"}).status_code == 202
