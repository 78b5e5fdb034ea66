"""What a tester found: forged reports, absurd figures and a failed write must never change a bill or stick a CP."""
from __future__ import annotations

from datetime import timedelta

import pytest

from common import messages as m
from EV_Central_Server.central.routing import KafkaRouter
from fakes import T0
from test_central_service import Net


@pytest.fixture
def net(monkeypatch) -> Net:
    return Net(monkeypatch)


def test_a_report_naming_another_cp_is_refused_and_audited(net):
    supply_id = net.charging("alice", "CP1")
    with pytest.raises(m.InvalidPayload):
        net.service.telemetry(m.Telemetry(supply_id, "CP2", "22", "500", "0", 1))
    with pytest.raises(m.InvalidPayload):
        net.service.supply_finished(m.SupplyFinished(supply_id, "CP2", None, T0.isoformat(), "0", "0", "WEATHER"))
    assert net.service.get("CP1")["supply"]["energy_kwh"] == "0.000"
    assert not net.tickets()
    assert any(a["category"] == "SECURITY" for a in net.repo.audit_log)


class _Bus:
    def __init__(self):
        self.sent = []

    def to_client(self, kind, client_id, message, msg_id=None):
        self.sent.append((kind, client_id, message))


def test_the_router_drops_engine_reports_whose_sender_is_not_the_cp(net):
    supply_id = net.charging("alice", "CP1")
    router = KafkaRouter(net.service, _Bus())
    forged = m.Envelope("id1", T0.isoformat(), "EVIL", m.Telemetry(supply_id, "CP1", "22", "500", "0", 9))
    router("channel", "default", forged)
    assert net.service.get("CP1")["supply"]["energy_kwh"] == "0.000"
    genuine = m.Envelope("id2", T0.isoformat(), "CP1", m.Telemetry(supply_id, "CP1", "22", "1.5", "0", 10))
    router("channel", "default", genuine)
    assert net.service.get("CP1")["supply"]["energy_kwh"] == "1.500"


@pytest.mark.parametrize("kwh", ["99999999999", "-1", "NaN", "Infinity", "abc"])
def test_absurd_figures_are_refused_and_the_supply_closes_with_what_central_saw(net, kwh):
    supply_id = net.charging("alice", "CP1")
    net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", "2.5", "0", 1))
    with pytest.raises(m.InvalidPayload):
        net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", kwh, "0", 2))
    net.service.supply_finished(m.SupplyFinished(supply_id, "CP1", None, T0.isoformat(), kwh, "0", "UNPLUGGED"))
    assert [t.energy_kwh for t in net.tickets()] == ["2.500"]
    assert any(a["action"] == "bad_final_record" for a in net.repo.audit_log)


def test_a_refused_reliable_message_is_acknowledged_with_an_error(net):
    supply_id = net.charging("alice", "CP1")
    bus = _Bus()
    router = KafkaRouter(net.service, bus)
    router("channel", "default", m.Envelope("e9", T0.isoformat(), "CP2", m.SupplyStarted(supply_id, "CP2", None)))
    sent = [msg for _, _, msg in bus.sent]
    assert any(isinstance(x, m.Error) for x in sent) and any(isinstance(x, m.Ack) and x.ref == "e9" for x in sent)


def test_an_end_before_the_start_is_clamped_to_the_start(net):
    supply_id = net.charging("alice", "CP1")
    early = (T0 - timedelta(hours=5)).isoformat()
    net.service.supply_finished(m.SupplyFinished(supply_id, "CP1", T0.isoformat(), early, "1", "0", "UNPLUGGED"))
    (ticket,) = net.tickets()
    assert ticket.duration_s == 0 and ticket.ended_at >= ticket.started_at


def test_a_failed_ticket_write_leaves_the_supply_open_and_a_resend_closes_it(net, monkeypatch):
    supply_id = net.charging("alice", "CP1")
    real = net.repo.finish_supply

    def broken(*args, **kwargs):
        raise RuntimeError("database refused the write")

    monkeypatch.setattr(net.repo, "finish_supply", broken)
    with pytest.raises(RuntimeError):
        net.finished(supply_id, kwh="3")
    assert net.state("CP1") == "SUMINISTRANDO" and not net.tickets()
    monkeypatch.setattr(net.repo, "finish_supply", real)
    net.finished(supply_id, kwh="3")  # the engine re-sends its final record until acknowledged
    assert [t.energy_kwh for t in net.tickets()] == ["3.000"] and net.state("CP1") == "ACTIVADO"


def test_the_engine_is_told_its_out_of_service_reasons_on_change_and_after_hello(net):
    net.connect("CP1")
    net.service.stop_cp("CP1")
    (status,) = net.outlet.messages(m.CpStatus, "engine", "CP1")
    assert (status.state, status.out_of_service) == ("PARADO", ["OPERATOR"]) and "Out of Order" in status.caption
    net.service.hello("engine", "CP1", m.Hello("CP1", "engine"))
    net.service.resume_cp("CP1")
    assert [s.out_of_service for s in net.outlet.messages(m.CpStatus, "engine", "CP1")] == [["OPERATOR"], ["OPERATOR"], []]


def test_passwords_never_show_in_a_message_repr():
    assert "s3cret" not in repr(m.LoginDriver("alice", "s3cret", "r1"))
    assert "s3cret" not in repr(m.RegisterDriver("alice", "s3cret", "r1"))


def test_an_account_answer_names_the_request_it_answers(net):
    bus = _Bus()
    router = KafkaRouter(net.service, bus)
    router("channel", "default", m.Envelope("e1", T0.isoformat(), "web", m.RegisterDriver("carol", "good password", "req-A")))
    router("channel", "default", m.Envelope("e2", T0.isoformat(), "web", m.LoginDriver("carol", "wrong password", "req-B")))
    answers = [msg for _, _, msg in bus.sent if isinstance(msg, m.AccountResult)]
    assert [(a.request_id, a.ok) for a in answers] == [("req-A", True), ("req-B", False)]


def test_after_a_restart_expiry_waits_for_the_engines_buffered_reports(monkeypatch):
    first = Net(monkeypatch)
    supply_id = first.authorize("alice", "CP1").supply_id
    restarted = Net(monkeypatch)
    restarted.repo, restarted.clock = first.repo, first.clock  # the same database and time
    restarted.service = type(first.service)(first.repo, restarted.outlet, clock=first.clock, auth_timeout_s=60)
    restarted.service.load()
    first.clock.advance(61)  # past expires_at, but within the grace after the restart
    restarted.service.expire_authorizations()
    restarted.service.supply_started(m.SupplyStarted(supply_id, "CP1", T0.isoformat()))
    assert restarted.service.get("CP1")["supply"]["phase"] == "CHARGING"
    first.clock.advance(31)
    restarted.service.expire_authorizations()
    assert restarted.service.get("CP1")["supply"]["phase"] == "CHARGING"  # plugged: never expires


def test_a_charging_supply_its_engine_forgot_is_closed_with_the_last_figures(net):
    supply_id = net.charging("alice", "CP1")
    net.service.telemetry(m.Telemetry(supply_id, "CP1", "22", "4.2", "0", 1))
    net.service.hello("engine", "CP1", m.Hello("CP1", "engine", None))
    net.clock.advance(29)
    net.service.expire_authorizations()
    assert not net.tickets()
    net.clock.advance(2)
    net.service.expire_authorizations()
    (ticket,) = net.tickets()
    assert (ticket.energy_kwh, ticket.reason) == ("4.200", "ENGINE_LOST")


def test_a_driver_may_not_take_a_cp_id(net):
    result = net.service.register_driver("CP1", m.RegisterDriver("CP1", "long enough"))
    assert not result.ok


def test_a_finished_supply_is_forgotten_by_the_outbox(net):
    supply_id = net.charging("alice", "CP1")
    net.finished(supply_id)
    assert net.outlet.forgotten == [supply_id]


def test_a_bad_frame_is_logged_without_its_fields():
    from common import protocol as p
    raw = p.encode(p.frame("AUTH", "ALC1", "the-secret"))[:-1] + b"\x00"
    reader = p.FrameReader()
    reader.feed(raw)
    (bad,) = list(reader)
    text = p.describe(bad)
    assert "the-secret" not in text and "AUTH" in text and "BAD_LRC" in text


def test_a_supply_authorized_after_the_start_expires_on_time(monkeypatch):
    net = Net(monkeypatch)  # just started: the restart grace covers only supplies that were open before
    net.authorize("alice", "CP1")
    net.clock.advance(61)
    net.service.expire_authorizations()
    assert [t.reason for t in net.tickets()] == ["AUTH_EXPIRED"]
