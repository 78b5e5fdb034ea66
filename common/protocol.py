"""Socket wire format shared by Monitor, Engine and CENTRAL (SPEC §6).

Theory of operation
-------------------
A frame is ``STX DATA ETX LRC``. DATA is UTF-8 text ``OPCODE#field1#...#fieldN``
and LRC is the XOR of every DATA byte; the LRC may itself be 0x02 or 0x03, so
the reader always takes the byte after ETX as the checksum, whatever it is.
Outside a frame the single control bytes ENQ (open), ACK, NACK and EOT (close)
travel on their own.

This module does no I/O (after h11): a :class:`FrameReader` is fed bytes and
yields :class:`Frame`, :class:`Control`, :class:`BadFrame` or ``NEED_DATA``.
Its pending buffer is bounded by ``max_pending``: a frame that grows past it
becomes a ``BadFrame(OVERSIZE)`` and the reader resynchronises on the next STX.
Every frame is answered with ACK, or NACK when it is a ``BadFrame``.

The opcode table ``OPCODES`` says how many fields each opcode carries; a frame
with an unknown opcode or the wrong field count is a ``BadFrame`` too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

STX = 0x02
ETX = 0x03
EOT = 0x04
ENQ = 0x05
ACK = 0x06
NACK = 0x15
CONTROL_BYTES = frozenset({ENQ, ACK, NACK, EOT})
FIELD_SEPARATOR = "#"
DEFAULT_MAX_PENDING = 4096

# opcode -> field names, in wire order (SPEC §6; documented in docs/PROTOCOL.md)
OPCODES: dict[str, tuple[str, ...]] = {
    # Monitor -> CENTRAL
    "AUTH": ("cp_id", "secret"),
    "STATUS": ("cp_id", "engine"),  # engine: OK | KO
    # CENTRAL -> Monitor
    "AUTH_OK": ("cp_id", "zone", "price_eur_kwh", "power_kw", "address", "key_version", "key"),
    "AUTH_DENIED": ("cp_id", "reason", "message"),
    "REVOKED": ("cp_id", "reason"),
    # Monitor -> Engine
    "CP_INFO": ("cp_id", "zone", "price_eur_kwh", "power_kw", "address", "key_version", "key"),
    "HEALTH": ("seq",),
    "CENTRAL": ("link",),  # link: UP | DOWN, what the Monitor sees of CENTRAL
    # Engine -> Monitor
    "HEALTH_REPLY": ("seq", "engine"),  # engine: OK | KO
}
ENGINE_OK = "OK"
ENGINE_KO = "KO"
LINK_UP = "UP"
LINK_DOWN = "DOWN"


class ProtocolError(Exception):
    """A peer sent something this protocol cannot accept (peer's fault: NACK and keep serving)."""

    code = "PROTOCOL_ERROR"
    text = "malformed input"


class BadLrc(ProtocolError):
    code, text = "BAD_LRC", "checksum does not match"


class MalformedFrame(ProtocolError):
    code, text = "MALFORMED", "frame is not STX DATA ETX LRC"


class UnknownOpcode(ProtocolError):
    code, text = "UNKNOWN_OPCODE", "unknown opcode"


class WrongFieldCount(ProtocolError):
    code, text = "WRONG_FIELDS", "wrong number of fields for the opcode"


class BadEncoding(ProtocolError):
    code, text = "BAD_ENCODING", "DATA is not valid UTF-8"


class Oversize(ProtocolError):
    code, text = "OVERSIZE", "frame longer than the reader accepts"


class Garbage(ProtocolError):
    code, text = "GARBAGE", "bytes outside any frame"


PROTOCOL_ERRORS: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (ProtocolError, BadLrc, MalformedFrame, UnknownOpcode, WrongFieldCount,
                BadEncoding, Oversize, Garbage)
}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: an opcode and its fields, as named in ``OPCODES``."""

    opcode: str
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """Fields by name, per the opcode table."""
        return dict(zip(OPCODES[self.opcode], self.fields))


@dataclass(frozen=True)
class Control:
    """A lone control byte: ENQ, ACK, NACK or EOT."""

    byte: int


@dataclass(frozen=True)
class BadFrame:
    """Input that is not a valid frame; the receiver answers NACK."""

    error: ProtocolError
    raw: bytes


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
Item = Union[Frame, Control, BadFrame, _NeedData]


def lrc(data: bytes) -> int:
    """XOR of every byte of DATA."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def _check_field(value: str) -> str:
    if FIELD_SEPARATOR in value or chr(STX) in value or chr(ETX) in value:
        raise ValueError(f"field may not contain '#', STX or ETX: {value!r}")
    return value


def frame(opcode: str, *fields: object) -> Frame:
    """Build a Frame, checking the opcode and field count against the table."""
    if opcode not in OPCODES:
        raise ValueError(f"unknown opcode {opcode}")
    values = tuple(_check_field("" if f is None else str(f)) for f in fields)
    if len(values) != len(OPCODES[opcode]):
        raise ValueError(f"{opcode} takes {OPCODES[opcode]}, got {len(values)} fields")
    return Frame(opcode, values)


def encode(item: Frame) -> bytes:
    """Frame -> wire bytes ``STX DATA ETX LRC``."""
    data = FIELD_SEPARATOR.join((item.opcode, *item.fields)).encode("utf-8")
    return bytes([STX]) + data + bytes([ETX, lrc(data)])


def control(byte: int) -> bytes:
    """Wire bytes of a lone control byte (ACK, NACK, ENQ, EOT)."""
    if byte not in CONTROL_BYTES:
        raise ValueError(f"not a control byte: {byte:#04x}")
    return bytes([byte])


def decode_data(data: bytes) -> Frame:
    """DATA bytes -> Frame; raises a ProtocolError subclass when invalid."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEncoding() from exc
    opcode, *fields = text.split(FIELD_SEPARATOR)
    if opcode not in OPCODES:
        raise UnknownOpcode(f"unknown opcode {opcode[:32]!r}")
    if len(fields) != len(OPCODES[opcode]):
        raise WrongFieldCount(f"{opcode} takes {len(OPCODES[opcode])} fields, got {len(fields)}")
    return Frame(opcode, tuple(fields))


class FrameReader:
    """Streaming decoder with a bounded buffer: ``feed(bytes)`` then ``next_item()``."""

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING):
        self.max_pending = max_pending
        self._buffer = bytearray()
        self._discarding = False  # inside an oversize frame: drop bytes until the next STX

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a complete item."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes; bytes beyond the bound become BadFrame(OVERSIZE)."""
        self._buffer += data

    def next_item(self) -> Item:
        """The next complete item, or NEED_DATA."""
        buf = self._buffer
        if not buf:
            return NEED_DATA
        if self._discarding:
            return self._discard_until_stx()
        first = buf[0]
        if first in CONTROL_BYTES:
            del buf[0]
            return Control(first)
        if first != STX:
            return self._take_garbage()
        return self._take_frame()

    def __iter__(self):
        """Yield items until NEED_DATA."""
        while (item := self.next_item()) is not NEED_DATA:
            yield item

    def _take_garbage(self) -> Item:
        end = 0
        while end < len(self._buffer) and self._buffer[end] != STX and self._buffer[end] not in CONTROL_BYTES:
            end += 1
        raw = bytes(self._buffer[:end])
        del self._buffer[:end]
        return BadFrame(Garbage(), raw)

    def _take_frame(self) -> Item:
        buf = self._buffer
        end = 1
        while end < len(buf) and buf[end] not in (ETX, STX):
            end += 1
        if end < len(buf) and buf[end] == STX:  # a new frame starts before this one ended
            raw = bytes(buf[:end])
            del buf[:end]
            return BadFrame(MalformedFrame("STX inside a frame"), raw)
        if end + 1 >= len(buf):  # no ETX yet, or ETX without its LRC byte
            if len(buf) > self.max_pending:
                raw = bytes(buf[: self.max_pending])
                del buf[:]
                self._discarding = True
                return BadFrame(Oversize(), raw)
            return NEED_DATA
        data = bytes(buf[1:end])
        checksum = buf[end + 1]
        raw = bytes(buf[: end + 2])
        del buf[: end + 2]
        if len(raw) > self.max_pending:
            return BadFrame(Oversize(), raw[: self.max_pending])
        if lrc(data) != checksum:
            return BadFrame(BadLrc(), raw)
        try:
            return decode_data(data)
        except ProtocolError as exc:
            return BadFrame(exc, raw)

    def _discard_until_stx(self) -> Item:
        try:
            start = self._buffer.index(STX)
        except ValueError:
            self._buffer.clear()
            return NEED_DATA
        del self._buffer[:start]
        self._discarding = False
        return self.next_item()


def describe(bad: BadFrame) -> str:
    """A loggable summary of a bad frame: its error, length and opcode guess, never its fields
    (an AUTH frame with a bad checksum would otherwise put a CP's secret in a log)."""
    head = bad.raw[1:17].split(FIELD_SEPARATOR.encode(), 1)[0] if bad.raw[:1] == bytes([STX]) else b""
    opcode = head.decode("ascii", "replace") if head.isalnum() else "?"
    return f"{bad.error.code} ({len(bad.raw)} bytes, opcode {opcode})"


def reply_for(item: Item) -> bytes | None:
    """The byte the receiver answers: ACK for a frame, NACK for a bad one, nothing for control bytes."""
    if isinstance(item, Frame):
        return control(ACK)
    if isinstance(item, BadFrame):
        return control(NACK)
    return None
