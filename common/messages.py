"""Kafka wire format: the typed JSON envelope and every message type (SPEC §7).

Every Kafka message is ``{"v", "type", "id", "ts", "sender", "payload"}``. The
``type`` is the dataclass name and the payload keys are its field names, so
nothing is renamed between Python and JSON. Decoding happens once, at the edge,
with :func:`decode`; handlers only ever see dataclasses.

Topics per zone (``topic_*`` helpers below):
``evc.<zone>.select`` / ``.select.reply`` to negotiate a channel,
``evc.<zone>.ch<N>.req`` / ``.resp`` for all further traffic of a client, and
``evc.<zone>.status`` for the network status drivers see.

Messages that must not be lost (``RELIABLE``) are re-sent until the receiver
answers ``Ack(ref=<message id>)``; receivers handle them idempotently.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Optional

from common.domain import ZONE_PATTERN as ZONE_RULE

ENVELOPE_VERSION = 1
CHANNELS = 10
RESP_PARTITIONS = 3
DEFAULT_ZONE = "default"
MAX_MESSAGE_BYTES = 64 * 1024
ZONE_PATTERN = ZONE_RULE  # the one rule lives in common.domain


def topic_select(zone: str) -> str:
    """Topic where clients ask CENTRAL for a channel."""
    return f"evc.{zone}.select"


def topic_select_reply(zone: str) -> str:
    """Topic where CENTRAL answers channel requests, keyed by client id."""
    return f"evc.{zone}.select.reply"


def topic_req(zone: str, channel: int) -> str:
    """Client -> CENTRAL traffic of a channel."""
    return f"evc.{zone}.ch{channel}.req"


def topic_resp(zone: str, channel: int) -> str:
    """CENTRAL -> client traffic of a channel."""
    return f"evc.{zone}.ch{channel}.resp"


def topic_status(zone: str) -> str:
    """Network status (every CP and its state) for drivers."""
    return f"evc.{zone}.status"


CENTRAL_TOPIC_PATTERN = r"^evc\.[A-Za-z0-9_-]+\.(select|ch[0-9]\.req)$"


def zone_topics(zone: str) -> list[str]:
    """Every topic of a zone (for creating them up front)."""
    topics = [topic_select(zone), topic_select_reply(zone), topic_status(zone)]
    for n in range(CHANNELS):
        topics += [topic_req(zone, n), topic_resp(zone, n)]
    return topics


class MessageError(Exception):
    """A message that cannot be accepted (peer's fault): logged and dropped, or answered with Error."""

    code = "BAD_MESSAGE"


class InvalidJson(MessageError):
    code = "INVALID_JSON"


class UnknownType(MessageError):
    code = "UNKNOWN_TYPE"


class InvalidPayload(MessageError):
    code = "INVALID_PAYLOAD"


# ---- deny reasons (SPEC §4 step 5), with the readable text every screen shows ----
DENY_REASONS: dict[str, str] = {
    "CP_NOT_FOUND": "Charging point not found",
    "DISCONNECTED": "Charging point is disconnected",
    "FAULTY": "Charging point is faulty",
    "OUT_OF_ORDER": "Charging point is out of order",
    "BUSY": "Charging point is busy",
    "WEATHER": "Charging point is stopped by a weather alert",
    "DRIVER_BUSY": "Driver already has a supply in progress",
    "UNKNOWN_DRIVER": "Unknown driver",
    "CENTRAL_UNAVAILABLE": "Imposible conectar con la CENTRAL",
    "MONITOR_DOWN": "Charging point has no monitor",
}

# ---- how a supply ended, as printed on its ticket ----
END_REASONS: dict[str, str] = {
    "UNPLUGGED": "Vehicle unplugged",
    "DRIVER_STOP": "Stopped by the driver",
    "STOPPED_BY_OPERATOR": "Stopped by the operator",
    "ENGINE_FAULT": "Charging point fault",
    "MONITOR_LOST": "Charging point lost its monitor",
    "ENGINE_LOST": "Charging point engine went down",
    "AUTH_EXPIRED": "Authorization expired before plugging in",
    "KEYS_REVOKED": "Charging point keys revoked",
    "WEATHER": "Weather alert",
}


def now_iso() -> str:
    """Current UTC time as ISO-8601 text."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    """A fresh message / supply id."""
    return uuid.uuid4().hex


@dataclass
class Message:
    """Base of every message type; ``RELIABLE`` ones are re-sent until acknowledged."""

    RELIABLE: ClassVar[bool] = False

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


# ---------------------------------------------------------------- negotiation
@dataclass
class SelectChannel(Message):
    """Client asks CENTRAL for a channel (on ``select``)."""

    client_id: str
    kind: str  # "driver" | "engine"


@dataclass
class ChannelAssigned(Message):
    """CENTRAL's answer on ``select.reply``: the channel, the partition to read, and the lease."""

    client_id: str
    channel: int
    partition: int
    lease_s: int


@dataclass
class Hello(Message):
    """Handshake on the channel; an engine also says which supply it is running, if any."""

    client_id: str
    kind: str
    supply_id: Optional[str] = None


@dataclass
class Welcome(Message):
    """CENTRAL's handshake answer: the channel works both ways."""

    client_id: str


@dataclass
class Ack(Message):
    """Acknowledges a reliable message by its envelope id."""

    ref: str


@dataclass
class Error(Message):
    """Readable error answer for a message that could not be handled."""

    code: str
    message: str
    ref: Optional[str] = None


# ---------------------------------------------------------------- supplies
@dataclass
class RequestSupply(Message):
    """A driver (or a person at the CP: anonymous) asks to charge at a CP."""

    cp_id: str
    driver_id: str
    request_id: str


@dataclass
class SupplyDenied(Message):
    """CENTRAL refuses a request, with a reason from DENY_REASONS."""

    request_id: str
    cp_id: str
    reason: str
    message: str


@dataclass
class SupplyAuthorized(Message):
    """CENTRAL authorizes a request: tells the driver (and, reliably, the engine via AuthorizeSupply)."""

    request_id: str
    supply_id: str
    cp_id: str
    driver_id: str
    price_eur_kwh: str
    expires_at: str


@dataclass
class AuthorizeSupply(Message):
    """CENTRAL -> Engine: wait for the plug for this supply."""

    RELIABLE: ClassVar[bool] = True
    supply_id: str
    cp_id: str
    driver_id: str
    price_eur_kwh: str
    expires_at: str


@dataclass
class CancelAuthorization(Message):
    """CENTRAL -> Engine: the authorization expired or was withdrawn; free the CP."""

    RELIABLE: ClassVar[bool] = True
    supply_id: str
    reason: str


@dataclass
class StopSupply(Message):
    """Stop a running supply: driver -> CENTRAL, or CENTRAL -> Engine (reliable)."""

    RELIABLE: ClassVar[bool] = True
    supply_id: str
    reason: str


@dataclass
class SupplyStarted(Message):
    """Engine -> CENTRAL (-> driver): the vehicle was plugged in."""

    RELIABLE: ClassVar[bool] = True
    supply_id: str
    cp_id: str
    started_at: str


@dataclass
class Telemetry(Message):
    """Engine -> CENTRAL (-> driver), every second while supplying."""

    supply_id: str
    cp_id: str
    power_kw: str
    energy_kwh: str
    amount_eur: str
    seq: int = 0


@dataclass
class SupplyFinished(Message):
    """Engine -> CENTRAL: the final record of a supply (reliable, idempotent by supply_id)."""

    RELIABLE: ClassVar[bool] = True
    supply_id: str
    cp_id: str
    started_at: Optional[str]
    ended_at: str
    energy_kwh: str
    amount_eur: str
    reason: str


@dataclass
class TicketIssued(Message):
    """CENTRAL -> driver: the ticket of a finished supply, re-sent until AckTicket."""

    ticket_id: str
    supply_id: str
    cp_id: str
    driver_id: str
    started_at: Optional[str]
    ended_at: str
    duration_s: int
    energy_kwh: str
    price_eur_kwh: str
    amount_eur: str
    reason: str


@dataclass
class AckTicket(Message):
    """Driver -> CENTRAL: the ticket was shown; stop re-sending it."""

    ticket_id: str


@dataclass
class Notice(Message):
    """A readable event for a party (e.g. 'CP faulted during your supply')."""

    text: str
    level: str = "info"


@dataclass
class NetworkStatus(Message):
    """Every CP with its derived state, published on ``status``.

    A large network is sent in ``parts`` messages of one ``version``; a reader replaces its
    table once it has every part of a version (see ``StatusAssembler``).
    """

    cps: list = field(default_factory=list)
    version: int = 0
    part: int = 0
    parts: int = 1


STATUS_CHUNK = 200


def status_messages(cps: list, version: int) -> list[NetworkStatus]:
    """The network status split in messages of at most STATUS_CHUNK CPs."""
    chunks = [cps[i:i + STATUS_CHUNK] for i in range(0, len(cps), STATUS_CHUNK)] or [[]]
    return [NetworkStatus(chunk, version, i, len(chunks)) for i, chunk in enumerate(chunks)]


class StatusAssembler:
    """Puts the parts of a NetworkStatus version back together (pure; one per reader)."""

    def __init__(self):
        self._version: Optional[int] = None
        self._parts: dict[int, list] = {}

    def add(self, msg: NetworkStatus) -> Optional[list]:
        """Every CP once all parts of msg's version arrived, else None."""
        if msg.parts <= 1:
            return list(msg.cps)
        if msg.version != self._version:
            self._version, self._parts = msg.version, {}
        self._parts[msg.part] = msg.cps
        if len(self._parts) < msg.parts:
            return None
        return [cp for i in range(msg.parts) for cp in self._parts.get(i, [])]


@dataclass
class CpStatus(Message):
    """CENTRAL -> Engine: its CP's out-of-service reasons (operator stop, weather, keys), on change and after Hello."""

    cp_id: str
    state: str
    caption: str
    out_of_service: list = field(default_factory=list)


# ---------------------------------------------------------------- driver accounts and history
@dataclass
class RegisterDriver(Message):
    """A new driver account (the password is stored only as a slow salted hash; never printed)."""

    driver_id: str
    password: str = field(repr=False)
    request_id: Optional[str] = None


@dataclass
class LoginDriver(Message):
    """A driver logs in from the web app (the password is never printed)."""

    driver_id: str
    password: str = field(repr=False)
    request_id: Optional[str] = None


@dataclass
class AccountResult(Message):
    """CENTRAL's answer to RegisterDriver / LoginDriver, naming the request it answers."""

    driver_id: str
    ok: bool
    code: str
    message: str
    request_id: Optional[str] = None


@dataclass
class QueryHistory(Message):
    """A driver asks for its supplies and its last ticket."""

    driver_id: str


@dataclass
class SupplyHistory(Message):
    """A driver's supplies, newest first, and its last ticket."""

    driver_id: str
    supplies: list = field(default_factory=list)
    last_ticket: Optional[dict] = None


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (SelectChannel, ChannelAssigned, Hello, Welcome, Ack, Error, RequestSupply,
                SupplyDenied, SupplyAuthorized, AuthorizeSupply, CancelAuthorization, StopSupply,
                SupplyStarted, Telemetry, SupplyFinished, TicketIssued, AckTicket, Notice,
                NetworkStatus, RegisterDriver, LoginDriver, AccountResult, QueryHistory, SupplyHistory, CpStatus)
}


@dataclass(frozen=True)
class Envelope:
    """A decoded Kafka message: envelope fields plus the typed message."""

    id: str
    ts: str
    sender: str
    message: Message


def encode(message: Message, sender: str, msg_id: Optional[str] = None, ts: Optional[str] = None) -> bytes:
    """Message -> envelope JSON bytes (``msg_id``/``ts`` fixed only for stable examples and tests)."""
    envelope = {
        "v": ENVELOPE_VERSION,
        "type": message.type_name(),
        "id": msg_id or new_id(),
        "ts": ts or now_iso(),
        "sender": sender,
        "payload": dataclasses.asdict(message),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def _require_str(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"envelope field {key!r} missing or not text")
    return value


def _build(cls: type[Message], payload: Any) -> Message:
    if not isinstance(payload, dict):
        raise InvalidPayload("payload must be an object")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = required - payload.keys()
    if missing:
        raise InvalidPayload(f"{cls.__name__} lacks {sorted(missing)}")
    kwargs = {k: v for k, v in payload.items() if k in names}
    for f in dataclasses.fields(cls):
        if f.name in kwargs and not _matches(f.type, kwargs[f.name]):
            raise InvalidPayload(f"{cls.__name__}.{f.name} has the wrong type")
    return cls(**kwargs)


def _matches(annotation: Any, value: Any) -> bool:
    text = str(annotation)
    if value is None:  # null only where the field is Optional
        return text.startswith("Optional[")
    if text == "bool":
        return isinstance(value, bool)
    if "dict" in text:
        return isinstance(value, dict)
    if "int" in text and "str" not in text:
        return isinstance(value, int) and not isinstance(value, bool)
    if "list" in text:
        return isinstance(value, list)
    return isinstance(value, str)


def decode(raw: bytes) -> Envelope:
    """Envelope JSON bytes -> Envelope; raises a MessageError subclass when invalid."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidPayload("message too large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly nested input
        raise InvalidJson(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidJson("envelope must be a JSON object")
    if type(data.get("v")) is not int or data["v"] != ENVELOPE_VERSION:  # not true, not 1.0
        raise InvalidPayload(f"unsupported envelope version {data.get('v')!r}")
    type_name = _require_str(data, "type")
    cls = MESSAGE_TYPES.get(type_name)
    if cls is None:
        raise UnknownType(f"unknown type {type_name[:60]}")
    message = _build(cls, data.get("payload"))
    return Envelope(_require_str(data, "id"), _require_str(data, "ts"), _require_str(data, "sender"), message)
