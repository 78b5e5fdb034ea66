"""KafkaRouter with a fake bus (no kafka import): dispatch table, Acks, Error replies, channel selection."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from common import messages as m
from EV_Central_Server.central.routing import KafkaRouter, sender_kind
from EV_Central_Server.central.service import CentralService
from fakes import T0, FakeClock, FakeRepository, RecordingOutlet, cp_row

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "CONTRACT-central.md"


class FakeOutbox:
    def __init__(self):
        self.acked: list[str] = []

    def ack(self, ref: str) -> None:
        self.acked.append(ref)


class FakeBus:
    """The parts of CentralBus the router uses: to_client, outbox.ack, ensure_zone, assign, answer_select."""

    def __init__(self):
        self.outbox = FakeOutbox()
        self.sent: list[tuple[str, str, m.Message]] = []
        self.zones: list[str] = []
        self.answered: list[tuple[str, object]] = []

    def to_client(self, kind: str, client_id: str, message: m.Message) -> None:
        self.sent.append((kind, client_id, message))

    def ensure_zone(self, zone: str) -> None:
        self.zones.append(zone)

    def assign(self, zone: str, req: m.SelectChannel):
        return SimpleNamespace(client_id=req.client_id, kind=req.kind, zone=zone, channel=3, partition=1,
                               expires_at=datetime.now(timezone.utc) + timedelta(minutes=10))

    def answer_select(self, zone: str, lease) -> None:
        self.answered.append((zone, lease))

    def of(self, message_type: type) -> list[tuple[str, str, m.Message]]:
        return [s for s in self.sent if isinstance(s[2], message_type)]


class SpyService:
    """Records which service method the router called, with what."""

    def __init__(self, engines=("CP1", "CP2")):
        self.calls: list[tuple] = []
        self.engines = set(engines)

    def engine_ids(self) -> set[str]:
        return self.engines

    def zones(self) -> set[str]:
        return {"default", "norte"}

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name, *args))
        return record


def env(message: m.Message, sender: str, msg_id: str = "e1", ts: str | None = None) -> m.Envelope:
    """An envelope as the Kafka edge decodes it (through the real codec)."""
    return m.decode(m.encode(message, sender, msg_id, ts))


@pytest.fixture
def spy():
    service, bus = SpyService(), FakeBus()
    return service, bus, KafkaRouter(service, bus)


# ---------------------------------------------------------------- the table
ROUTES = [
    # (message, sender, service method, expected args after the method name, sender kind)
    (m.RequestSupply("CP1", "alice", "r1"), "alice", "request_supply", ("driver", "alice"), "driver"),
    (m.RequestSupply("CP1", "ANON-CP1", "r1"), "CP1", "request_supply", ("engine", "CP1"), "engine"),
    (m.SupplyStarted("s1", "CP1", "2026-12-03T12:00:00+00:00"), "CP1", "supply_started", (), "engine"),
    (m.Telemetry("s1", "CP1", "22", "1.0", "0.35", 1), "CP1", "telemetry", (), "engine"),
    (m.SupplyFinished("s1", "CP1", None, "2026-12-03T12:00:00+00:00", "1", "0.35", "UNPLUGGED"), "CP1",
     "supply_finished", (), "engine"),
    (m.StopSupply("s1", "DRIVER_STOP"), "alice", "driver_stop", ("alice",), "driver"),
    (m.AckTicket("t1"), "alice", "ack_ticket", ("alice",), "driver"),
    (m.AckTicket("t1"), "CP1", "ack_ticket", ("CP1",), "engine"),
    (m.Hello("alice", "driver"), "alice", "hello", ("driver", "alice"), "driver"),
    (m.Hello("CP1", "engine", "s1"), "CP1", "hello", ("engine", "CP1"), "engine"),
]


@pytest.mark.parametrize("message, sender, method, args, kind", ROUTES,
                         ids=[f"{r[0].type_name()}-{r[1]}" for r in ROUTES])
def test_each_message_type_goes_to_its_handler(spy, message, sender, method, args, kind):
    service, bus, router = spy
    envelope = env(message, sender)
    router("channel", "default", envelope)
    assert len(service.calls) == 1
    name, *called = service.calls[0]
    assert name == method
    assert tuple(called[:len(args)]) == args
    assert message in called
    assert sender_kind(envelope, service.engine_ids()) == kind
    acks = bus.of(m.Ack)
    assert acks == ([(kind, sender, m.Ack("e1"))] if message.RELIABLE else [])
    assert not bus.of(m.Error)


def test_request_passes_the_envelope_timestamp_for_the_staleness_check(spy):
    service, _, router = spy
    router("channel", "default", env(m.RequestSupply("CP1", "alice", "r1"), "alice", ts="2026-12-03T12:00:00+00:00"))
    assert service.calls[0][-1] == "2026-12-03T12:00:00+00:00"


def test_hello_is_answered_with_welcome_before_the_service_runs(spy):
    service, bus, router = spy
    router("channel", "default", env(m.Hello("alice", "driver"), "alice"))
    assert bus.sent[0] == ("driver", "alice", m.Welcome("alice"))


def test_an_ack_goes_to_the_outbox_and_is_not_acked_back(spy):
    service, bus, router = spy
    router("channel", "default", env(m.Ack("msg-42"), "alice"))
    assert bus.outbox.acked == ["msg-42"] and not bus.sent and not service.calls


@pytest.mark.parametrize("message", [
    m.NetworkStatus([]), m.TicketIssued("t", "s", "CP1", "alice", None, "x", 0, "0", "0", "0", "UNPLUGGED"),
    m.Welcome("alice"), m.SupplyAuthorized("r", "s", "CP1", "alice", "0.35", "x"),
    m.AuthorizeSupply("s", "CP1", "alice", "0.35", "x"), m.Error("X", "y"), m.Notice("hi"),
    m.SelectChannel("alice", "driver"),
], ids=lambda msg: msg.type_name())
def test_a_type_central_does_not_handle_gets_an_error_reply(spy, message):
    service, bus, router = spy
    router("channel", "default", env(message, "alice", msg_id="bad1"))  # must not raise
    assert not service.calls
    assert len(bus.sent) == 1
    kind, client, error = bus.sent[0]
    assert (kind, client) == ("driver", "alice")
    assert (error.code, error.ref) == ("NOT_HANDLED", "bad1") and message.type_name() in error.message


def test_router_keeps_serving_after_an_unhandled_type(spy):
    service, bus, router = spy
    router("channel", "default", env(m.NetworkStatus([]), "alice"))
    router("channel", "default", env(m.RequestSupply("CP1", "alice", "r1"), "alice"))
    assert [c[0] for c in service.calls] == ["request_supply"]


# ---------------------------------------------------------------- channel selection
def test_select_for_a_zone_without_cps_creates_nothing(spy):
    _, bus, router = spy
    router("select", "made-up", env(m.SelectChannel("mallory", "driver"), "mallory"))
    assert bus.zones == [] and bus.answered == []


def test_select_assigns_and_answers(spy):
    _, bus, router = spy
    router("select", "norte", env(m.SelectChannel("alice", "driver"), "alice"))
    assert bus.zones == ["norte"]
    [(zone, lease)] = bus.answered
    assert (zone, lease.client_id, lease.kind, lease.zone) == ("norte", "alice", "driver", "norte")
    assert not bus.sent


@pytest.mark.parametrize("message, sender", [
    (m.SelectChannel("alice", "admin"), "alice"),        # unknown kind
    (m.SelectChannel("alice", "driver"), "mallory"),     # asks for someone else
    (m.RequestSupply("CP1", "alice", "r1"), "alice"),    # not a selection
])
def test_bad_selections_are_ignored(spy, message, sender):
    service, bus, router = spy
    router("select", "default", env(message, sender))
    assert not bus.answered and not bus.sent and not service.calls


# ---------------------------------------------------------------- every client message has a handler
def _client_types_in_contract() -> set[str]:
    """Message types the contract says a client (engine or driver) sends to CENTRAL, read from its sentences."""
    text = re.sub(r"\n\s+", " ", CONTRACT.read_text(encoding="utf-8"))  # join wrapped bullet lines
    found = set()
    for sentence in re.split(r"(?<=\.)\s", text):
        head = sentence.split(" `")[0]
        if re.search(r"(Anyone|Engine|driver) -> CENTRAL|sends `.*to CENTRAL|receiver answers `", sentence) \
                and "CENTRAL ->" not in head:
            found |= {name for name in re.findall(r"`([A-Z][A-Za-z]+)\(", sentence) if name in m.MESSAGE_TYPES}
    return found


CLIENT_TYPES = {m.SelectChannel, m.Hello, m.Ack, m.RequestSupply, m.SupplyStarted, m.Telemetry, m.SupplyFinished,
                m.StopSupply, m.AckTicket, m.RegisterDriver, m.LoginDriver, m.QueryHistory}


def test_the_contract_names_the_client_types_we_check():
    assert _client_types_in_contract() <= {cls.type_name() for cls in CLIENT_TYPES}
    assert {"RequestSupply", "SupplyStarted", "Telemetry", "SupplyFinished", "StopSupply",
            "AckTicket"} <= _client_types_in_contract()


def test_every_client_message_type_has_a_handler(spy):
    _, _, router = spy
    channel_types = CLIENT_TYPES - {m.SelectChannel}  # SelectChannel arrives on the select topic: on_select
    missing = [cls.type_name() for cls in channel_types if cls not in router.handlers]
    assert not missing, f"no handler for {missing}"
    assert set(router.handlers) == channel_types, "handlers for types no client sends"


# ---------------------------------------------------------------- with the real service
def test_a_whole_supply_through_the_router():
    clock = FakeClock()
    repo = FakeRepository([cp_row("CP1")], ["alice"], clock)
    outlet = RecordingOutlet()
    service = CentralService(repo, outlet, clock=clock)
    service.load()
    bus = FakeBus()
    router = KafkaRouter(service, bus)
    service.authenticate("CP1", "", token := object())
    service.monitor_status("CP1", True, token)

    router("channel", "default", env(m.RequestSupply("CP1", "alice", "r1"), "alice", ts=T0.isoformat()))
    [answer] = outlet.messages(m.SupplyAuthorized, "driver", "alice")
    router("channel", "default", env(m.SupplyStarted(answer.supply_id, "CP1", T0.isoformat()), "CP1", "e2"))
    record = m.SupplyFinished(answer.supply_id, "CP1", T0.isoformat(), (T0 + timedelta(minutes=5)).isoformat(),
                              "1.834", "0.64", "UNPLUGGED")
    router("channel", "default", env(record, "CP1", "e3"))
    router("channel", "default", env(record, "CP1", "e4"))  # re-sent: Ack again, no second ticket
    assert len(repo.tickets) == 1
    tickets = outlet.messages(m.TicketIssued, "driver", "alice")
    assert len({t.ticket_id for t in tickets}) == 1 and tickets[0].amount_eur == "0.64"
    assert [s[2].ref for s in bus.of(m.Ack)] == ["e2", "e3", "e4"]
    router("channel", "default", env(m.AckTicket(tickets[0].ticket_id), "alice", "e5"))
    assert not service.unacked
