#!/usr/bin/env python3
"""Generate docs/PROTOCOL.md from the code that owns the wire formats.

Every table and example byte string in the document is computed here from
``common.protocol`` (socket framing, SPEC §6) and ``common.messages`` (Kafka
envelope, SPEC §7): frames come from ``protocol.encode``, envelopes from
``messages.encode``, and every NACK / error example is fed through the real
decoder to get its code. Only the prose and the example values live here.

    python tools/gen_protocol_doc.py          # rewrite docs/PROTOCOL.md
    python tools/gen_protocol_doc.py --check  # exit 1 if it is stale

tests/unit/test_protocol.py fails when the committed file differs from render().
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import messages as m  # noqa: E402
from common import protocol as p  # noqa: E402

OUTPUT = ROOT / "docs" / "PROTOCOL.md"
EXAMPLE_ID = "5f0c3a9e2b7d4e1fa6c8b0d2e4f61a3b"
EXAMPLE_TS = "2025-01-15T10:00:00.000+00:00"
EXAMPLE_ZONE = m.DEFAULT_ZONE

# opcode -> (direction, what it means, example field values)
OPCODE_NOTES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "AUTH": ("Monitor → CENTRAL",
             "Authenticate the CP. `secret` is the Registry-issued secret (empty with security off).",
             ("CP001", "example-secret")),
    "STATUS": ("Monitor → CENTRAL",
               "Every second: CENTRAL's liveness signal, plus the Engine's health (`OK` | `KO`).",
               ("CP001", p.ENGINE_OK)),
    "AUTH_OK": ("CENTRAL → Monitor",
                "Authenticated: the CP's zone, price (€/kWh), power (kW), address and, with security on, "
                "its AES-256 key (base64) and key version.",
                ("CP001", "default", "0.35", "22", "Calle Mayor 1, Alicante", "1", "example-key-base64")),
    "AUTH_DENIED": ("CENTRAL → Monitor",
                    "Refused, with a reason code and its readable text.",
                    ("CP404", "CP_NOT_FOUND", m.DENY_REASONS["CP_NOT_FOUND"])),
    "REVOKED": ("CENTRAL → Monitor",
                "The CP's keys were revoked (or it was deregistered): re-authenticate to come back.",
                ("CP001", "KEYS_REVOKED")),
    "CP_INFO": ("Monitor → Engine",
                "Hands the Engine its identity and, with security on, its key (same fields as `AUTH_OK`).",
                ("CP001", "default", "0.35", "22", "Calle Mayor 1, Alicante", "1", "example-key-base64")),
    "HEALTH": ("Monitor → Engine", "Health check, every second; `seq` numbers them.", ("17",)),
    "CENTRAL": ("Monitor → Engine", "What the Monitor sees of CENTRAL (`UP` | `DOWN`).", (p.LINK_UP,)),
    "HEALTH_REPLY": ("Engine → Monitor", "Answer to `HEALTH` with the same `seq`: `OK` or `KO`.",
                     ("17", p.ENGINE_OK)),
}

CONTROL_NOTES = [
    (p.ENQ, "ENQ", "Opens a session; answered by ACK."),
    (p.ACK, "ACK", "The frame just received was valid."),
    (p.NACK, "NACK", "The frame just received was not valid (see below); the connection stays open."),
    (p.EOT, "EOT", "Closes the session."),
]


def _wire(data: bytes) -> bytes:
    """STX DATA ETX LRC for hand-made (possibly invalid) DATA."""
    return bytes([p.STX]) + data + bytes([p.ETX, p.lrc(data)])


_GOOD = p.encode(p.frame("HEALTH", "7"))
# error code -> (example input, or None when it cannot be shown in a line; description)
NACK_EXAMPLES: dict[str, tuple[bytes | None, str]] = {
    "BAD_LRC": (_GOOD[:-1] + bytes([_GOOD[-1] ^ 0xFF]), "the LRC byte is not the XOR of DATA"),
    "MALFORMED": (b"\x02AUTH#CP001" + _GOOD, "a new STX arrives before the ETX (the example is followed by a valid frame)"),
    "UNKNOWN_OPCODE": (_wire(b"HELLO#1"), "the opcode is not in the table"),
    "WRONG_FIELDS": (_wire(b"HEALTH#1#2"), "the field count does not match the opcode"),
    "BAD_ENCODING": (_wire(b"HEALTH#\xff"), "DATA is not valid UTF-8"),
    "OVERSIZE": (None, f"more than `max_pending` ({p.DEFAULT_MAX_PENDING} by default) bytes without a "
                       "complete frame; the rest of that frame is dropped up to the next STX"),
    "GARBAGE": (b"hello", "bytes outside any frame (other than the control bytes)"),
}


def _message_examples() -> list[tuple[str, m.Message]]:
    """(sender, example) for every message type."""
    supply, cp, driver, price = "8d1e2f3a4b5c6d7e8f9a0b1c2d3e4f50", "CP001", "driver-7", "0.35"
    start, end = "2025-01-15T10:00:05.000+00:00", "2025-01-15T10:30:05.000+00:00"
    return [
        (driver, m.SelectChannel(client_id=driver, kind="driver")),
        ("central", m.ChannelAssigned(client_id=driver, channel=3, partition=1, lease_s=600)),
        (cp, m.Hello(client_id=cp, kind="engine", supply_id=None)),
        ("central", m.Welcome(client_id=cp)),
        ("central", m.Ack(ref=EXAMPLE_ID)),
        ("central", m.Error(code="UNKNOWN_TYPE", message="unknown type LaunchRocket", ref=EXAMPLE_ID)),
        (driver, m.RequestSupply(cp_id=cp, driver_id=driver, request_id="req-0001")),
        ("central", m.SupplyDenied(request_id="req-0001", cp_id=cp, reason="BUSY", message=m.DENY_REASONS["BUSY"])),
        ("central", m.SupplyAuthorized(request_id="req-0001", supply_id=supply, cp_id=cp, driver_id=driver,
                                       price_eur_kwh=price, expires_at="2025-01-15T10:01:00.000+00:00")),
        ("central", m.AuthorizeSupply(supply_id=supply, cp_id=cp, driver_id=driver, price_eur_kwh=price,
                                      expires_at="2025-01-15T10:01:00.000+00:00")),
        ("central", m.CancelAuthorization(supply_id=supply, reason="AUTH_EXPIRED")),
        (driver, m.StopSupply(supply_id=supply, reason="DRIVER_STOP")),
        (cp, m.SupplyStarted(supply_id=supply, cp_id=cp, started_at=start)),
        (cp, m.Telemetry(supply_id=supply, cp_id=cp, power_kw="22.0", energy_kwh="1.834", amount_eur="0.64", seq=300)),
        (cp, m.SupplyFinished(supply_id=supply, cp_id=cp, started_at=start, ended_at=end, energy_kwh="11.000",
                              amount_eur="3.85", reason="UNPLUGGED")),
        ("central", m.TicketIssued(ticket_id="tk-0001", supply_id=supply, cp_id=cp, driver_id=driver,
                                   started_at=start, ended_at=end, duration_s=1800, energy_kwh="11.000",
                                   price_eur_kwh=price, amount_eur="3.85", reason="UNPLUGGED")),
        (driver, m.AckTicket(ticket_id="tk-0001")),
        ("central", m.Notice(text="CP001 faulted during your supply", level="warning")),
        ("central", m.NetworkStatus(cps=[{"cp_id": "CP001", "state": "ACTIVADO"},
                                         {"cp_id": "CP002", "state": "SUMINISTRANDO"}])),
        ("central", m.CpStatus(cp_id=cp, state="PARADO", caption="Out of Order (OPERATOR)", out_of_service=["OPERATOR"])),
        (driver, m.RegisterDriver(driver_id=driver, password="<the new password>")),
        (driver, m.LoginDriver(driver_id=driver, password="<the password>")),
        ("central", m.AccountResult(driver_id=driver, ok=True, code="OK", message="Sesión iniciada")),
        (driver, m.QueryHistory(driver_id=driver)),
        ("central", m.SupplyHistory(driver_id=driver, supplies=[{"supply_id": supply, "cp_id": cp, "phase": "FINISHED",
                                                                   "energy_kwh": "11.000", "amount_eur": "3.85"}],
                                    last_ticket={"ticket_id": "tk-0001", "supply_id": supply, "amount_eur": "3.85"})),
    ]


# Bad envelopes, one per MessageError code the decoder raises (written by hand: they cannot be encoded).
MESSAGE_ERROR_EXAMPLES: list[bytes] = [
    b"hello",
    b'{"v":1,"type":"LaunchRocket","id":"1","ts":"t","sender":"x","payload":{}}',
    b'{"v":1,"type":"Ack","id":"1","ts":"t","sender":"x","payload":{}}',
    b'{"v":1,"type":"ChannelAssigned","id":"1","ts":"t","sender":"x",'
    b'"payload":{"client_id":"d","channel":"3","partition":0,"lease_s":600}}',
]


# ---------------------------------------------------------------- formatting helpers
def hex_bytes(raw: bytes) -> str:
    """Bytes as spaced upper-case hex."""
    return " ".join(f"{b:02X}" for b in raw)


def escaped(raw: bytes) -> str:
    """Bytes as text: printable ASCII as is, everything else as \\xNN."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""


def _require_complete() -> None:
    missing = set(p.OPCODES) ^ set(OPCODE_NOTES)
    if missing:
        raise SystemExit(f"gen_protocol_doc: OPCODE_NOTES out of step with OPCODES: {sorted(missing)}")
    types = {type(msg).__name__ for _, msg in _message_examples()}
    if types != set(m.MESSAGE_TYPES):
        raise SystemExit(f"gen_protocol_doc: examples out of step with MESSAGE_TYPES: "
                         f"{sorted(types ^ set(m.MESSAGE_TYPES))}")
    if set(NACK_EXAMPLES) != set(p.PROTOCOL_ERRORS) - {p.ProtocolError.code}:
        raise SystemExit("gen_protocol_doc: NACK_EXAMPLES out of step with PROTOCOL_ERRORS")


# ---------------------------------------------------------------- sections
def _framing() -> list[str]:
    return [
        "## 1. Socket framing (SPEC §6)",
        "",
        "Monitor↔CENTRAL and Monitor↔Engine speak the same framed protocol over TCP "
        "(inside TLS between Monitor and CENTRAL with security on). "
        "`common/protocol.py` owns it; both sides import it.",
        "",
        "```",
        "<STX> <DATA> <ETX> <LRC>",
        f"STX  = 0x{p.STX:02X}",
        f"DATA = UTF-8 text OPCODE{p.FIELD_SEPARATOR}field1{p.FIELD_SEPARATOR}…{p.FIELD_SEPARATOR}fieldN",
        f"ETX  = 0x{p.ETX:02X}",
        "LRC  = XOR of every byte of DATA (one byte)",
        "```",
        "",
        f"- Fields may not contain `{p.FIELD_SEPARATOR}`, STX or ETX (`protocol.frame` refuses them); "
        "an empty field is allowed.",
        "- The LRC may itself be 0x02 or 0x03: the reader always takes the byte after ETX as the "
        "checksum, whatever its value.",
        "- Every frame is answered with ACK, or NACK when it is not valid. A session opens with ENQ "
        "(answered by ACK) and closes with EOT.",
        "- The reader is sans-I/O: `FrameReader.feed(bytes)` then `next_item()` → `Frame` | `Control` | "
        "`BadFrame` | `NEED_DATA`. Frames may arrive split across reads or several in one read. "
        f"Its buffer is bounded by `max_pending` (default {p.DEFAULT_MAX_PENDING} bytes).",
        "- Every socket read has a timeout (in the per-program wrapper, `common/framed.py`).",
        "",
    ]


def _controls() -> list[str]:
    rows = [[name, f"0x{byte:02X}", f"`{escaped(p.control(byte))}`", text] for byte, name, text in CONTROL_NOTES]
    return ["### Control bytes", "", "Sent on their own, outside any frame.", "",
            *table(["byte", "value", "escaped", "meaning"], rows), ""]


def _opcodes() -> list[str]:
    rows = []
    for opcode, fields in p.OPCODES.items():
        direction, meaning, _ = OPCODE_NOTES[opcode]
        rows.append([f"`{opcode}`", direction, ", ".join(f"`{f}`" for f in fields), meaning])
    return ["### Opcodes", "", *table(["opcode", "direction", "fields (in order)", "meaning"], rows), ""]


def _frame_examples() -> list[str]:
    lines = ["### Example frames", "", "Produced by `common.protocol.encode(protocol.frame(opcode, *fields))`.", ""]
    for opcode in p.OPCODES:
        item = p.frame(opcode, *OPCODE_NOTES[opcode][2])
        raw = p.encode(item)
        lines += [f"`{opcode}` (LRC 0x{raw[-1]:02X})", "", "```",
                  f"text: {escaped(raw)}", f"hex:  {hex_bytes(raw)}", "```", ""]
    special = [op for op in p.OPCODES if p.encode(p.frame(op, *OPCODE_NOTES[op][2]))[-1] in (p.STX, p.ETX)]
    if special:
        lines += [f"Note the LRC of {', '.join(f'`{op}`' for op in special)} above: it equals STX or ETX, "
                  "and is still just the byte after ETX.", ""]
    return lines


def _nack_cases() -> list[str]:
    rows = []
    for code, (raw, what) in NACK_EXAMPLES.items():
        if raw is None:
            raw_cell = "—"
        else:
            reader = p.FrameReader()
            reader.feed(raw)
            item = reader.next_item()
            assert isinstance(item, p.BadFrame) and item.error.code == code, (code, item)
            raw_cell = f"`{escaped(raw)}`"
        cls = p.PROTOCOL_ERRORS[code]
        rows.append([f"`{code}`", cls.__name__, what, raw_cell])
    return ["### NACK cases", "",
            "Each is a `BadFrame` whose error is a `ProtocolError` subclass with a wire `code` "
            "(`PROTOCOL_ERRORS` maps code → class). The receiver answers NACK, logs it and keeps serving; "
            "the reader resynchronises on the next STX or control byte.", "",
            *table(["code", "class", "when", "example input"], rows), ""]


def _envelope() -> list[str]:
    rows = [
        ["`v`", "int", f"envelope version, `{m.ENVELOPE_VERSION}`"],
        ["`type`", "text", "message class name, e.g. `RequestSupply`"],
        ["`id`", "text", "unique message id (32 hex digits); `Ack.ref` names it"],
        ["`ts`", "text", "UTC time the message was encoded, ISO-8601"],
        ["`sender`", "text", "client id (driver id, CP id) or `central`"],
        ["`payload`", "object", "the message's fields, JSON keys equal to the Python field names"],
    ]
    return [
        "## 2. Kafka messages (SPEC §7)",
        "",
        "`common/messages.py` owns the envelope and every message type. Every Kafka message value is one "
        "compact JSON object (UTF-8):",
        "",
        *table(["key", "type", "meaning"], rows),
        "",
        f"A message larger than {m.MAX_MESSAGE_BYTES} bytes is refused. Decoding happens once, at the edge "
        "(`messages.decode`), and yields a typed dataclass; unknown payload keys are ignored.",
        "",
    ]


def _topics() -> list[str]:
    z = EXAMPLE_ZONE
    rows = [
        [f"`{m.topic_select(z)}`", "client → CENTRAL", "`SelectChannel`: ask for a channel"],
        [f"`{m.topic_select_reply(z)}`", "CENTRAL → clients (keyed by client id)",
         "`ChannelAssigned`: channel, partition to read, lease"],
        [f"`{m.topic_req(z, 0)}` … `{m.topic_req(z, m.CHANNELS - 1)}`", "client → CENTRAL",
         "all further traffic of the clients on that channel"],
        [f"`{m.topic_resp(z, 0)}` … `{m.topic_resp(z, m.CHANNELS - 1)}`", "CENTRAL → client",
         f"answers and commands; {m.RESP_PARTITIONS} partitions, each client reads the one it was assigned"],
        [f"`{m.topic_status(z)}`", "CENTRAL → drivers", "`NetworkStatus`: every CP and its state"],
    ]
    return [
        "### Topics per zone",
        "",
        f"A zone is a name matching `{m.ZONE_PATTERN.pattern}` (default `{m.DEFAULT_ZONE}`). "
        f"Topics of zone `{z}` ({len(m.zone_topics(z))} in all, `messages.zone_topics`):",
        "",
        *table(["topic", "direction", "carries"], rows),
        "",
        f"CENTRAL subscribes with the pattern `{m.CENTRAL_TOPIC_PATTERN}`. After `ChannelAssigned` the client "
        "sends `Hello` on its `req` topic and waits for `Welcome` before any critical message.",
        "",
    ]


def _field_text(f: dataclasses.Field) -> str:
    text = f"`{f.name}`: {f.type}"
    if f.default is not dataclasses.MISSING:
        text += f" = {f.default!r}"
    elif f.default_factory is not dataclasses.MISSING:
        text += f" = {f.default_factory()!r}"
    return text


def _message_types() -> list[str]:
    rows = [[f"`{name}`", "yes" if cls.RELIABLE else "", "<br>".join(_field_text(f) for f in dataclasses.fields(cls)),
             _first_line(cls.__doc__)] for name, cls in m.MESSAGE_TYPES.items()]
    reliable = ", ".join(f"`{n}`" for n, c in m.MESSAGE_TYPES.items() if c.RELIABLE)
    return [
        "### Message types", "",
        *table(["type", "reliable", "payload fields", "meaning"], rows), "",
        "### Reliable messages", "",
        f"{reliable} are kept in an outbox and re-sent until the receiver answers `Ack` with `ref` = their "
        "envelope `id`; receivers acknowledge every copy and handle it once (duplicates are recognised by "
        "envelope id and by supply id). `TicketIssued` is re-sent until the driver answers `AckTicket` "
        "with its `ticket_id`.", "",
    ]


def _message_examples_section() -> list[str]:
    lines = ["### Example envelopes", "",
             "Produced by `common.messages.encode(message, sender, msg_id, ts)` with a fixed id and ts.", ""]
    for sender, message in _message_examples():
        raw = m.encode(message, sender, msg_id=EXAMPLE_ID, ts=EXAMPLE_TS)
        assert m.decode(raw).message == message
        lines += [f"`{type(message).__name__}`", "", "```json", raw.decode("utf-8"), "```", ""]
    return lines


def _message_errors() -> list[str]:
    rows = []
    for raw in MESSAGE_ERROR_EXAMPLES:
        try:
            m.decode(raw)
        except m.MessageError as exc:
            rows.append([f"`{exc.code}`", type(exc).__name__, str(exc), f"`{escaped(raw)}`"])
        else:
            raise AssertionError(f"example decoded: {raw!r}")
    return ["### Refused messages", "",
            "`messages.decode` raises a `MessageError` subclass; the receiver logs and drops the message, "
            "or answers `Error` with the code. Examples (the decoder's own text):", "",
            *table(["code", "class", "text", "input"], rows), ""]


def _reasons() -> list[str]:
    deny = [[f"`{code}`", text] for code, text in m.DENY_REASONS.items()]
    end = [[f"`{code}`", text] for code, text in m.END_REASONS.items()]
    return ["## 3. Reason codes", "",
            "### Deny reasons (`SupplyDenied.reason`; SPEC §4 step 5)", "",
            *table(["code", "text shown"], deny), "",
            "### End reasons (`SupplyFinished.reason`, `TicketIssued.reason`)", "",
            *table(["code", "text shown"], end), ""]


def render() -> str:
    """The whole of docs/PROTOCOL.md."""
    _require_complete()
    lines = [
        "# Wire protocols",
        "",
        "<!-- Generated by tools/gen_protocol_doc.py from common/protocol.py and common/messages.py. "
        "Do not edit: run `python tools/gen_protocol_doc.py`. -->",
        "",
        *_framing(), *_controls(), *_opcodes(), *_frame_examples(), *_nack_cases(),
        *_envelope(), *_topics(), *_message_types(), *_message_examples_section(), *_message_errors(),
        *_reasons(),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/PROTOCOL.md, or with --check report whether it is stale."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python tools/gen_protocol_doc.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
