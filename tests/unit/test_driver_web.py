"""The driver web app through its factory: Flask's test client, Socket.IO's test client, fake Kafka.

The driver apps are the real ``DriverApp``/``DriverSession`` loops (on threads); only the zone link is
fake: ``FakeZoneClient`` plays CENTRAL for accounts, history and requests, and a test injects what
CENTRAL would send next. Nothing here opens a socket, Kafka client or database.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import os
import threading
import time

import pytest

from common import messages as m
from EV_Driver.EV_Driver import DriverApp
from EV_Driver.model import CpView
from EV_Driver.session import DriverSession, SystemClock
from EV_Driver.web import create_app, push_views, room, socketio
from EV_Driver.web.hub import DriverHub, TicketStore, secret_key
from EV_Driver.web.view import cp_row, driver_view, price_text

PASSWORDS = {"ALICE": "alice-password", "BOB": "bob-password"}


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class FakeZoneClient:
    """CENTRAL's side of one driver's zone link, in memory."""

    def __init__(self, client_id, on_message, on_link, central):
        self.client_id, self.on_message, self.on_link, self.central = client_id, on_message, on_link, central
        self.sent: list[m.Message] = []
        self.connected = False

    def start(self):
        self.connected = True
        self.on_link(True)

    def stop(self):
        self.connected = False

    def send(self, message):
        self.sent.append(message)
        for reply in self.central.answer(self.client_id, message):
            self.deliver(reply)
        return "id"

    def deliver(self, message):
        self.on_message(m.Envelope(m.new_id(), m.now_iso(), "CENTRAL", message))


class FakeCentral:
    """Accounts, history and answers to requests, as CENTRAL would give them."""

    def __init__(self):
        self.accounts = {"ALICE": PASSWORDS["ALICE"]}
        self.clients: dict[str, FakeZoneClient] = {}
        self.tickets: dict[str, m.TicketIssued] = {}

    def answer(self, sender, message):
        if isinstance(message, m.RegisterDriver):
            if message.driver_id in self.accounts:
                return [m.AccountResult(message.driver_id, False, "DRIVER_EXISTS", "Ese conductor ya existe",
                                        message.request_id)]
            self.accounts[message.driver_id] = message.password
            return [m.AccountResult(message.driver_id, True, "OK", "Cuenta creada", message.request_id)]
        if isinstance(message, m.LoginDriver):
            ok = self.accounts.get(message.driver_id) == message.password
            return [m.AccountResult(message.driver_id, ok, "OK" if ok else "BAD_CREDENTIALS",
                                    "Sesión iniciada" if ok else "Conductor o contraseña incorrectos",
                                    message.request_id)]
        if isinstance(message, m.QueryHistory):
            last = self.tickets.get(sender)
            return [m.SupplyHistory(sender, [], None if last is None else dataclasses.asdict(last))]
        if isinstance(message, m.RequestSupply):
            return [m.SupplyAuthorized(message.request_id, f"S-{sender}", message.cp_id, sender, "0.4",
                                       "2999-01-01T00:00:00+00:00")]
        return []


def ticket(driver_id, supply_id=None, ticket_id=None, ended="2030-01-01T10:00:10+00:00"):
    return m.TicketIssued(ticket_id or f"T-{driver_id}", supply_id or f"S-{driver_id}", "ALC1", driver_id,
                          "2030-01-01T10:00:00+00:00", ended, 10, "1.234", "0.4", "0.49", "UNPLUGGED")


STATUS = m.NetworkStatus(cps=[
    {"cp_id": "ALC1", "state": "ACTIVADO", "price_eur_kwh": "0.4", "city": "Alicante", "temperature": "12.5"},
    {"cp_id": "MAD2", "state": "SUMINISTRANDO", "price_eur_kwh": "0.45", "city": "Madrid",
     "supply": {"driver_id": "SOMEONE-ELSE", "power_kw": "22", "energy_kwh": "3.000", "amount_eur": "1.35"}},
])


@pytest.fixture
def rig(tmp_path):
    """A home driver ALICE, a hub, the Flask app; every driver loop stopped afterwards."""
    central = FakeCentral()
    args = argparse.Namespace(zone="default", broker_text="fake:9092", exit_when_done=False)
    apps: list[DriverApp] = []

    def make_app(driver_id):
        def factory(on_message, on_link):
            client = FakeZoneClient(driver_id, on_message, on_link, central)
            central.clients[driver_id] = client
            return client
        app = DriverApp(args, DriverSession(driver_id, SystemClock(), wait_s=0.2), None,
                        zone_client_factory=factory, status_reader_factory=None)
        apps.append(app)
        return app

    home = make_app("ALICE")
    hub = DriverHub(home, make_app, TicketStore(tmp_path / "tickets"), account_timeout_s=2.0)
    threading.Thread(target=home.run, args=(None,), daemon=True).start()
    home.feed(STATUS)
    hub._fan_out_status(STATUS)
    flask_app = create_app(hub, {"SECRET_KEY": "test-secret", "PUSH_TASK": False, "TESTING": True})
    yield argparse.Namespace(central=central, hub=hub, home=home, app=flask_app, store=hub.store, apps=apps,
                             client=flask_app.test_client())
    for app in apps:
        app.request_quit()


def login(client, driver_id="ALICE"):
    return client.post("/login", data={"driver_id": driver_id, "password": PASSWORDS[driver_id]})


# ---------------------------------------------------------------- pure view
def test_price_text_keeps_two_decimals_at_least():
    assert [price_text(v) for v in ("0.4", "0.395", "1", "", "abc")] == ["0.40", "0.395", "1.00", "", ""]


def test_cp_row_never_shows_another_drivers_supply():
    row = cp_row(CpView.from_entry(STATUS.cps[1]))
    assert row["state"] == "SUMINISTRANDO" and not row["can_request"]
    assert "SOMEONE-ELSE" not in repr(row) and "3.000" not in repr(row)


def test_banner_only_once_central_is_known_unreachable():
    session = DriverSession("ALICE", SystemClock())
    view = driver_view(session, None, 0.0, None, None, [])
    assert view["banner"] is None and view["central"] == "starting"
    session.reachable = False
    view = driver_view(session, None, 0.0, None, None, [])
    assert view["banner"] == "Imposible conectar con la CENTRAL" and view["central"] == "down"


def test_secret_key_is_random_kept_and_private(tmp_path):
    first = secret_key(tmp_path / "k")
    assert len(first) >= 32 and secret_key(tmp_path / "k") == first
    assert os.stat(tmp_path / "k").st_mode & 0o077 == 0
    assert secret_key(tmp_path / "other") != first


def test_ticket_store_round_trip_and_other_drivers_file_is_ignored(tmp_path):
    store = TicketStore(tmp_path)
    store.save(ticket("ALICE"))
    assert store.load("ALICE") == ticket("ALICE")
    assert store.load("BOB") is None
    store.path("BOB").write_text("{not json", encoding="utf-8")
    assert store.load("BOB") is None


def test_factory_refuses_to_run_without_a_secret(rig):
    with pytest.raises(ValueError):
        create_app(rig.hub, {"SECRET_KEY": ""})


# ---------------------------------------------------------------- accounts
def test_pages_need_a_login(rig):
    assert rig.client.get("/").headers["Location"].endswith("/login")
    response = rig.client.get("/api/state")
    assert response.status_code == 401 and response.get_json()["error"] == "NOT_LOGGED_IN"
    assert rig.client.post("/api/stop").status_code == 401


def test_register_then_login_as_a_new_driver(rig):
    response = rig.client.post("/register", data={"driver_id": "BOB", "password": PASSWORDS["BOB"]})
    assert response.status_code == 302 and "driver_id=BOB" in response.headers["Location"]
    assert rig.central.accounts["BOB"] == PASSWORDS["BOB"]
    assert login(rig.client, "BOB").status_code == 302
    page = rig.client.get("/")
    assert page.status_code == 200 and b"BOB" in page.data


def test_login_page_links_the_shared_base_styles_before_its_own(rig):
    page = rig.client.get("/login").get_data(as_text=True)
    assert page.index("/shared/states.css") < page.index("/shared/base.css") < page.index("driver.css")


def test_register_an_existing_driver_says_why(rig):
    response = rig.client.post("/register", data={"driver_id": "ALICE", "password": "whatever-123"})
    assert response.status_code == 400 and "Ese conductor ya existe" in response.get_data(as_text=True)


@pytest.mark.parametrize("form, text", [
    ({"driver_id": "", "password": "x"}, "identificador"),
    ({"driver_id": "bad id!", "password": "x"}, "no válido"),
    ({"driver_id": "ALICE", "password": ""}, "contraseña"),
])
def test_login_form_is_validated_before_asking_central(rig, form, text):
    response = rig.client.post("/login", data=form)
    assert response.status_code == 401 and text in response.get_data(as_text=True).lower()
    assert not any(isinstance(msg, m.LoginDriver) for msg in rig.central.clients["ALICE"].sent)


def test_wrong_password_is_refused(rig):
    response = rig.client.post("/login", data={"driver_id": "ALICE", "password": "nope"})
    assert response.status_code == 401 and "incorrectos" in response.get_data(as_text=True)
    assert rig.client.get("/api/state").status_code == 401


def test_central_unreachable_during_login(rig):
    rig.central.clients["ALICE"].connected = False
    rig.hub.account_timeout_s = 0.2
    response = login(rig.client)
    assert response.status_code == 401 and "Imposible conectar con la CENTRAL" in response.get_data(as_text=True)


# ---------------------------------------------------------------- the page and its actions
def test_request_supply_ticket_and_history(rig):
    login(rig.client)
    view = wait_for(lambda: (v := rig.client.get("/api/state").get_json()) and v["cps"] and v, what="CPs")
    alc1 = next(cp for cp in view["cps"] if cp["cp_id"] == "ALC1")
    assert alc1 == {**alc1, "can_request": True, "price_eur_kwh": "0.40", "temperature": "12.5"}
    assert rig.client.post("/api/request/ALC1").status_code == 202
    wait_for(lambda: (rig.client.get("/api/state").get_json()["supply"] or {}).get("phase") == "AUTHORIZED",
             what="authorization")
    fake = rig.central.clients["ALICE"]
    fake.deliver(m.SupplyStarted("S-ALICE", "ALC1", m.now_iso()))
    fake.deliver(m.Telemetry("S-ALICE", "ALC1", "22", "0.367", "0.15", 1))
    supply = wait_for(lambda: (s := rig.client.get("/api/state").get_json()["supply"]) and s["energy_kwh"] == "0.367"
                      and s, what="telemetry")
    assert supply["charging"] and supply["amount_eur"] == "0.15" and supply["price_eur_kwh"] == "0.40"
    rig.central.tickets["ALICE"] = ticket("ALICE")
    fake.deliver(ticket("ALICE"))
    view = wait_for(lambda: (v := rig.client.get("/api/state").get_json())["last_ticket"] and v["supply"] is None
                    and v, what="ticket")
    assert view["last_ticket"]["ticket_id"] == "T-ALICE" and view["last_ticket"]["reason_text"] == "Vehicle unplugged"
    assert rig.store.load("ALICE").ticket_id == "T-ALICE"
    assert m.AckTicket("T-ALICE") in fake.sent
    assert sum(isinstance(msg, m.QueryHistory) for msg in fake.sent) >= 2  # on link-up and after the ticket


def test_last_ticket_from_disk_and_from_central_after_a_restart(rig, tmp_path):
    rig.store.save(ticket("ALICE", ticket_id="OLD", ended="2030-01-01T09:00:00+00:00"))
    rig.central.tickets["BOB"] = ticket("BOB", ticket_id="NEWER")
    rig.store.save(ticket("BOB", ticket_id="OLDER", ended="2029-01-01T00:00:00+00:00"))
    rig.central.accounts["BOB"] = PASSWORDS["BOB"]
    login(rig.client, "BOB")
    view = wait_for(lambda: (v := rig.client.get("/api/state").get_json())["history"] is not None and v,
                    what="history")
    assert view["last_ticket"]["ticket_id"] == "NEWER"  # CENTRAL's is newer than the file
    assert rig.store.load("BOB").ticket_id == "NEWER"


def test_request_validates_the_cp_id(rig):
    login(rig.client)
    response = rig.client.post("/api/request/bad%20id")
    assert response.status_code == 400 and response.get_json()["error"] == "BAD_CP_ID"


def test_services_file_upload(rig):
    login(rig.client)
    bad = rig.client.post("/api/services", data={"file": (io.BytesIO(b"ALC1\nnot a cp!\n"), "s.txt")})
    assert bad.status_code == 400 and "line 2" in bad.get_json()["message"]
    assert rig.client.post("/api/services", data={}).get_json()["error"] == "NO_FILE"
    big = rig.client.post("/api/services", data={"file": (io.BytesIO(b"ALC1\n" * 20000), "s.txt")})
    assert big.status_code == 413 and big.get_json()["error"] == "FILE_TOO_LARGE"
    ok = rig.client.post("/api/services", data={"file": (io.BytesIO(b"# two\nALC1\nMAD2\n"), "s.txt")})
    assert ok.status_code == 202 and ok.get_json()["count"] == 2
    batch = wait_for(lambda: rig.client.get("/api/state").get_json()["batch"], what="batch")
    assert batch["total"] == 2 and batch["done"] == 0
    again = rig.client.post("/api/services", data={"file": (io.BytesIO(b"ALC1\n"), "s.txt")})
    assert again.status_code == 409


def test_stop_goes_through_the_console_command(rig):
    login(rig.client)
    rig.client.post("/api/request/ALC1")
    wait_for(lambda: rig.client.get("/api/state").get_json()["supply"], what="authorization")
    assert rig.client.post("/api/stop").status_code == 202
    wait_for(lambda: m.StopSupply("S-ALICE", "DRIVER_STOP") in rig.central.clients["ALICE"].sent, what="stop")


# ---------------------------------------------------------------- Socket.IO
def test_socket_refused_without_login(rig):
    sio = socketio.test_client(rig.app, flask_test_client=rig.client)
    assert not sio.is_connected()


def test_each_driver_gets_only_its_own_pushes(rig):
    alice_http, bob_http = rig.app.test_client(), rig.app.test_client()
    rig.central.accounts["BOB"] = PASSWORDS["BOB"]
    login(alice_http, "ALICE")
    login(bob_http, "BOB")
    alice = socketio.test_client(rig.app, flask_test_client=alice_http)
    bob = socketio.test_client(rig.app, flask_test_client=bob_http)
    first = alice.get_received()
    assert first and first[0]["args"][0]["driver_id"] == "ALICE"
    assert bob.get_received()[0]["args"][0]["driver_id"] == "BOB"
    rig.central.clients["ALICE"].deliver(ticket("ALICE", supply_id="S-X", ticket_id="T-SECRET"))
    wait_for(lambda: (rig.hub.runtime("ALICE").view(0) or {}).get("last_ticket"), what="alice's ticket")
    push_views(rig.app, rounds=2)
    pushed_to_alice = [p["args"][0] for p in alice.get_received() if p["name"] == "state"]
    assert pushed_to_alice and pushed_to_alice[-1]["last_ticket"]["ticket_id"] == "T-SECRET"
    assert "T-SECRET" not in repr(bob.get_received())
    assert room("ALICE") != room("BOB")


def test_logout_stops_a_web_drivers_link_and_the_next_login_starts_a_new_one(rig):
    rig.client.post("/register", data={"driver_id": "BOB", "password": PASSWORDS["BOB"]})
    login(rig.client, "BOB")
    first = rig.hub.runtime("BOB")
    rig.client.post("/logout")
    assert "BOB" not in [r.app.session.driver_id for r in rig.hub.runtimes()]
    login(rig.client, "BOB")
    assert rig.hub.runtime("BOB") is not first
    rig.client.post("/logout")
    login(rig.client, "ALICE")
    rig.client.post("/logout")
    assert rig.hub.runtime("ALICE").app is rig.home  # the console's own driver keeps its link
