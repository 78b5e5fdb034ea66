"""API_Central's weather area through the Flask test client, over CentralService wired to fakes."""
from __future__ import annotations

from decimal import Decimal

import pytest

from common import messages as m
from EV_Central_Server.central.api import create_app
from EV_Central_Server.central.service import CentralService
from EV_Central_Server.central.weather import validate_alert, validate_observations, validate_thresholds
from EV_Weather.web import create_app as create_office_app
from EV_Weather.office import WeatherOffice
from fakes import FakeClock, FakeRepository, RecordingOutlet, cp_row

KEY = "unit-weather-key"


class Api:
    def __init__(self):
        self.clock = FakeClock()
        self.repo = FakeRepository([cp_row("BIO1", city="Bilbao"), cp_row("BIO2", city="bilbao "),
                                    cp_row("MAD1", city="Madrid")], ["alice"], self.clock)
        self.outlet = RecordingOutlet()
        self.service = CentralService(self.repo, self.outlet, clock=self.clock)
        self.service.load()
        for cp_id in ("BIO1", "BIO2", "MAD1"):
            self.service.authenticate(cp_id, "", token := object())
            self.service.monitor_status(cp_id, True, token)
        self.app = create_app(self.service, self.repo, {"WEATHER_API_KEY": KEY})
        self.client = self.app.test_client()

    def post(self, path: str, body, key: str | None = KEY):
        return self.client.post(path, json=body, headers={"X-API-Key": key} if key is not None else {})

    def alert(self, kind: str, city: str = "Bilbao", temperature=-2.0):
        return self.post("/api/weather/alerts", {"city": city, "country": "ES", "kind": kind, "temperature": temperature})

    def cp(self, cp_id: str) -> dict:
        return self.client.get(f"/api/charging_points/{cp_id}").get_json()


@pytest.fixture
def api() -> Api:
    return Api()


# ---------------------------------------------------------------- validation (pure)
@pytest.mark.parametrize("body, problem", [
    ({"min_c": 0, "max_c": None}, None), ({"min_c": -5.5}, None), ({"min_c": 0, "max_c": 40}, None),
    ({"min_c": 10, "max_c": 10}, "lower"), ({"min_c": 10, "max_c": 5}, "lower"), ({"min_c": "0"}, "number"),
    ({"min_c": True}, "number"), ({"min_c": 0, "max_c": 101}, "between"), ({}, "body"), ([], "body"),
    ({"min_c": 0, "extra": 1}, "unknown"), ({"min_c": float("nan")}, "number"),
])
def test_validate_thresholds(body, problem):
    value, found = validate_thresholds(body)
    assert (found is None) == (problem is None) and (problem is None or problem in found)
    if problem is None:
        assert isinstance(value["min_c"], Decimal)


@pytest.mark.parametrize("body", [{"observations": []}, {"observations": [{"city": "", "temperature": 1}]},
                                  {"observations": [{"city": "X", "country": "ESP", "temperature": 1}]},
                                  {"observations": [{"city": "X", "temperature": None}]}, {"observations": "x"}, None])
def test_validate_observations_refuses(body):
    assert validate_observations(body)[1]


@pytest.mark.parametrize("body", [{"city": "X", "kind": "FREEZE"}, {"kind": "ALERT"}, {"city": "X", "kind": "ALERT",
                                                                                        "temperature": "cold"}])
def test_validate_alert_refuses(body):
    assert validate_alert(body)[1]


# ---------------------------------------------------------------- the key
@pytest.mark.parametrize("key, why", [(None, "missing API key"), ("nope", "wrong API key")])
@pytest.mark.parametrize("path, body", [("/api/weather/alerts", {"city": "Bilbao", "kind": "ALERT"}),
                                        ("/api/weather/observations", {"observations": [{"city": "B", "temperature": 1}]}),
                                        ("/api/messages", {"text": "hola"})])
def test_writes_without_the_key_are_refused_and_audited(api, key, why, path, body):
    response = api.post(path, body, key)
    assert response.status_code == 401 and response.get_json()["error"] == "BAD_API_KEY"
    record = api.repo.audit_log[-1]
    assert record["category"] == "SECURITY" and not record["success"] and record["description"] == why
    assert "nope" not in str(api.repo.audit_log) and api.cp("BIO1")["out_of_service"] == []


def test_without_a_configured_key_every_write_is_refused(api, monkeypatch):
    monkeypatch.delenv("EVC_WEATHER_API_KEY", raising=False)
    monkeypatch.delenv("EVC_WEATHER_API_KEY_FILE", raising=False)
    api.app.config["WEATHER_API_KEY"] = None
    assert api.alert("ALERT").status_code == 401
    assert api.repo.audit_log[-1]["description"] == "no API key configured in CENTRAL"


def test_the_key_can_come_from_a_file(api, monkeypatch, tmp_path):
    api.app.config["WEATHER_API_KEY"] = None
    monkeypatch.delenv("EVC_WEATHER_API_KEY", raising=False)
    (tmp_path / "k").write_text("file-key\n")
    monkeypatch.setenv("EVC_WEATHER_API_KEY_FILE", str(tmp_path / "k"))
    assert api.post("/api/messages", {"text": "hola"}, "file-key").status_code == 201


# ---------------------------------------------------------------- thresholds
def test_thresholds_default_and_update(api):
    assert api.client.get("/api/weather/thresholds").get_json() == {"min_c": 0.0, "max_c": None}
    response = api.client.put("/api/weather/thresholds", json={"min_c": -2, "max_c": 38.5})
    assert response.status_code == 200 and response.get_json() == {"min_c": -2.0, "max_c": 38.5}
    assert api.client.get("/api/weather/thresholds").get_json() == {"min_c": -2.0, "max_c": 38.5}
    bad = api.client.put("/api/weather/thresholds", json={"min_c": 5, "max_c": 1})
    assert bad.status_code == 400 and bad.get_json()["error"] == "BAD_THRESHOLDS"
    assert api.repo.audit_log[-1]["action"] == "weather_thresholds"


# ---------------------------------------------------------------- alerts
def test_alert_stops_the_citys_idle_cps_and_clear_brings_them_back(api):
    response = api.alert("ALERT")
    assert response.status_code == 200 and response.get_json() == {"kind": "ALERT", "charging_points": ["BIO1", "BIO2"]}
    assert api.cp("BIO1")["state"] == "PARADO" and api.cp("BIO1")["out_of_service"] == ["WEATHER"]
    assert api.cp("MAD1")["state"] == "ACTIVADO"
    assert api.alert("ALERT").get_json()["charging_points"] == []  # a repeat changes nothing, stores nothing
    assert [r["kind"] for r in api.repo.weather_alert_rows] == ["ALERT"]
    assert api.alert("CLEAR", temperature=1.0).get_json()["charging_points"] == ["BIO1", "BIO2"]
    assert api.cp("BIO2")["state"] == "ACTIVADO"
    assert [r["kind"] for r in api.repo.weather_alert_rows] == ["ALERT", "CLEAR"]
    actions = [r["action"] for r in api.repo.audit_log]
    assert "weather_alert" in actions and "weather_clear" in actions


def test_a_supplying_cp_finishes_first_then_goes_parado(api):
    answer = api.service.request_supply("driver", "alice", m.RequestSupply("BIO1", "alice", m.new_id()), None)
    supply_id = answer.supply_id
    started = api.clock().isoformat()
    api.service.supply_started(m.SupplyStarted(supply_id, "BIO1", started))
    assert api.cp("BIO1")["state"] == "SUMINISTRANDO"
    api.alert("ALERT")
    assert api.cp("BIO1")["state"] == "SUMINISTRANDO" and api.cp("BIO2")["state"] == "PARADO"
    assert not api.outlet.of(m.StopSupply)  # the supply is not interrupted
    api.clock.advance(60)
    api.service.supply_finished(m.SupplyFinished(supply_id, "BIO1", started, api.clock().isoformat(), "2.5", "0.88",
                                                 "UNPLUGGED"))
    assert api.cp("BIO1")["state"] == "PARADO" and api.cp("BIO1")["out_of_service"] == ["WEATHER"]
    assert api.repo.tickets[supply_id]["reason"] == "UNPLUGGED"


def test_operator_stop_and_weather_are_independent(api):
    api.service.stop_cp("BIO1")
    api.alert("ALERT")
    api.alert("CLEAR", temperature=3.0)
    assert api.cp("BIO1")["out_of_service"] == ["OPERATOR"]
    api.alert("ALERT")
    api.service.resume_cp("BIO1")
    assert api.cp("BIO1")["out_of_service"] == ["WEATHER"]


def test_observations_show_on_every_cp_of_the_city_and_reconcile(api):
    response = api.post("/api/weather/observations", {"observations": [{"city": "BILBAO", "country": "es",
                                                                        "temperature": -1.25}]})
    assert response.status_code == 200 and response.get_json() == {"stored": 1}
    assert api.cp("BIO1")["temperature"] == -1.25 and api.cp("BIO2")["temperature"] == -1.25
    assert api.cp("MAD1")["temperature"] is None
    api.alert("ALERT")
    api.service.add_cp({"cp_id": "BIO3", "address": "x", "city": "Bilbao", "country": "ES",
                        "price_eur_kwh": Decimal("0.3"), "power_kw": Decimal("22"), "zone": "default"})
    assert api.cp("BIO3")["out_of_service"] == []
    api.post("/api/weather/observations", {"observations": [{"city": "Bilbao", "temperature": -1.25}]})
    assert api.cp("BIO3")["out_of_service"] == ["WEATHER"]  # registered in a frozen city after its ALERT
    assert len(api.repo.weather_history) == 1  # same value within a minute: one history row


def test_weather_overview(api):
    api.post("/api/weather/observations", {"observations": [{"city": "Bilbao", "temperature": -3},
                                                            {"city": "Madrid", "temperature": 12.5}]})
    api.alert("ALERT", temperature=-3)
    body = api.client.get("/api/weather").get_json()
    assert body["thresholds"] == {"min_c": 0.0, "max_c": None}
    bilbao = next(c for c in body["cities"] if c["city"] == "Bilbao")
    assert bilbao["alert"] is True and bilbao["temperature"] == -3.0 and bilbao["charging_points"] == ["BIO1", "BIO2"]
    assert body["alerts"][0]["kind"] == "ALERT" and body["alerts"][0]["temperature"] == -3.0


def test_state_survives_a_central_restart(api):
    api.post("/api/weather/observations", {"observations": [{"city": "Bilbao", "temperature": -3}]})
    api.alert("ALERT")
    service = CentralService(api.repo, RecordingOutlet(), clock=api.clock)
    service.load()
    client = create_app(service, api.repo, {"WEATHER_API_KEY": KEY}).test_client()
    assert client.get("/api/charging_points/BIO1").get_json()["temperature"] == -3.0
    assert next(c for c in client.get("/api/weather").get_json()["cities"] if c["city"] == "Bilbao")["alert"] is True


def test_messages_from_the_weather_office(api):
    response = api.post("/api/messages", {"component": "EV_W", "level": "error", "text": "Imposible acceder al clima"})
    assert response.status_code == 201
    assert api.client.get("/api/messages").get_json()[0]["text"] == "Imposible acceder al clima"
    assert api.post("/api/messages", {"level": "panic", "text": "x"}).status_code == 400
    assert api.post("/api/messages", {"text": "x" * 501}).status_code == 400


# ---------------------------------------------------------------- EV_W's page and API
class _NoCentral:
    """An API_Central with no CPs and no alerts (the page and its API only)."""

    def locations(self):
        return []

    def alerted_places(self):
        return []


def office_app():
    """A scenario weather office and its page's test client."""
    office = WeatherOffice(type("P", (), {"name": "scenario"})(), _NoCentral(), out=lambda _: None, workers=1)
    return office, create_office_app(office).test_client()


def test_office_page_and_locations_api():
    office, client = office_app()
    assert client.post("/api/locations", json={"city": "Lyon", "country": "FR"}).status_code == 201
    assert client.post("/api/locations", json={"city": "lyon", "country": "fr"}).status_code == 200
    assert client.post("/api/locations", json={"city": ""}).status_code == 400
    assert [r["city"] for r in client.get("/api/locations").get_json()] == ["Lyon"]
    assert "Lyon" in client.get("/").get_data(as_text=True)
    assert client.post("/add", data={"place": "Madrid"}, headers={"Origin": "http://evil.example"}).status_code == 403
    same_page = {"Referer": "http://localhost/"}
    assert client.post("/add", data={"place": "Bilbao"}, headers=same_page).status_code == 302
    assert client.delete("/api/locations/Lyon?country=FR").status_code == 200
    assert client.delete("/api/locations/Lyon?country=FR").status_code == 404
    assert client.post("/remove", data={"place": "Bilbao"}, headers=same_page).status_code == 302
    assert office.book.current() == []
    office.close()


def test_office_page_uses_the_shared_look_and_keeps_its_forms():
    office, client = office_app()
    client.post("/api/locations", json={"city": "Lyon", "country": "FR"})
    lyon = office.book.current()[0]
    office.alerted[lyon.key] = lyon
    page = client.get("/").get_data(as_text=True)
    shared = [page.index(f'href="/shared/{name}"') for name in ("states.css", "base.css")]
    assert shared == sorted(shared) and shared[-1] < page.index('href="/static/office.css"')
    assert 'class="topbar"' in page and 'class="card span2"' in page and 'class="table"' in page
    assert 'action="/add"' in page and 'action="/remove"' in page and 'name="place"' in page
    assert 'http-equiv="refresh" content="4"' in page
    assert '<span class="badge state-PARADO">ALERTA</span>' in page  # the shared orange of a stopped CP
    for path in ("/shared/base.css", "/shared/states.css", "/static/office.css"):
        response = client.get(path)
        assert response.status_code == 200
        response.close()
    office.close()
