"""API_Central through the Flask test client, over a CentralService wired to fakes (STYLE habit 11)."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from common import messages as m
from EV_Central_Server.central.api import create_app
from EV_Central_Server.central.service import CentralService
from fakes import T0, FakeClock, FakeRepository, RecordingOutlet, cp_row

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
CP_KEYS = {"cp_id", "address", "city", "country", "zone", "price_eur_kwh", "power_kw", "state", "colour", "caption",
           "out_of_service", "link_up", "engine_ok", "supply", "temperature"}


class Api:
    """The app plus the service and fakes behind it."""

    def __init__(self):
        self.clock = FakeClock()
        self.repo = FakeRepository([cp_row("CP1"), cp_row("CP2", city="Madrid")], ["alice", "bob"], self.clock)
        self.outlet = RecordingOutlet()
        self.service = CentralService(self.repo, self.outlet, clock=self.clock)
        self.service.load()
        self.app = create_app(self.service, self.repo, {"TESTING": False})
        self.client = self.app.test_client()

    def supply(self, driver: str, cp_id: str) -> str:
        """Connect a CP and authorize a supply on it; returns the supply id."""
        if not self.service.cps[cp_id].link_up:
            self.service.authenticate(cp_id, "", token := object())
            self.service.monitor_status(cp_id, True, token)
        answer = self.service.request_supply("driver", driver, m.RequestSupply(cp_id, driver, m.new_id()), None)
        assert isinstance(answer, m.SupplyAuthorized)
        self.clock.advance(1)
        return answer.supply_id


@pytest.fixture
def api() -> Api:
    return Api()


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["message"]
    if code:
        assert body["error"] == code
    return body


# ---------------------------------------------------------------- reads
def test_health(api):
    response = api.client.get("/api/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_list_charging_points(api):
    body = api.client.get("/api/charging_points").get_json()
    assert [cp["cp_id"] for cp in body] == ["CP1", "CP2"]
    assert all(set(cp) == CP_KEYS for cp in body)
    assert body[0]["state"] == "DESCONECTADO" and body[0]["colour"] == "grey" and body[0]["supply"] is None
    assert body[0]["price_eur_kwh"] == "0.35"


def test_get_one_charging_point_with_its_live_supply(api):
    supply_id = api.supply("alice", "CP1")
    api.service.supply_started(m.SupplyStarted(supply_id, "CP1", T0.isoformat()))
    api.service.telemetry(m.Telemetry(supply_id, "CP1", "22", "1.5", "0.53", 1))
    body = api.client.get("/api/charging_points/CP1").get_json()
    assert body["state"] == "SUMINISTRANDO"
    assert (body["supply"]["driver_id"], body["supply"]["energy_kwh"], body["supply"]["amount_eur"]) == (
        "alice", "1.500", "0.53")


def test_unknown_charging_point_is_a_json_404(api):
    assert_error(api.client.get("/api/charging_points/CP9"), 404, "CP_NOT_FOUND")


# ---------------------------------------------------------------- supplies
def _finish(api: Api, supply_id: str, cp_id: str) -> None:
    api.service.supply_finished(m.SupplyFinished(supply_id, cp_id, None, api.clock().isoformat(), "0", "0", "UNPLUGGED"))


@pytest.mark.parametrize("query, expected", [
    ("", ["s3", "s2", "s1"]),
    ("?status=active", ["s3", "s2"]),
    ("?status=finished", ["s1"]),
    ("?cp_id=CP2", ["s3"]),
    ("?driver_id=alice", ["s2", "s1"]),
    ("?driver_id=alice&status=active", ["s2"]),
    ("?limit=1", ["s3"]),
    ("?limit=500", ["s3", "s2", "s1"]),
])
def test_list_supplies_filters(api, query, expected):
    ids = {}
    ids["s1"] = api.supply("alice", "CP1")
    _finish(api, ids["s1"], "CP1")
    ids["s2"] = api.supply("alice", "CP1")
    api.service.supply_started(m.SupplyStarted(ids["s2"], "CP1", api.clock().isoformat()))
    api.service.telemetry(m.Telemetry(ids["s2"], "CP1", "22", "2.5", "0.88", 1))
    ids["s3"] = api.supply("bob", "CP2")
    names = {v: k for k, v in ids.items()}
    response = api.client.get(f"/api/supplies{query}")
    assert response.status_code == 200
    body = response.get_json()
    assert [names[row["supply_id"]] for row in body] == expected
    for row in body:
        assert isinstance(row["authorized_at"], str) and isinstance(row["price_eur_kwh"], str)
        if names[row["supply_id"]] == "s2":
            assert (row["phase"], row["energy_kwh"], row["amount_eur"]) == ("CHARGING", "2.500", "0.88")


@pytest.mark.parametrize("query", ["?status=running", "?status=", "?limit=0", "?limit=501", "?limit=-1",
                                   "?limit=ten", "?limit=1.5", "?limit="])
def test_bad_supply_filters_are_json_400(api, query):
    assert_error(api.client.get(f"/api/supplies{query}"), 400, "BAD_FILTER")


# ---------------------------------------------------------------- commands
@pytest.mark.parametrize("action, reasons, state", [("stop", ["OPERATOR"], "PARADO"), ("resume", [], "ACTIVADO")])
def test_command_one_cp(api, action, reasons, state):
    api.supply("alice", "CP1")
    api.service.stop_cp("CP2")
    response = api.client.post(f"/api/charging_points/CP1/{action}")
    assert response.status_code == 200
    assert response.get_json() == {"command": action, "charging_points": ["CP1"], "result": "ok"}
    cp = api.service.get("CP1")
    assert cp["out_of_service"] == reasons and cp["state"] == state
    assert api.service.get("CP2")["out_of_service"] == ["OPERATOR"]  # the other CP untouched


def test_stop_one_ends_its_supply_with_a_ticket(api):
    api.supply("alice", "CP1")
    api.client.post("/api/charging_points/CP1/stop")
    assert [t.reason for t in api.outlet.messages(m.TicketIssued, "driver", "alice")] == ["STOPPED_BY_OPERATOR"]
    assert any(row["actor"] == "api" and row["action"] == "stop" for row in api.repo.audit_log)


@pytest.mark.parametrize("action, reasons", [("stop", ["OPERATOR"]), ("resume", [])])
def test_command_all_cps(api, action, reasons):
    if action == "resume":
        api.client.post("/api/charging_points/stop")
    response = api.client.post(f"/api/charging_points/{action}")
    assert response.get_json() == {"command": action, "charging_points": ["CP1", "CP2"], "result": "ok"}
    assert [cp["out_of_service"] for cp in api.service.snapshot()] == [reasons, reasons]


@pytest.mark.parametrize("action", ["stop", "resume"])
def test_command_on_an_unknown_cp_is_a_json_404(api, action):
    assert_error(api.client.post(f"/api/charging_points/CP9/{action}"), 404, "CP_NOT_FOUND")
    assert "CP9" not in api.service.cps and "CP9" not in api.repo.cps


def test_resume_keeps_the_weather_reason(api):
    api.service.set_reason("CP1", "WEATHER", True, "weather")
    api.client.post("/api/charging_points/CP1/stop")
    api.client.post("/api/charging_points/CP1/resume")
    assert api.client.get("/api/charging_points/CP1").get_json()["out_of_service"] == ["WEATHER"]


# ---------------------------------------------------------------- messages
def test_messages_newest_first(api):
    api.service.stop_cp("CP1")
    api.clock.advance(1)
    api.service.resume_cp("CP1")
    body = api.client.get("/api/messages").get_json()
    assert [row["text"] for row in body][:2] == ["CP CP1 reanudado (OPERATOR)", "CP CP1 parado (OPERATOR)"]
    assert set(body[0]) == {"id", "ts", "component", "level", "text"}
    assert body[0]["ts"] == (T0 + timedelta(seconds=1)).isoformat()


def test_messages_are_capped_at_200(api):
    for n in range(250):
        api.repo.app_message("EV_Central", "info", f"m{n}")
    body = api.client.get("/api/messages").get_json()
    assert len(body) == 200 and body[0]["text"] == "m249"


# ---------------------------------------------------------------- errors are JSON, never 500
@pytest.mark.parametrize("method, path, status", [
    ("get", "/api/nothing", 404),
    ("get", "/", 404),
    ("get", "/api/charging_points/CP1/extra/deep", 404),
    ("post", "/api/health", 405),
    ("put", "/api/charging_points/CP1", 405),
    ("get", "/api/charging_points/CP1/stop", 405),
    ("put", "/api/charging_points/stop", 405),
    ("post", "/api/supplies", 405),
])
def test_unknown_routes_and_wrong_methods_are_json(api, method, path, status):
    assert_error(getattr(api.client, method)(path), status)


def test_garbage_in_requests_never_gives_500(api):
    weird = ["/api/charging_points/%00", "/api/charging_points/" + "x" * 5000, "/api/supplies?limit=%ff",
             "/api/supplies?cp_id=%27%3B--", "/api/charging_points/%E2%82%AC"]
    for path in weird:
        response = api.client.get(path)
        assert response.status_code < 500 and response.is_json, path
    response = api.client.post("/api/charging_points/CP1/stop", data=b"\xff\x00garbage",
                               content_type="application/json")
    assert response.status_code == 200


def test_an_internal_error_is_a_generic_json_500(api, monkeypatch, caplog):
    monkeypatch.setattr(api.service, "snapshot", lambda: 1 / 0)
    body = assert_error(api.client.get("/api/charging_points"), 500, "INTERNAL")
    assert "ZeroDivision" not in body["message"]
    assert "API error" in caplog.text


# ---------------------------------------------------------------- the OpenAPI document matches the app
def _flask_operations(app) -> set[tuple[str, str]]:
    ops = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        ops |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return ops


def _documented_operations(doc: dict) -> set[tuple[str, str]]:
    base = "/api" if not any(p.startswith("/api") for p in doc["paths"]) else ""
    methods = {"get", "post", "put", "patch", "delete"}
    return {(base + path, method) for path, item in doc["paths"].items() for method in item if method in methods}


def test_openapi_documents_every_api_route_and_nothing_else(api):
    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.0")
    assert _documented_operations(doc) == _flask_operations(api.app)


def test_openapi_schemas_and_references_resolve():
    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    assert {"ChargingPoint", "Supply", "Error", "CommandResult", "Message"} <= set(schemas)
    assert set(schemas["ChargingPoint"]["properties"]) == CP_KEYS
    refs = re.findall(r"\$ref: '?#/components/(\w+)/(\w+)'?", OPENAPI.read_text(encoding="utf-8"))
    assert refs
    for section, name in refs:
        assert name in doc["components"][section], f"dangling $ref {section}/{name}"


def test_openapi_documents_every_error_status_and_400_filters():
    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "delete"):
                assert op.get("summary") and op.get("operationId"), (path, method)
                assert {"200", "201"} & set(op["responses"]), (path, method)
    assert "400" in doc["paths"]["/supplies" if "/supplies" in doc["paths"] else "/api/supplies"]["get"]["responses"]
