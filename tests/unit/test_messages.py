"""Kafka envelope and message types (SPEC §7, common/messages.py)."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import messages as m

FUZZ = settings(max_examples=200, deadline=None, database=None)

# One example per message type, with every field set (optional ones too).
EXAMPLES: list[m.Message] = [
    m.SelectChannel(client_id="driver-7", kind="driver"),
    m.ChannelAssigned(client_id="driver-7", channel=3, partition=2, lease_s=600),
    m.Hello(client_id="CP001", kind="engine", supply_id="sup-1"),
    m.Welcome(client_id="CP001"),
    m.Ack(ref="0f" * 16),
    m.Error(code="UNKNOWN_TYPE", message="unknown type Foo", ref="abc"),
    m.RequestSupply(cp_id="CP001", driver_id="driver-7", request_id="req-1"),
    m.SupplyDenied(request_id="req-1", cp_id="CP001", reason="BUSY", message="Charging point is busy"),
    m.SupplyAuthorized(request_id="req-1", supply_id="sup-1", cp_id="CP001", driver_id="driver-7",
                       price_eur_kwh="0.35", expires_at="2025-01-01T10:01:00.000+00:00"),
    m.AuthorizeSupply(supply_id="sup-1", cp_id="CP001", driver_id="driver-7", price_eur_kwh="0.35",
                      expires_at="2025-01-01T10:01:00.000+00:00"),
    m.CancelAuthorization(supply_id="sup-1", reason="AUTH_EXPIRED"),
    m.StopSupply(supply_id="sup-1", reason="DRIVER_STOP"),
    m.SupplyStarted(supply_id="sup-1", cp_id="CP001", started_at="2025-01-01T10:00:30.000+00:00"),
    m.Telemetry(supply_id="sup-1", cp_id="CP001", power_kw="22.0", energy_kwh="1.234", amount_eur="0.43", seq=17),
    m.SupplyFinished(supply_id="sup-1", cp_id="CP001", started_at="2025-01-01T10:00:30.000+00:00",
                     ended_at="2025-01-01T10:30:30.000+00:00", energy_kwh="11.000", amount_eur="3.85",
                     reason="UNPLUGGED"),
    m.TicketIssued(ticket_id="t-1", supply_id="sup-1", cp_id="CP001", driver_id="driver-7",
                   started_at="2025-01-01T10:00:30.000+00:00", ended_at="2025-01-01T10:30:30.000+00:00",
                   duration_s=1800, energy_kwh="11.000", price_eur_kwh="0.35", amount_eur="3.85",
                   reason="UNPLUGGED"),
    m.AckTicket(ticket_id="t-1"),
    m.Notice(text="CP001 faulted during your supply", level="warning"),
    m.NetworkStatus(cps=[{"cp_id": "CP001", "state": "ACTIVADO"}, {"cp_id": "CP002", "state": "PARADO"}]),
    m.RegisterDriver(driver_id="driver-7", password="s3cret!"),
    m.LoginDriver(driver_id="driver-7", password="s3cret!"),
    m.AccountResult(driver_id="driver-7", ok=False, code="BAD_CREDENTIALS", message="Conductor o contraseña incorrectos"),
    m.QueryHistory(driver_id="driver-7"),
    m.CpStatus(cp_id="CP001", state="PARADO", caption="Out of Order (WEATHER)", out_of_service=["WEATHER"]),
    m.SupplyHistory(driver_id="driver-7", supplies=[{"supply_id": "sup-1"}], last_ticket={"ticket_id": "t-1"}),
]
# Variants with optional fields left out / None.
OPTIONAL_VARIANTS: list[m.Message] = [
    m.Hello(client_id="driver-7", kind="driver"),
    m.Error(code="BAD_MESSAGE", message="x"),
    m.Telemetry(supply_id="s", cp_id="CP001", power_kw="0", energy_kwh="0", amount_eur="0"),
    m.SupplyFinished(supply_id="s", cp_id="CP001", started_at=None, ended_at="e", energy_kwh="0",
                     amount_eur="0", reason="AUTH_EXPIRED"),
    m.TicketIssued(ticket_id="t", supply_id="s", cp_id="c", driver_id="d", started_at=None, ended_at="e",
                   duration_s=0, energy_kwh="0", price_eur_kwh="0.35", amount_eur="0", reason="AUTH_EXPIRED"),
    m.Notice(text="hola, ¿qué tal? €"),
    m.NetworkStatus(),
]


def test_every_message_type_has_an_example():
    assert {type(e) for e in EXAMPLES} == set(m.MESSAGE_TYPES.values())
    assert len(EXAMPLES) == len(m.MESSAGE_TYPES)


def test_type_names_are_class_names():
    for name, cls in m.MESSAGE_TYPES.items():
        assert name == cls.__name__ == cls.type_name()
        assert issubclass(cls, m.Message) and dataclasses.is_dataclass(cls)


@pytest.mark.parametrize("message", EXAMPLES + OPTIONAL_VARIANTS, ids=lambda e: type(e).__name__)
def test_round_trip(message):
    raw = m.encode(message, sender="CP001", msg_id="id-42")
    envelope = m.decode(raw)
    assert envelope.message == message
    assert type(envelope.message) is type(message)
    assert (envelope.id, envelope.sender) == ("id-42", "CP001")
    assert datetime.fromisoformat(envelope.ts).tzinfo is not None


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_envelope_shape_uses_field_names_as_json_keys(message):
    data = json.loads(m.encode(message, sender="central"))
    assert list(data) == ["v", "type", "id", "ts", "sender", "payload"]
    assert data["v"] == m.ENVELOPE_VERSION and data["type"] == type(message).__name__
    assert list(data["payload"]) == [f.name for f in dataclasses.fields(message)]
    assert re.fullmatch(r"[0-9a-f]{32}", data["id"])


def test_fresh_ids_differ_and_explicit_ts_is_kept():
    one, two = (json.loads(m.encode(m.Ack(ref="r"), "s"))["id"] for _ in range(2))
    assert one != two
    envelope = m.decode(m.encode(m.Ack(ref="r"), "s", msg_id="x", ts="2025-01-01T00:00:00.000+00:00"))
    assert envelope.ts == "2025-01-01T00:00:00.000+00:00"


def test_unknown_payload_keys_are_ignored():
    raw = _envelope("Ack", {"ref": "r", "added_in_v2": 1})
    assert m.decode(raw).message == m.Ack(ref="r")


# ---------------------------------------------------------------- bad input
def _envelope(type_name="Ack", payload=None, **overrides) -> bytes:
    data = {"v": 1, "type": type_name, "id": "i", "ts": "t", "sender": "s",
            "payload": {"ref": "r"} if payload is None else payload}
    data.update(overrides)
    for key in [k for k, v in data.items() if v is _DROP]:
        del data[key]
    return json.dumps(data).encode()


_DROP = object()
_NESTED = b"[" * 20_000 + b"]" * 20_000

BAD = [
    ("not JSON", b"hello", m.InvalidJson),
    ("empty", b"", m.InvalidJson),
    ("truncated JSON", _envelope()[:-3], m.InvalidJson),
    ("invalid UTF-8", b'{"v": 1, "type": "\xff"}', m.InvalidJson),
    ("deeply nested", _NESTED, m.InvalidJson),
    ("array", b"[1, 2]", m.InvalidJson),
    ("string", b'"Ack"', m.InvalidJson),
    ("number", b"1", m.InvalidJson),
    ("null", b"null", m.InvalidJson),
    ("wrong version", _envelope(v=2), m.InvalidPayload),
    ("version as text", _envelope(v="1"), m.InvalidPayload),
    ("version true", _envelope(v=True), m.InvalidPayload),
    ("version float", _envelope(v=1.0), m.InvalidPayload),
    ("no version", _envelope(v=_DROP), m.InvalidPayload),
    ("unknown type", _envelope("LaunchRocket"), m.UnknownType),
    ("base class as type", _envelope("Message", {}), m.UnknownType),
    ("no type", _envelope(type=_DROP), m.InvalidPayload),
    ("type not text", _envelope(type=7), m.InvalidPayload),
    ("no payload", _envelope(payload=_DROP), m.InvalidPayload),
    ("payload is a list", _envelope(payload=["r"]), m.InvalidPayload),
    ("missing required field", _envelope("RequestSupply", {"cp_id": "CP001", "driver_id": "d"}), m.InvalidPayload),
    ("required field null", _envelope("RequestSupply", {"cp_id": None, "driver_id": "d", "request_id": "r"}),
     m.InvalidPayload),
    ("text field as number", _envelope("Ack", {"ref": 5}), m.InvalidPayload),
    ("text field as object", _envelope("Ack", {"ref": {"a": 1}}), m.InvalidPayload),
    ("int field as text", _envelope("ChannelAssigned", {"client_id": "c", "channel": "3", "partition": 0,
                                                        "lease_s": 600}), m.InvalidPayload),
    ("int field as bool", _envelope("ChannelAssigned", {"client_id": "c", "channel": True, "partition": 0,
                                                        "lease_s": 600}), m.InvalidPayload),
    ("int field as float", _envelope("Telemetry", {"supply_id": "s", "cp_id": "c", "power_kw": "1",
                                                   "energy_kwh": "1", "amount_eur": "1", "seq": 1.5}),
     m.InvalidPayload),
    ("list field as object", _envelope("NetworkStatus", {"cps": {"CP001": "ACTIVADO"}}), m.InvalidPayload),
    ("no id", _envelope(id=_DROP), m.InvalidPayload),
    ("empty id", _envelope(id=""), m.InvalidPayload),
    ("no ts", _envelope(ts=_DROP), m.InvalidPayload),
    ("sender not text", _envelope(sender=1), m.InvalidPayload),
    ("oversize", m.encode(m.Notice(text="x" * m.MAX_MESSAGE_BYTES), "s"), m.InvalidPayload),
]


@pytest.mark.parametrize("name, raw, error", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_the_right_message_error(name, raw, error):
    with pytest.raises(error) as info:
        m.decode(raw)
    assert type(info.value) is error
    assert str(info.value)


def test_size_limit_boundary():
    raw = m.encode(m.Ack(ref="r"), "s")
    assert m.decode(raw + b" " * (m.MAX_MESSAGE_BYTES - len(raw))).message == m.Ack(ref="r")
    with pytest.raises(m.InvalidPayload):
        m.decode(raw + b" " * (m.MAX_MESSAGE_BYTES - len(raw) + 1))


def test_message_error_codes():
    classes = [m.MessageError, *m.MessageError.__subclasses__()]
    assert {c.code for c in classes} == {"BAD_MESSAGE", "INVALID_JSON", "UNKNOWN_TYPE", "INVALID_PAYLOAD"}
    assert all(issubclass(c, m.MessageError) for c in classes)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@st.composite
def payloads(draw):
    cls = draw(st.sampled_from(sorted(m.MESSAGE_TYPES.values(), key=lambda c: c.__name__)))
    names = [f.name for f in dataclasses.fields(cls)]
    keys = draw(st.lists(st.sampled_from(names) | st.text(max_size=6), max_size=len(names) + 2))
    return cls, {k: draw(json_values) for k in keys}


@FUZZ
@given(payloads())
def test_fuzz_payloads_either_decode_to_typed_fields_or_raise_message_error(case):
    cls, payload = case
    try:
        message = m.decode(_envelope(cls.__name__, payload)).message
    except m.MessageError:
        return
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if value is None:
            assert "Optional" in str(f.type), f"{cls.__name__}.{f.name} accepted null"
        elif str(f.type) == "int":
            assert type(value) is int
        elif str(f.type) == "list":
            assert isinstance(value, list)
        elif str(f.type) == "bool":
            assert type(value) is bool
        elif "dict" in str(f.type):
            assert isinstance(value, dict)
        else:
            assert isinstance(value, str)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_only_raise_message_errors(raw):
    try:
        m.decode(raw)
    except m.MessageError:
        pass


# ---------------------------------------------------------------- tables
SPEC_DENY_REASONS = ["CP_NOT_FOUND", "DISCONNECTED", "FAULTY", "OUT_OF_ORDER", "BUSY", "WEATHER",
                     "DRIVER_BUSY", "UNKNOWN_DRIVER"]


@pytest.mark.parametrize("reason", SPEC_DENY_REASONS)
def test_every_spec_deny_reason_has_a_readable_text(reason):
    assert m.DENY_REASONS[reason].strip()


def test_end_reasons_cover_the_spec():
    assert {"UNPLUGGED", "DRIVER_STOP", "STOPPED_BY_OPERATOR", "ENGINE_FAULT", "MONITOR_LOST",
            "AUTH_EXPIRED", "KEYS_REVOKED"} <= set(m.END_REASONS)
    assert all(text.strip() for text in m.END_REASONS.values())


def test_reliable_messages():
    reliable = {name for name, cls in m.MESSAGE_TYPES.items() if cls.RELIABLE}
    # authorizations, stop commands, final records (SPEC §7); tickets use AckTicket instead of Ack
    assert reliable == {"AuthorizeSupply", "CancelAuthorization", "StopSupply", "SupplyStarted", "SupplyFinished"}
    assert {f.name for f in dataclasses.fields(m.AckTicket)} == {"ticket_id"}
    assert "ticket_id" in {f.name for f in dataclasses.fields(m.TicketIssued)}


# ---------------------------------------------------------------- topics
def test_topic_names():
    assert m.topic_select("default") == "evc.default.select"
    assert m.topic_select_reply("default") == "evc.default.select.reply"
    assert m.topic_req("north", 0) == "evc.north.ch0.req"
    assert m.topic_resp("north", 9) == "evc.north.ch9.resp"
    assert m.topic_status("zone-1") == "evc.zone-1.status"


def test_zone_topics_lists_every_topic_once():
    topics = m.zone_topics("z1")
    assert len(topics) == len(set(topics)) == 3 + 2 * m.CHANNELS
    assert {m.topic_req("z1", n) for n in range(m.CHANNELS)} <= set(topics)
    assert {m.topic_resp("z1", n) for n in range(m.CHANNELS)} <= set(topics)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", t) for t in topics)  # legal Kafka topic names


def test_central_topic_pattern_matches_only_what_central_reads():
    pattern = re.compile(m.CENTRAL_TOPIC_PATTERN)
    central_reads = {m.topic_select("z")} | {m.topic_req("z", n) for n in range(m.CHANNELS)}
    for topic in m.zone_topics("z"):
        assert bool(pattern.match(topic)) == (topic in central_reads), topic


@pytest.mark.parametrize("zone, ok", [("default", True), ("zone-1", True), ("Norte_2", True), ("a" * 40, True),
                                      ("", False), ("a.b", False), ("a b", False), ("a" * 41, False),
                                      ("zona/1", False)])
def test_zone_pattern(zone, ok):
    assert bool(m.ZONE_PATTERN.match(zone)) == ok


# ---------------------------------------------------------------- network status in parts
def test_status_messages_split_a_large_network_and_the_assembler_puts_it_back():
    cps = [{"cp_id": f"CP{i:05d}", "state": "ACTIVADO"} for i in range(2 * m.STATUS_CHUNK + 7)]
    parts = m.status_messages(cps, version=41)
    assert [len(p.cps) for p in parts] == [m.STATUS_CHUNK, m.STATUS_CHUNK, 7]
    assert all(len(m.encode(p, "CENTRAL")) < m.MAX_MESSAGE_BYTES for p in parts)
    assembler = m.StatusAssembler()
    assert assembler.add(parts[2]) is None and assembler.add(parts[0]) is None
    assert assembler.add(parts[1]) == cps


def test_status_assembler_drops_parts_of_an_older_version():
    cps = [{"cp_id": f"CP{i}"} for i in range(m.STATUS_CHUNK + 1)]
    old, new = m.status_messages(cps, 1), m.status_messages(cps[::-1], 2)
    assembler = m.StatusAssembler()
    assert assembler.add(old[0]) is None
    assert assembler.add(new[1]) is None
    assert assembler.add(new[0]) == cps[::-1]


def test_a_small_network_is_one_message_and_replaces_the_table_at_once():
    (only,) = m.status_messages([{"cp_id": "A"}], 3)
    assert (only.part, only.parts) == (0, 1)
    assert m.StatusAssembler().add(only) == [{"cp_id": "A"}]
    assert m.status_messages([], 4)[0].cps == []
