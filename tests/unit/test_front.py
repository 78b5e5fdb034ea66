"""The operator Front through its factory: Flask's test client, Socket.IO's test client, a fake API_Central.

The fake stands in for requests.Session (the Front's only I/O), so the real CentralApi, LiveFeed and
command views run unchanged; ``down`` makes every call fail as a refused connection would.
"""
from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from EV_Central_Server import EV_Front
from EV_Central_Server.front import create_app, feed_of, socketio
from EV_Central_Server.front.commands import THRESHOLDS_MISSING_TEXT
from EV_Central_Server.front.live import UNREACHABLE_TEXT, WEATHER_MISSING_TEXT

API = "http://central.test:8000"


def cp(cp_id: str, state: str = "ACTIVADO", **extra) -> dict:
    """A CP view as API_Central returns it."""
    colours = {"ACTIVADO": "green", "PARADO": "orange", "AVERIADO": "red", "DESCONECTADO": "grey", "SUMINISTRANDO": "green"}
    return {"cp_id": cp_id, "address": "Calle Mayor 1", "city": "Alicante", "country": "ES", "zone": "default",
            "price_eur_kwh": "0.35", "power_kw": "22", "state": state, "colour": colours[state],
            "caption": "Out of Order (OPERATOR)" if state == "PARADO" else state, "link_up": True, "engine_ok": True,
            "out_of_service": ["OPERATOR"] if state == "PARADO" else [], "supply": None, "temperature": None, **extra}


class Response:
    """What the Front reads of a requests.Response."""

    def __init__(self, status: int, body):
        self.status_code, self._body = status, body

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class FakeCentral:
    """A tiny API_Central: a version, CPs, messages, drivers, optional weather; records every call."""

    def __init__(self):
        self.cond = threading.Condition()
        self.version = 1
        self.cps = [cp("ALC1"), cp("MAD1", city="Madrid")]
        self.messages = [{"id": 1, "ts": "2026-12-03T10:00:00+00:00", "component": "EV_Central", "level": "info", "text": "hola"}]
        self.drivers = [{"driver_id": "DRV001", "created_at": "2026-12-03T09:00:00+00:00"}]
        self.weather = None  # None: the weather endpoints do not exist (404)
        self.down = False
        self.calls: list[tuple[str, str, dict, object]] = []
        self.answers: dict[tuple[str, str], tuple[int, object]] = {}

    def session(self):
        return self

    def close(self):
        pass

    def change(self, **cps_by_id) -> None:
        """Change CPs and bump the version (wakes long polls)."""
        with self.cond:
            self.cps = [cps_by_id.get(c["cp_id"], c) for c in self.cps]
            self.version += 1
            self.cond.notify_all()

    def request(self, method, url, params=None, json=None, timeout=None):
        path = urlsplit(url).path
        self.calls.append((method, path, dict(params or {}), json))
        if self.down:
            raise requests.ConnectionError(f"refused {url}")
        if (method, path) in self.answers:
            return Response(*self.answers[(method, path)])
        if (method, path) == ("GET", "/api/changes"):
            return Response(200, self._changes(int(params["since"]), float(params["timeout"])))
        if (method, path) == ("GET", "/api/messages"):
            return Response(200, self.messages)
        if (method, path) == ("GET", "/api/drivers"):
            return Response(200, self.drivers)
        if (method, path) == ("GET", "/api/weather") and self.weather is not None:
            return Response(200, self.weather)
        if method == "POST" and path.endswith(("/stop", "/resume")):
            return Response(200, {"command": path.rsplit("/", 1)[1], "charging_points": ["ALC1"], "result": "ok"})
        return Response(404, {"error": "NOT_FOUND", "message": "The requested URL was not found on the server."})

    def _changes(self, since: int, timeout: float) -> dict:
        with self.cond:
            self.cond.wait_for(lambda: self.version != since or self.down, timeout)
            return {"version": self.version, "charging_points": list(self.cps),
                    "ongoing": [c["supply"] for c in self.cps if c["supply"]]}


@pytest.fixture
def central():
    return FakeCentral()


@pytest.fixture
def app(central):
    app = create_app({"CENTRAL_API_URL": API, "API_SESSION_FACTORY": central.session, "LIVE_FEED": False,
                      "POLL_TIMEOUT_S": 0.2, "REFRESH_S": 0.1, "RETRY_S": 0.05, "TESTING": True})
    yield app
    feed_of(app).stop()


@pytest.fixture
def page(app):
    """A connected Front page whose first pushes are already read (disconnected afterwards)."""
    client = socketio.test_client(app)
    client.get_received()
    yield client
    client.disconnect()


def received(client, event: str) -> list:
    """Payloads of one event a Socket.IO test client received (and clears the others)."""
    return [msg["args"][0] for msg in client.get_received() if msg["name"] == event]


def post(client, path: str, body=None):
    return client.post(path, json=body if body is not None else {})


# ------------------------------------------------------------------ page and assets
def test_page_has_title_and_embeds_latest_state(app, central):
    feed_of(app).poll_changes()
    page = app.test_client().get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<title>EV Charging Network — CENTRAL</title>" in html
    assert 'id="central-banner"' in html and "Imposible conectar con la CENTRAL" in html
    assert '"cp_id": "ALC1"' in html or '"cp_id":"ALC1"' in html
    assert "/shared/socket.io.min.js" in html and "/shared/states.css" in html


def test_assets_are_served_locally(app):
    client = app.test_client()
    for path in ("/shared/socket.io.min.js", "/shared/states.css", "/front-static/front.js", "/front-static/front.css"):
        with client.get(path) as resp:
            assert resp.status_code == 200, path
    assert ".state-PARADO" in client.get("/shared/states.css").get_data(as_text=True)


def test_state_json_and_health(app, central):
    feed_of(app).poll_changes()
    client = app.test_client()
    state = client.get("/front/state").get_json()
    assert [c["cp_id"] for c in state["charging_points"]] == ["ALC1", "MAD1"]
    assert state["central"]["up"] is True
    assert client.get("/front/health").get_json()["central"]["up"] is True


# ------------------------------------------------------------------ live feed
def test_a_connecting_page_gets_everything_at_once(app, central):
    feed = feed_of(app)
    feed.poll_changes()
    feed.refresh()
    client = socketio.test_client(app)
    state, = received(client, "state")
    assert state["central"]["up"] is True
    assert [c["cp_id"] for c in state["charging_points"]] == ["ALC1", "MAD1"]
    assert state["drivers"] == central.drivers and state["messages"] == central.messages
    client.disconnect()


def test_each_long_poll_answer_is_pushed_and_the_next_poll_asks_since_its_version(app, central, page):
    feed = feed_of(app)
    feed.poll_changes()
    central.change(ALC1=cp("ALC1", "PARADO"))
    feed.poll_changes()
    snapshots = received(page, "snapshot")
    assert [s["version"] for s in snapshots] == [1, 2]
    assert snapshots[-1]["charging_points"][0]["state"] == "PARADO"
    sinces = [call[2]["since"] for call in central.calls if call[1] == "/api/changes"]
    assert sinces == [-1, 1]


def test_unreachable_central_is_announced_once_then_recovers_with_a_fresh_snapshot(app, central):
    feed = feed_of(app)
    feed.poll_changes()
    client = socketio.test_client(app)
    client.get_received()
    central.down = True
    for _ in range(3):
        feed._safe_refresh()
    statuses = received(client, "central")
    assert [s["up"] for s in statuses] == [False]
    assert statuses[0]["message"] == UNREACHABLE_TEXT
    assert feed.view()["charging_points"], "the last data stays on the page"
    central.down = False
    central.version = 1  # a restarted CENTRAL counts again from the start
    feed.poll_changes()
    messages = client.get_received()
    assert [m["name"] for m in messages] == ["central", "snapshot"]
    assert messages[0]["args"][0]["up"] is True
    assert [call[2]["since"] for call in central.calls if call[1] == "/api/changes"][-1] == -1
    client.disconnect()


def test_refresh_pushes_only_what_changed_and_tolerates_missing_weather(app, central, page):
    feed = feed_of(app)
    feed.refresh()
    first = {m["name"] for m in page.get_received()}
    assert first == {"messages", "drivers", "weather"}
    assert feed.view()["weather"] == {"available": False, "message": WEATHER_MISSING_TEXT}
    feed.refresh()
    assert page.get_received() == []
    central.messages = [{"id": 2, "ts": "2026-12-03T10:01:00+00:00", "component": "EV_W", "level": "error",
                         "text": "Imposible acceder al clima"}] + central.messages
    central.weather = {"thresholds": {"min_c": 0, "max_c": None}, "cities": [], "alerts": []}
    feed.refresh()
    names = {m["name"]: m["args"][0] for m in page.get_received()}
    assert set(names) == {"messages", "weather"}
    assert names["weather"]["available"] is True and names["weather"]["thresholds"]["min_c"] == 0


def test_the_background_task_pushes_a_change_within_milliseconds_and_survives_an_outage(app, central):
    app.config["LIVE_FEED"] = True
    client = socketio.test_client(app)  # the first page starts the one background task
    feed = feed_of(app)
    assert feed.start(socketio.start_background_task) is False, "one task only"
    deadline = time.monotonic() + 3
    while feed.version != central.version and time.monotonic() < deadline:
        time.sleep(0.01)
    client.get_received()
    changed_at = time.monotonic()
    central.change(ALC1=cp("ALC1", "AVERIADO"))
    seen = _wait_for(client, "snapshot", lambda s: s["charging_points"][0]["state"] == "AVERIADO", 2)
    assert time.monotonic() - changed_at < 0.5
    assert seen
    central.down = True
    with central.cond:
        central.cond.notify_all()
    assert _wait_for(client, "central", lambda s: s["up"] is False, 2)
    central.down = False
    assert _wait_for(client, "central", lambda s: s["up"] is True, 2)
    client.disconnect()


def _wait_for(client, event, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for payload in received(client, event):
            if predicate(payload):
                return payload
        time.sleep(0.01)
    return None


# ------------------------------------------------------------------ commands
def test_stop_and_resume_are_proxied(app, central):
    client = app.test_client()
    answer = post(client, "/front/charging_points/ALC1/stop")
    assert answer.status_code == 200 and answer.get_json()["ok"] is True
    post(client, "/front/charging_points/ALC1/resume")
    post(client, "/front/charging_points/stop")
    post(client, "/front/charging_points/resume")
    assert [(m, p) for m, p, _, _ in central.calls] == [
        ("POST", "/api/charging_points/ALC1/stop"), ("POST", "/api/charging_points/ALC1/resume"),
        ("POST", "/api/charging_points/stop"), ("POST", "/api/charging_points/resume")]


def test_an_api_error_comes_back_as_a_readable_message_with_its_status(app, central):
    central.answers[("POST", "/api/charging_points/NOPE/stop")] = (404, {"error": "CP_NOT_FOUND", "message": "CP NOPE does not exist"})
    answer = post(app.test_client(), "/front/charging_points/NOPE/stop")
    assert answer.status_code == 404
    assert answer.get_json() == {"ok": False, "error": "CP_NOT_FOUND", "message": "API_Central: CP NOPE does not exist"}


def test_a_command_while_central_is_down_says_so(app, central):
    central.down = True
    answer = post(app.test_client(), "/front/charging_points/ALC1/stop")
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "CENTRAL_UNREACHABLE"
    assert answer.get_json()["message"].startswith(UNREACHABLE_TEXT)


@pytest.mark.parametrize("send", [
    lambda c: c.post("/front/charging_points/ALC1/stop", data="cp=ALC1", content_type="application/x-www-form-urlencoded"),
    lambda c: c.post("/front/charging_points/ALC1/stop", data="[1]", content_type="application/json"),
    lambda c: c.post("/front/charging_points/stop"),
    lambda c: c.post("/front/charging_points", data="not json", content_type="application/json"),
])
def test_commands_need_a_json_object_and_never_reach_the_api_otherwise(app, central, send):
    answer = send(app.test_client())
    assert answer.status_code == 400 and answer.get_json()["ok"] is False
    assert central.calls == []


def test_add_cp_forwards_the_form_fields_trimmed(app, central):
    central.answers[("POST", "/api/charging_points")] = (201, cp("MUR1"))
    answer = post(app.test_client(), "/front/charging_points", {
        "cp_id": " MUR1 ", "address": "Gran Vía 1", "city": "Murcia", "price_eur_kwh": "0.39", "power_kw": "22",
        "zone": "", "password": "never forwarded"})
    assert answer.status_code == 200 and "MUR1" in answer.get_json()["message"]
    assert central.calls[-1][3] == {"cp_id": "MUR1", "address": "Gran Vía 1", "city": "Murcia",
                                    "price_eur_kwh": "0.39", "power_kw": "22"}


def test_add_cp_without_id_and_api_validation_errors(app, central):
    client = app.test_client()
    assert post(client, "/front/charging_points", {"city": "Murcia"}).status_code == 400
    central.answers[("POST", "/api/charging_points")] = (400, {"error": "BAD_CP", "message": "price_eur_kwh must be a positive number"})
    answer = post(client, "/front/charging_points", {"cp_id": "X1", "price_eur_kwh": "abc"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "API_Central: price_eur_kwh must be a positive number"


def test_remove_cp_is_a_delete_and_a_busy_cp_is_explained(app, central):
    central.answers[("DELETE", "/api/charging_points/ALC1")] = (409, {"error": "CP_BUSY", "message": "ALC1 is supplying"})
    answer = post(app.test_client(), "/front/charging_points/ALC1/remove")
    assert answer.status_code == 409 and answer.get_json()["message"] == "API_Central: ALC1 is supplying"
    assert central.calls[-1][:2] == ("DELETE", "/api/charging_points/ALC1")


def test_cp_ids_are_escaped_in_the_api_path(app, central):
    post(app.test_client(), "/front/charging_points/A%3FB/stop")
    assert central.calls[-1][1] == "/api/charging_points/A%3FB/stop"


@pytest.mark.parametrize("body, reason", [
    ({"min_c": "abc"}, "números"),
    ({"max_c": 30}, "mínima"),
    ({"min_c": 10, "max_c": 5}, "menor"),
    ({"min_c": True}, "números"),
])
def test_thresholds_are_checked_before_the_api(app, central, body, reason):
    answer = post(app.test_client(), "/front/weather/thresholds", body)
    assert answer.status_code == 400 and reason in answer.get_json()["message"]
    assert central.calls == []


def test_thresholds_without_the_weather_endpoint_say_so_clearly(app, central):
    answer = post(app.test_client(), "/front/weather/thresholds", {"min_c": "1.5", "max_c": ""})
    assert answer.status_code == 501
    assert answer.get_json() == {"ok": False, "error": "NOT_AVAILABLE", "message": THRESHOLDS_MISSING_TEXT}
    assert central.calls[-1] == ("PUT", "/api/weather/thresholds", {}, {"min_c": 1.5, "max_c": None})


def test_thresholds_are_put_when_the_endpoint_exists(app, central):
    central.answers[("PUT", "/api/weather/thresholds")] = (200, {"min_c": -2.0, "max_c": 38.0})
    answer = post(app.test_client(), "/front/weather/thresholds", {"min_c": -2, "max_c": 38})
    assert answer.status_code == 200
    assert answer.get_json()["message"] == "Umbrales del clima: mínima -2 °C, máxima 38 °C"


# ------------------------------------------------------------------ program
def test_flags_and_environment(monkeypatch):
    args = EV_Front.parse_args([])
    assert (args.api, args.port, args.host) == ("http://127.0.0.1:8000", 5000, "0.0.0.0")
    monkeypatch.setenv("EVC_FRONT_API", "http://central:8000")
    monkeypatch.setenv("EVC_FRONT_PORT", "5055")
    args = EV_Front.parse_args([])
    assert (args.api, args.port) == ("http://central:8000", 5055)
    assert EV_Front.parse_args(["--api", "http://x:1", "--port", "7"]).port == 7
    app = create_app({"LIVE_FEED": False})
    assert app.config["CENTRAL_API_URL"] == "http://central:8000"


def test_an_https_api_central_is_verified_against_the_given_ca(central):
    app = create_app({"CENTRAL_API_URL": "https://central.test:8000", "CENTRAL_API_CA": "/certs/ca.pem",
                      "API_SESSION_FACTORY": central.session, "LIVE_FEED": False})
    feed_of(app).poll_changes()
    assert central.verify == "/certs/ca.pem"
    assert EV_Front.parse_args(["--api-ca", "/certs/ca.pem"]).api_ca == "/certs/ca.pem"
