"""CENTRAL: driver accounts, history, CP registration, deferred reasons and the change stream (fakes only)."""
from __future__ import annotations

import threading

import pytest

from common import messages as m
from common import passwords
from test_central_service import Net


@pytest.fixture
def net(monkeypatch) -> Net:
    return Net(monkeypatch)


def test_register_stores_only_a_slow_salted_hash_and_login_checks_it(net):
    result = net.service.register_driver("carol", m.RegisterDriver("carol", "correct horse"))
    assert result.ok and result.code == "OK"
    stored = net.repo.driver_password_hash("carol")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert net.service.login_driver("carol", m.LoginDriver("carol", "correct horse")).ok


@pytest.mark.parametrize("driver_id, password, code", [
    ("alice", "whatever123", "DRIVER_EXISTS"),
    ("bad id!", "whatever123", "BAD_DRIVER_ID"),
    ("dave", "123", "WEAK_PASSWORD"),
])
def test_register_refusals(net, driver_id, password, code):
    result = net.service.register_driver(driver_id, m.RegisterDriver(driver_id, password))
    assert not result.ok and result.code == code


def test_login_gives_the_same_answer_for_unknown_driver_and_wrong_password(net):
    net.service.register_driver("carol", m.RegisterDriver("carol", "correct horse"))
    wrong = net.service.login_driver("carol", m.LoginDriver("carol", "wrong horse"))
    unknown = net.service.login_driver("nobody", m.LoginDriver("nobody", "correct horse"))
    assert (wrong.ok, wrong.code, wrong.message) == (unknown.ok, unknown.code, unknown.message) == (
        False, "BAD_CREDENTIALS", wrong.message)


def test_a_registered_driver_may_charge(net):
    net.service.register_driver("carol", m.RegisterDriver("carol", "correct horse"))
    net.connect("CP1")
    assert isinstance(net.request("carol", "CP1"), m.SupplyAuthorized)


def test_history_lists_own_supplies_and_the_last_ticket(net):
    supply_id = net.charging("alice")
    net.finished(supply_id)
    history = net.service.history("alice")
    assert [s["supply_id"] for s in history.supplies] == [supply_id]
    assert history.last_ticket["supply_id"] == supply_id
    assert net.service.history("bob").supplies == [] and net.service.history("bob").last_ticket is None


def test_add_cp_shows_it_desconectado_and_remove_refuses_while_supplying(net):
    view = net.service.add_cp({"cp_id": "CP9", "address": "Calle 9", "city": "Murcia", "country": "ES",
                               "price_eur_kwh": "0.39", "power_kw": "22", "zone": "default"})
    assert view["state"] == "DESCONECTADO" and net.service.get("CP9")["city"] == "Murcia"
    net.charging("alice", "CP1")
    with pytest.raises(ValueError):
        net.service.remove_cp("CP1")
    net.service.remove_cp("CP9")
    assert net.service.get("CP9") is None
    with pytest.raises(KeyError):
        net.service.remove_cp("CP9")


def test_a_reason_after_supply_waits_for_the_supply_to_end(net):
    supply_id = net.charging("alice", "CP1")
    net.service.set_reason("CP1", "WEATHER", True, "weather", after_supply=True)
    assert net.state("CP1") == "SUMINISTRANDO"
    assert not net.outlet.messages(m.StopSupply)
    net.finished(supply_id)
    assert net.state("CP1") == "PARADO" and net.service.get("CP1")["out_of_service"] == ["WEATHER"]


def test_clearing_a_pending_reason_before_the_supply_ends_cancels_it(net):
    supply_id = net.charging("alice", "CP1")
    net.service.set_reason("CP1", "WEATHER", True, "weather", after_supply=True)
    net.service.set_reason("CP1", "WEATHER", False, "weather")
    net.finished(supply_id)
    assert net.state("CP1") == "ACTIVADO"


def test_wait_change_returns_at_once_when_behind_and_wakes_on_a_change(net):
    seen = net.service.version
    assert net.service.wait_change(seen - 1, 5) == seen
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(net.service.wait_change(seen, 5)))
    waiter.start()
    net.connect("CP1")
    waiter.join(5)
    assert woke and woke[0] > seen
    assert net.service.wait_change(net.service.version, 0) == net.service.version


def test_passwords_verify_rejects_garbage_hashes():
    assert not passwords.verify_secret("x", None)
    assert not passwords.verify_secret("x", "plain")
    assert not passwords.verify_secret("x", "scrypt$a$b$c$d$e")
    assert passwords.verify_secret("x", passwords.hash_secret("x"))


# ---------------------------------------------------------------- the REST side of the same
@pytest.fixture
def client(net):
    from EV_Central_Server.central.api import create_app
    return create_app(net.service, net.repo).test_client()


def test_api_add_and_remove_cp(client):
    body = {"cp_id": "MUR9", "address": "Gran Vía 1", "city": "Murcia", "price_eur_kwh": "0.39", "power_kw": 22}
    created = client.post("/api/charging_points", json=body)
    assert created.status_code == 201 and created.get_json()["state"] == "DESCONECTADO"
    assert client.get("/api/charging_points/MUR9").status_code == 200
    again = client.post("/api/charging_points", json={**body, "price_eur_kwh": "9"})
    assert again.status_code == 409 and again.get_json()["error"] == "CP_EXISTS"
    assert client.get("/api/charging_points/MUR9").get_json()["price_eur_kwh"] == "0.39"
    assert client.delete("/api/charging_points/MUR9").get_json() == {"cp_id": "MUR9", "result": "removed"}
    assert client.delete("/api/charging_points/MUR9").status_code == 404


@pytest.mark.parametrize("body", [None, [], {"cp_id": "X"}, {"cp_id": "bad id", "address": "a", "city": "c",
                                  "price_eur_kwh": 1, "power_kw": 1},
                                  {"cp_id": "X1", "address": "a", "city": "c", "price_eur_kwh": "abc", "power_kw": 1},
                                  {"cp_id": "X1", "address": "a", "city": "c", "price_eur_kwh": "NaN", "power_kw": 1},
                                  {"cp_id": "X1", "address": 5, "city": "c", "price_eur_kwh": 1, "power_kw": 1},
                                  {"cp_id": "X1", "address": "a", "city": "c", "price_eur_kwh": 1, "power_kw": 0}])
def test_api_add_cp_rejects_bad_bodies_with_400(client, body):
    response = client.post("/api/charging_points", json=body)
    assert response.status_code == 400 and response.get_json()["error"] == "BAD_CP"


def test_api_remove_refused_while_supplying(net, client):
    net.charging("alice", "CP1")
    response = client.delete("/api/charging_points/CP1")
    assert response.status_code == 409 and response.get_json()["error"] == "CP_BUSY"


def test_api_changes_long_poll(net, client):
    first = client.get("/api/changes?since=-1&timeout=0").get_json()
    assert first["version"] == net.service.version and len(first["charging_points"]) == 2
    assert client.get("/api/changes?since=abc").status_code == 400
    assert client.get("/api/changes?timeout=99").status_code == 400
    net.charging("alice", "CP1")
    later = client.get(f"/api/changes?since={first['version']}&timeout=1").get_json()
    assert later["version"] > first["version"] and later["ongoing"][0]["driver_id"] == "alice"


def test_api_drivers_lists_ids_only(client):
    drivers = client.get("/api/drivers").get_json()
    assert [d["driver_id"] for d in drivers] == ["alice", "bob"]
    assert all(set(d) == {"driver_id", "created_at"} for d in drivers)
