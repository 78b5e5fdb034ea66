"""CentralService through its ports: FakeRepository, RecordingOutlet and a FakeClock (SPEC §3, §4, §5, §7)."""
from __future__ import annotations

import ast
import inspect
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from common import messages as m
from EV_Central_Server.central import service as service_module
from EV_Central_Server.central.service import AuthDenied, CentralService
from fakes import T0, FakeClock, FakeRepository, RecordingOutlet, cp_row

REPOSITORY_SOURCE = Path(service_module.__file__).with_name("repository.py")


class Net:
    """A CENTRAL service wired to fakes, with short-hands for what Monitors, engines and drivers do."""

    def __init__(self, monkeypatch, cps=None, drivers=("alice", "bob"), on_change=None):
        self.clock = FakeClock()
        # check_links and Monitor liveness use time.monotonic(); make it the fake clock's
        monkeypatch.setattr(service_module, "time", SimpleNamespace(monotonic=self.clock.monotonic))
        self.repo = FakeRepository(cps if cps is not None else [cp_row("CP1"), cp_row("CP2", city="Madrid")],
                                   list(drivers), self.clock)
        self.outlet = RecordingOutlet()
        self.changes = 0
        self.service = CentralService(self.repo, self.outlet, clock=self.clock, auth_timeout_s=60,
                                      silent_link_s=3, on_change=on_change or self._count)
        self.service.load()
        self.tokens: dict[str, object] = {}
        self._requests = 0

    def _count(self) -> None:
        self.changes += 1

    def state(self, cp_id: str) -> str:
        return self.service.get(cp_id)["state"]

    def connect(self, cp_id: str, ok: bool = True) -> object:
        token = self.tokens[cp_id] = object()
        self.service.authenticate(cp_id, "", token)
        self.service.monitor_status(cp_id, ok, token)
        return token

    def status(self, cp_id: str, ok: bool) -> None:
        self.service.monitor_status(cp_id, ok, self.tokens[cp_id])

    def request(self, driver: str, cp_id: str, request_id=None, sender=None, kind="driver", sent_at=None):
        self._requests += 1
        req = m.RequestSupply(cp_id, driver, request_id or f"req{self._requests}")
        return self.service.request_supply(kind, sender or driver, req, sent_at)

    def authorize(self, driver: str = "alice", cp_id: str = "CP1") -> m.SupplyAuthorized:
        if not self.service.cps[cp_id].link_up:
            self.connect(cp_id)
        answer = self.request(driver, cp_id, kind="engine" if driver.startswith("ANON-") else "driver",
                              sender=cp_id if driver.startswith("ANON-") else driver)
        assert isinstance(answer, m.SupplyAuthorized), answer
        return answer

    def start(self, supply_id: str, cp_id: str = "CP1") -> None:
        self.service.supply_started(m.SupplyStarted(supply_id, cp_id, T0.isoformat()))

    def charging(self, driver: str = "alice", cp_id: str = "CP1") -> str:
        supply_id = self.authorize(driver, cp_id).supply_id
        self.start(supply_id, cp_id)
        return supply_id

    def finished(self, supply_id: str, cp_id: str = "CP1", kwh: str = "10.5", reason: str = "UNPLUGGED",
                 seconds: int = 600) -> m.SupplyFinished:
        msg = m.SupplyFinished(supply_id, cp_id, T0.isoformat(), (T0 + timedelta(seconds=seconds)).isoformat(),
                               kwh, "0", reason)
        self.service.supply_finished(msg)
        return msg

    def tickets(self, kind=None, client_id=None) -> list[m.TicketIssued]:
        return self.outlet.messages(m.TicketIssued, kind, client_id)


@pytest.fixture
def net(monkeypatch) -> Net:
    return Net(monkeypatch)


# ---------------------------------------------------------------- the fake itself
def _public_methods(tree: ast.Module, class_name: str) -> dict[str, list[str]]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {f.name: [a.arg for a in f.args.args] for f in cls.body
            if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}


def test_fake_repository_has_every_method_of_postgres_repository_with_the_same_parameters():
    real = _public_methods(ast.parse(REPOSITORY_SOURCE.read_text(encoding="utf-8")), "PostgresRepository")
    fake = {name: list(inspect.signature(getattr(FakeRepository, name)).parameters)
            for name in dir(FakeRepository) if not name.startswith("_") and callable(getattr(FakeRepository, name))}
    assert real, "no methods found in repository.py"
    for name, params in real.items():
        assert name in fake, f"FakeRepository lacks {name}"
        assert fake[name] == params, f"{name}: {fake[name]} != {params}"


def test_fake_finish_supply_keeps_one_ticket_per_supply():
    repo = FakeRepository([cp_row("CP1")], ["alice"])
    repo.insert_supply({"supply_id": "s1", "request_id": "r1", "cp_id": "CP1", "driver_id": "alice",
                        "price_eur_kwh": Decimal("0.35"), "authorized_at": T0, "expires_at": T0, "power_kw": "22"})
    first = repo.finish_supply("s1", T0, T0, Decimal("1"), Decimal("0.35"), "UNPLUGGED", {"ticket_id": "t1", "supply_id": "s1"})
    second = repo.finish_supply("s1", T0, T0, Decimal("2"), Decimal("0.70"), "DRIVER_STOP", {"ticket_id": "t2", "supply_id": "s1"})
    assert first["ticket_id"] == second["ticket_id"] == "t1"
    assert repo.supplies["s1"]["end_reason"] == "UNPLUGGED" and len(repo.tickets) == 1


# ---------------------------------------------------------------- start-up and Monitors
def test_load_shows_every_known_cp_desconectado(monkeypatch):
    net = Net(monkeypatch, cps=[cp_row("CP1"), cp_row("CP2", out_of_service=["WEATHER"]), cp_row("CP3", engine_ok=False)])
    assert [(cp["cp_id"], cp["state"], cp["colour"]) for cp in net.service.snapshot()] == [
        ("CP1", "DESCONECTADO", "grey"), ("CP2", "DESCONECTADO", "grey"), ("CP3", "DESCONECTADO", "grey")]
    assert net.service.get("CP2")["out_of_service"] == ["WEATHER"]


def test_load_restores_open_supplies_and_unacknowledged_tickets(monkeypatch):
    first = Net(monkeypatch)
    supply_id = first.charging("alice", "CP1")
    done = first.authorize("bob", "CP2").supply_id
    first.service.supply_finished(m.SupplyFinished(done, "CP2", None, T0.isoformat(), "0", "0", "UNPLUGGED"))
    restarted = CentralService(first.repo, RecordingOutlet(), clock=first.clock)
    restarted.load()
    assert restarted.get("CP1")["state"] == "DESCONECTADO"
    assert restarted.get("CP1")["supply"]["supply_id"] == supply_id
    assert restarted.get("CP1")["supply"]["phase"] == "CHARGING"
    assert [t.supply_id for t in restarted.unacked.values()] == [done]


def test_unknown_cp_is_refused_with_cp_not_found(net):
    with pytest.raises(AuthDenied) as exc:
        net.service.authenticate("CP9", "", object())
    assert exc.value.code == "CP_NOT_FOUND"
    assert "CP9" not in net.service.cps and "CP9" not in net.repo.cps  # never created as a side effect
    assert net.repo.audit_log[-1]["success"] is False


def test_cp_registered_after_start_is_accepted(net):
    net.repo.upsert_cp(cp_row("CP7"))
    net.connect("CP7")
    assert net.state("CP7") == "ACTIVADO"


def test_bad_credentials_are_refused(net):
    with pytest.raises(AuthDenied) as exc:
        net.service.authenticate("CP1", "wrong", object(), verify_secret=lambda cp_id, secret: False)
    assert exc.value.code == "BAD_CREDENTIALS"
    assert net.state("CP1") == "DESCONECTADO"


@pytest.mark.parametrize("statuses, state", [
    ([True], "ACTIVADO"),
    ([False], "AVERIADO"),
    ([True, False], "AVERIADO"),
    ([False, True], "ACTIVADO"),
    ([False, False, True, True], "ACTIVADO"),
])
def test_monitor_status_sets_the_state(net, statuses, state):
    token = object()
    net.service.authenticate("CP1", "", token)
    for ok in statuses:
        net.service.monitor_status("CP1", ok, token)
    assert net.state("CP1") == state
    assert net.repo.cps["CP1"]["engine_ok"] is statuses[-1]


def test_status_with_an_old_token_is_ignored(net):
    old = net.connect("CP1")
    net.clock.advance(3.5)  # the first Monitor went silent: a second one may take over
    net.connect("CP1")
    net.service.monitor_status("CP1", False, old)
    assert net.state("CP1") == "ACTIVADO"


def test_a_second_monitor_is_refused_while_the_first_one_reports(net):
    net.connect("CP1")
    with pytest.raises(AuthDenied) as denied:
        net.service.authenticate("CP1", "", object())
    assert denied.value.code == "ALREADY_CONNECTED"
    assert net.state("CP1") == "ACTIVADO"


def test_an_authenticated_monitor_takes_over_when_the_current_link_drops(net):
    first = net.connect("CP1")
    net.clock.advance(3.5)
    intruder = object()
    net.service.authenticate("CP1", "", intruder)  # the first Monitor was silent: accepted
    net.service.monitor_lost("CP1", intruder, "EOF")
    assert net.state("CP1") == "DESCONECTADO"
    net.service.monitor_status("CP1", True, first)  # the real Monitor still reports on its own connection
    assert net.state("CP1") == "ACTIVADO"


@pytest.mark.parametrize("silence_s, state", [(2.0, "ACTIVADO"), (3.0, "ACTIVADO"), (3.5, "DESCONECTADO")])
def test_silent_link_goes_desconectado_after_3_s(net, silence_s, state):
    net.connect("CP1")
    net.clock.advance(silence_s)
    net.service.check_links()
    assert net.state("CP1") == state


def test_status_keeps_the_link_alive_and_telemetry_does_not(net):
    supply_id = net.charging()
    for _ in range(5):
        net.clock.advance(1)
        net.status("CP1", True)
        net.service.check_links()
    assert net.state("CP1") == "SUMINISTRANDO"
    for seq in range(4):
        net.clock.advance(1)
        net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", str(seq), "0", seq))
        net.service.check_links()
    assert net.state("CP1") == "DESCONECTADO"


def test_status_after_a_silent_link_brings_the_cp_back(net):
    net.connect("CP1")
    net.clock.advance(5)
    net.service.check_links()
    net.status("CP1", True)
    assert net.state("CP1") == "ACTIVADO"


def test_monitor_lost_with_a_stale_token_is_ignored(net):
    old = net.connect("CP1")
    net.clock.advance(3.5)
    current = net.connect("CP1")
    net.service.monitor_lost("CP1", old, "EOF")
    assert net.state("CP1") == "ACTIVADO"
    net.service.monitor_lost("CP1", current, "EOF")
    assert net.state("CP1") == "DESCONECTADO"
    assert any("desconectado" in msg["text"] for msg in net.repo.messages)


def test_monitor_lost_during_a_supply_tells_the_driver(net):
    net.charging()
    net.service.monitor_lost("CP1", net.tokens["CP1"], "EOF")
    assert [n.level for n in net.outlet.messages(m.Notice, "driver", "alice")] == ["error"]


# ---------------------------------------------------------------- requests: every deny reason
def _stop(net: Net) -> None:
    net.connect("CP1")
    net.service.stop_cp("CP1")


def _weather(net: Net) -> None:
    net.connect("CP1")
    net.service.set_reason("CP1", "WEATHER", True, "weather")


def _weather_and_operator(net: Net) -> None:
    _weather(net)
    net.service.stop_cp("CP1")


DENY_CASES = [
    # (case id, setup, driver_id, cp_id, sender kind, sender, reason)
    ("unknown CP", lambda net: None, "alice", "CP9", "driver", "alice", "CP_NOT_FOUND"),
    ("no Monitor link", lambda net: None, "alice", "CP1", "driver", "alice", "DISCONNECTED"),
    ("engine KO", lambda net: net.connect("CP1", ok=False), "alice", "CP1", "driver", "alice", "FAULTY"),
    ("operator stop", _stop, "alice", "CP1", "driver", "alice", "OUT_OF_ORDER"),
    ("weather alert only", _weather, "alice", "CP1", "driver", "alice", "WEATHER"),
    ("weather and operator", _weather_and_operator, "alice", "CP1", "driver", "alice", "OUT_OF_ORDER"),
    ("CP authorized for bob", lambda net: net.authorize("bob", "CP1"), "alice", "CP1", "driver", "alice", "BUSY"),
    ("CP charging for bob", lambda net: net.charging("bob", "CP1"), "alice", "CP1", "driver", "alice", "BUSY"),
    ("alice busy at CP2", lambda net: (net.connect("CP1"), net.authorize("alice", "CP2")), "alice", "CP1",
     "driver", "alice", "DRIVER_BUSY"),
    ("unregistered driver", lambda net: net.connect("CP1"), "mallory", "CP1", "driver", "mallory", "UNKNOWN_DRIVER"),
    ("driver asks for another", lambda net: net.connect("CP1"), "alice", "CP1", "driver", "bob", "UNKNOWN_DRIVER"),
    ("driver posing anonymous", lambda net: net.connect("CP1"), "ANON-CP1", "CP1", "driver", "ANON-CP1",
     "UNKNOWN_DRIVER"),
    ("engine for another CP", lambda net: (net.connect("CP1"), net.connect("CP2")), "ANON-CP1", "CP1", "engine",
     "CP2", "UNKNOWN_DRIVER"),
    ("engine for a driver", lambda net: net.connect("CP1"), "alice", "CP1", "engine", "CP1", "UNKNOWN_DRIVER"),
]


@pytest.mark.parametrize("setup, driver, cp_id, kind, sender, reason",
                         [case[1:] for case in DENY_CASES], ids=[case[0] for case in DENY_CASES])
def test_every_deny_reason(net, setup, driver, cp_id, kind, sender, reason):
    setup(net)
    supplies_before = dict(net.repo.supplies)
    net.outlet.clear()
    answer = net.request(driver, cp_id, "r-deny", sender=sender, kind=kind)
    assert isinstance(answer, m.SupplyDenied)
    assert (answer.request_id, answer.cp_id, answer.reason) == ("r-deny", cp_id, reason)
    assert answer.message  # readable text
    assert [(s.how, s.kind, s.client_id) for s in net.outlet.sent] == [("to_client", kind, sender)]
    assert net.repo.supplies == supplies_before
    assert not net.outlet.of(m.AuthorizeSupply)


def test_deny_texts_come_from_the_reason_table(net):
    answer = net.request("alice", "CP9")
    assert answer.message == m.DENY_REASONS["CP_NOT_FOUND"]


# ---------------------------------------------------------------- authorize, idempotency
def test_authorize_tells_the_engine_reliably_and_the_driver(net):
    net.connect("CP1")
    answer = net.request("alice", "CP1", "r1")
    assert isinstance(answer, m.SupplyAuthorized)
    assert (answer.request_id, answer.cp_id, answer.driver_id, answer.price_eur_kwh) == ("r1", "CP1", "alice", "0.35")
    assert answer.expires_at == (T0 + timedelta(seconds=60)).isoformat(timespec="seconds")
    assert [(s.how, s.kind, s.client_id, s.message) for s in net.outlet.sent] == [
        ("to_client_reliable", "engine", "CP1",
         m.AuthorizeSupply(answer.supply_id, "CP1", "alice", "0.35", answer.expires_at)),
        ("to_client", "driver", "alice", answer)]
    assert net.repo.supplies[answer.supply_id]["phase"] == "AUTHORIZED"
    assert net.state("CP1") == "ACTIVADO"  # authorized, not yet supplying
    assert net.service.get("CP1")["supply"]["phase"] == "AUTHORIZED"


def test_same_request_id_twice_gives_the_same_answer_and_one_supply(net):
    net.connect("CP1")
    first = net.request("alice", "CP1", "r1")
    second = net.request("alice", "CP1", "r1")
    assert first == second and isinstance(first, m.SupplyAuthorized)
    assert len(net.repo.supplies) == 1
    assert len(net.outlet.of(m.AuthorizeSupply)) == 1
    assert net.outlet.messages(m.SupplyAuthorized, "driver", "alice") == [first, first]


def test_same_denied_request_twice_is_denied_the_same_way(net):
    first = net.request("alice", "CP1", "r1")
    net.connect("CP1")
    assert net.request("alice", "CP1", "r1") == first and first.reason == "DISCONNECTED"


@pytest.mark.parametrize("age_s, answered", [(0, True), (29, True), (31, False)])
def test_stale_requests_are_dropped(net, age_s, answered):
    net.connect("CP1")
    net.outlet.clear()
    sent_at = (T0 - timedelta(seconds=age_s)).isoformat()
    answer = net.request("alice", "CP1", sent_at=sent_at)
    assert (answer is not None) is answered
    assert bool(net.outlet.sent) is answered


def test_bad_sent_at_is_a_message_error(net):
    with pytest.raises(m.MessageError):
        net.request("alice", "CP1", sent_at="yesterday")


# ---------------------------------------------------------------- a whole supply
def test_started_telemetry_finished_gives_exactly_one_ticket(net):
    supply_id = net.authorize().supply_id
    started = m.SupplyStarted(supply_id, "CP1", T0.isoformat())
    net.service.supply_started(started)
    assert net.state("CP1") == "SUMINISTRANDO"
    assert net.repo.supplies[supply_id]["phase"] == "CHARGING"
    assert net.outlet.messages(m.SupplyStarted, "driver", "alice") == [started]

    telemetry = m.Telemetry(supply_id, "CP1", "22", "3.667", "1.28", 10)
    net.service.telemetry(telemetry)
    assert net.outlet.messages(m.Telemetry, "driver", "alice") == [telemetry]
    live = net.service.get("CP1")["supply"]
    assert (live["power_kw"], live["energy_kwh"], live["amount_eur"]) == ("22", "3.667", "1.28")
    assert net.service.live_figures() == [(Decimal("3.667"), Decimal("1.28"), supply_id)]

    net.finished(supply_id, kwh="10.5", seconds=600)
    assert len(net.repo.tickets) == 1
    ticket = net.tickets("driver", "alice")[0]
    assert ticket == m.TicketIssued(ticket.ticket_id, supply_id, "CP1", "alice", T0.isoformat(timespec="seconds"),
                                    (T0 + timedelta(seconds=600)).isoformat(timespec="seconds"), 600, "10.500",
                                    "0.35", "3.68", "UNPLUGGED")
    assert net.repo.supplies[supply_id]["phase"] == "FINISHED"
    assert net.state("CP1") == "ACTIVADO" and net.service.get("CP1")["supply"] is None
    assert net.service.live_figures() == []


def test_the_same_final_record_again_resends_the_same_ticket(net):
    supply_id = net.charging()
    record = net.finished(supply_id)
    net.service.supply_finished(record)
    net.service.supply_finished(record)
    assert len(net.repo.tickets) == 1
    tickets = net.tickets("driver", "alice")
    assert len(tickets) == 3 and len({t.ticket_id for t in tickets}) == 1


def test_final_record_never_reports_less_energy_than_the_telemetry(net):
    supply_id = net.charging()
    net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", "5.000", "1.75", 1))
    net.finished(supply_id, kwh="4.000")
    assert net.tickets()[0].energy_kwh == "5.000"


def test_unknown_end_reason_is_recorded_as_unplugged(net):
    supply_id = net.charging()
    net.finished(supply_id, reason="SOMETHING_ELSE")
    assert net.tickets()[0].reason == "UNPLUGGED"


def test_supply_started_twice_is_forwarded_once(net):
    supply_id = net.authorize().supply_id
    net.start(supply_id)
    net.start(supply_id)
    assert len(net.outlet.of(m.SupplyStarted)) == 1


@pytest.mark.parametrize("figures", [("abc", "1"), ("22", "NaN"), ("22", "Infinity")])
def test_telemetry_with_bad_figures_is_a_message_error(net, figures):
    supply_id = net.charging()
    with pytest.raises(m.MessageError):
        net.service.telemetry(m.Telemetry(supply_id, "CP1", figures[0], figures[1], "0", 1))


def test_telemetry_for_an_unknown_or_authorized_supply_is_ignored(net):
    supply_id = net.authorize().supply_id
    net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", "1", "0.35", 1))
    net.service.telemetry(m.Telemetry("nope", "CP1", "22", "1", "0.35", 1))
    assert not net.outlet.of(m.Telemetry)


def test_final_record_of_an_unknown_supply_is_dropped(net):
    net.finished("nope")
    assert not net.repo.tickets and not net.tickets()


def test_final_record_without_plug_closes_the_authorization(net):
    supply_id = net.authorize().supply_id
    net.service.supply_finished(m.SupplyFinished(supply_id, "CP1", None, T0.isoformat(), "0", "0", "MONITOR_LOST"))
    ticket = net.tickets()[0]
    assert (ticket.reason, ticket.energy_kwh, ticket.duration_s) == ("MONITOR_LOST", "0.000", 0)
    assert net.state("CP1") == "ACTIVADO"


# ---------------------------------------------------------------- expiry and operator commands
def test_authorization_expires_with_a_ticket_and_frees_the_cp(net):
    supply_id = net.authorize().supply_id
    net.clock.advance(59)
    net.service.expire_authorizations()
    assert not net.tickets() and net.service.get("CP1")["supply"] is not None
    net.clock.advance(2)
    net.service.expire_authorizations()
    assert net.outlet.messages(m.CancelAuthorization, "engine", "CP1") == [
        m.CancelAuthorization(supply_id, "AUTH_EXPIRED")]
    assert net.outlet.of(m.CancelAuthorization)[0].how == "to_client_reliable"
    ticket = net.tickets("driver", "alice")[0]
    assert (ticket.reason, ticket.energy_kwh, ticket.amount_eur) == ("AUTH_EXPIRED", "0.000", "0.00")
    assert net.service.get("CP1")["supply"] is None and net.state("CP1") == "ACTIVADO"
    assert isinstance(net.request("bob", "CP1"), m.SupplyAuthorized)


def test_a_charging_supply_never_expires(net):
    net.charging()
    net.clock.advance(3600)
    net.service.expire_authorizations()
    assert not net.tickets() and net.state("CP1") == "SUMINISTRANDO"
    assert net.service.get("CP1")["supply"]["phase"] == "CHARGING"


def test_operator_stop_while_authorized_cancels_with_a_ticket(net):
    supply_id = net.authorize().supply_id
    net.service.stop_cp("CP1")
    assert net.outlet.messages(m.CancelAuthorization, "engine", "CP1") == [
        m.CancelAuthorization(supply_id, "STOPPED_BY_OPERATOR")]
    assert net.tickets("driver", "alice")[0].reason == "STOPPED_BY_OPERATOR"
    assert net.state("CP1") == "PARADO"
    assert net.service.get("CP1")["caption"] == "Out of Order (OPERATOR)"
    assert net.repo.cps["CP1"]["out_of_service"] == ["OPERATOR"]


def test_operator_stop_while_charging_stops_the_engine_then_the_final_record_gives_the_ticket(net):
    supply_id = net.charging()
    net.service.stop_cp("CP1")
    stops = net.outlet.of(m.StopSupply)
    assert [(s.how, s.kind, s.client_id, s.message) for s in stops] == [
        ("to_client_reliable", "engine", "CP1", m.StopSupply(supply_id, "STOPPED_BY_OPERATOR"))]
    assert not net.tickets()
    net.finished(supply_id, kwh="2", reason="STOPPED_BY_OPERATOR")
    assert [t.reason for t in net.tickets("driver", "alice")] == ["STOPPED_BY_OPERATOR"]
    assert net.state("CP1") == "PARADO" and net.service.get("CP1")["supply"] is None


def test_resume_clears_only_the_operator_reason(net):
    _weather_and_operator(net)
    net.service.resume_cp("CP1")
    assert net.service.get("CP1")["out_of_service"] == ["WEATHER"]
    assert net.state("CP1") == "PARADO"
    assert net.repo.cps["CP1"]["out_of_service"] == ["WEATHER"]
    net.service.set_reason("CP1", "WEATHER", False, "weather")
    assert net.state("CP1") == "ACTIVADO"


@pytest.mark.parametrize("command", ["stop_cp", "resume_cp"])
def test_commands_on_an_unknown_cp_raise_key_error(net, command):
    with pytest.raises(KeyError):
        getattr(net.service, command)("CP9")
    assert "CP9" not in net.service.cps


def test_engine_ko_while_charging_tells_the_driver_and_stops_the_supply(net):
    supply_id = net.charging()
    net.outlet.clear()
    net.status("CP1", False)
    assert net.state("CP1") == "AVERIADO"
    notices = net.outlet.messages(m.Notice, "driver", "alice")
    assert len(notices) == 1 and notices[0].level == "error" and "CP1" in notices[0].text
    assert [(s.how, s.message) for s in net.outlet.of(m.StopSupply, "engine", "CP1")] == [
        ("to_client_reliable", m.StopSupply(supply_id, "ENGINE_FAULT"))]
    net.finished(supply_id, kwh="1.2", reason="ENGINE_FAULT")
    assert net.tickets()[0].reason == "ENGINE_FAULT" and net.tickets()[0].energy_kwh == "1.200"
    net.status("CP1", True)
    assert net.state("CP1") == "ACTIVADO"


def test_engine_ko_while_authorized_cancels_with_a_ticket(net):
    supply_id = net.authorize().supply_id
    net.status("CP1", False)
    assert net.outlet.messages(m.CancelAuthorization) == [m.CancelAuthorization(supply_id, "ENGINE_FAULT")]
    assert net.tickets()[0].reason == "ENGINE_FAULT"


# ---------------------------------------------------------------- driver stop and tickets
def test_driver_stops_its_own_supply(net):
    supply_id = net.charging()
    net.service.driver_stop("alice", m.StopSupply(supply_id, "DRIVER_STOP"))
    assert net.outlet.messages(m.StopSupply, "engine", "CP1") == [m.StopSupply(supply_id, "DRIVER_STOP")]


def test_driver_cannot_stop_another_drivers_supply(net):
    supply_id = net.charging()
    net.service.driver_stop("bob", m.StopSupply(supply_id, "DRIVER_STOP"))
    assert not net.outlet.of(m.StopSupply)
    assert [e.code for e in net.outlet.messages(m.Error, "driver", "bob")] == ["NO_SUPPLY"]


def test_ack_ticket_only_from_its_owner(net):
    supply_id = net.charging()
    net.finished(supply_id)
    ticket = net.tickets()[0]
    net.service.ack_ticket("bob", m.AckTicket(ticket.ticket_id))
    assert ticket.ticket_id in net.service.unacked
    assert net.repo.tickets[supply_id]["acked_at"] is None
    net.service.ack_ticket("alice", m.AckTicket(ticket.ticket_id))
    assert ticket.ticket_id not in net.service.unacked
    assert net.repo.tickets[supply_id]["acked_at"] is not None
    net.service.ack_ticket("alice", m.AckTicket(ticket.ticket_id))  # again: harmless


def test_the_cps_engine_cannot_ack_a_drivers_ticket(net):
    net.finished(net.charging())
    ticket = net.tickets()[0]
    net.service.ack_ticket("CP1", m.AckTicket(ticket.ticket_id))
    assert ticket.ticket_id in net.service.unacked


def test_resend_tickets_all_or_one_clients(net):
    net.finished(net.charging("alice", "CP1"), cp_id="CP1")
    net.finished(net.charging("bob", "CP2"), cp_id="CP2")
    net.outlet.clear()
    net.service.resend_tickets()
    assert sorted(s.client_id for s in net.outlet.of(m.TicketIssued)) == ["alice", "bob"]
    net.outlet.clear()
    net.service.resend_tickets("bob")
    assert [s.client_id for s in net.outlet.of(m.TicketIssued)] == ["bob"]
    net.service.ack_ticket("bob", m.AckTicket(net.tickets("driver", "bob")[0].ticket_id))
    net.outlet.clear()
    net.service.resend_tickets()
    assert [s.client_id for s in net.outlet.of(m.TicketIssued)] == ["alice"]


def test_hello_resends_the_clients_tickets(net):
    net.finished(net.charging())
    net.outlet.clear()
    net.service.hello("driver", "alice", m.Hello("alice", "driver"))
    assert [s.client_id for s in net.outlet.of(m.TicketIssued)] == ["alice"]


@pytest.mark.parametrize("engine_knows, resent", [(False, 1), (True, 0)])
def test_engine_hello_resends_a_pending_authorization(net, engine_knows, resent):
    supply_id = net.authorize().supply_id
    net.outlet.clear()
    net.service.hello("engine", "CP1", m.Hello("CP1", "engine", supply_id if engine_knows else None))
    assert len(net.outlet.of(m.AuthorizeSupply, "engine", "CP1")) == resent


def test_anonymous_supply_goes_to_the_engine(net):
    net.connect("CP1")
    answer = net.request("ANON-CP1", "CP1", "r1", sender="CP1", kind="engine")
    assert isinstance(answer, m.SupplyAuthorized)
    assert [(s.kind, s.client_id) for s in net.outlet.of(m.SupplyAuthorized)] == [("engine", "CP1")]
    net.start(answer.supply_id)
    assert [(s.kind, s.client_id) for s in net.outlet.of(m.SupplyStarted)] == [("engine", "CP1")]
    net.finished(answer.supply_id)
    assert [(s.kind, s.client_id) for s in net.outlet.of(m.TicketIssued)] == [("engine", "CP1")]
    ticket = net.tickets()[0]
    assert ticket.driver_id == "ANON-CP1"
    net.service.ack_ticket("CP1", m.AckTicket(ticket.ticket_id))
    assert not net.service.unacked


def test_anonymous_supply_does_not_need_a_registered_driver(monkeypatch):
    net = Net(monkeypatch, drivers=())
    assert isinstance(net.authorize("ANON-CP1", "CP1"), m.SupplyAuthorized)


# ---------------------------------------------------------------- events fail alone (STYLE habit 7)
def test_a_failing_change_listener_does_not_break_the_command(monkeypatch, caplog):
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("socket.io push failed")

    net = Net(monkeypatch, on_change=broken)
    supply_id = net.charging()
    net.finished(supply_id)
    net.service.stop_cp("CP2")
    assert len(net.repo.tickets) == 1 and len(net.tickets("driver", "alice")) == 1
    assert net.state("CP2") == "DESCONECTADO" and net.service.get("CP2")["out_of_service"] == ["OPERATOR"]
    assert len(calls) >= 5
    assert "change listener failed" in caplog.text


def test_a_failing_audit_store_does_not_break_the_command(net, caplog):
    net.repo.fail_audit = True
    supply_id = net.charging()
    net.finished(supply_id)
    assert len(net.tickets()) == 1
    assert "could not store audit record" in caplog.text


def test_changes_are_announced(net):
    before = net.changes
    net.connect("CP1")
    assert net.changes > before
    before = net.changes
    net.status("CP1", True)  # nothing changed
    assert net.changes == before


def test_zones_and_ids(monkeypatch):
    net = Net(monkeypatch, cps=[cp_row("CP1", zone="norte"), cp_row("CP2")])
    assert net.service.zones() == {"norte", "default"}
    assert net.service.cp_ids() == ["CP1", "CP2"] and net.service.engine_ids() == {"CP1", "CP2"}
