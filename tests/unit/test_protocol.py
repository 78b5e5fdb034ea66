"""Socket wire format (SPEC §6, common/protocol.py).

Every expected byte string here is computed independently of the module under
test: ``wire(data)`` builds STX + DATA + ETX + XOR(DATA) with functools.reduce.
One table of (Frame, exact bytes) drives encode and decode; each row is also
fed whole, byte by byte, split at every position, and all rows in one read.
"""
from __future__ import annotations

import functools
import operator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import protocol as p
from common.protocol import (ACK, EOT, ENQ, NACK, NEED_DATA, BadEncoding, BadFrame, BadLrc, Control, Frame,
                             FrameReader, Garbage, MalformedFrame, Oversize, ProtocolError, UnknownOpcode,
                             WrongFieldCount)

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers
def xor(data: bytes) -> int:
    """Independent LRC: XOR of every byte."""
    return functools.reduce(operator.xor, data, 0)


def wire(data: bytes | str) -> bytes:
    """STX DATA ETX LRC, built by hand."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return b"\x02" + data + b"\x03" + bytes([xor(data)])


def drain(reader: FrameReader) -> list:
    """Every item the reader has ready; checks that it stops on NEED_DATA."""
    items = []
    while (item := reader.next_item()) is not NEED_DATA:
        assert isinstance(item, (Frame, Control, BadFrame)), item
        items.append(item)
    return items


def feed_chunks(chunks, max_pending: int = p.DEFAULT_MAX_PENDING) -> list:
    """Feed chunks one after another, draining after each."""
    reader = FrameReader(max_pending)
    items = []
    for chunk in chunks:
        reader.feed(chunk)
        items += drain(reader)
    return items


def feed_whole(data: bytes, max_pending: int = p.DEFAULT_MAX_PENDING) -> list:
    return feed_chunks([data], max_pending)


def feed_bytewise(data: bytes, max_pending: int = p.DEFAULT_MAX_PENDING) -> list:
    """The byte-by-byte helper: one read per byte."""
    return feed_chunks([data[i:i + 1] for i in range(len(data))], max_pending)


def merge_garbage(items: list) -> list:
    """Consecutive Garbage items as one (byte-wise feeding reports garbage per read)."""
    merged: list = []
    for item in items:
        if (isinstance(item, BadFrame) and isinstance(item.error, Garbage) and merged
                and isinstance(merged[-1], BadFrame) and isinstance(merged[-1].error, Garbage)):
            merged[-1] = BadFrame(Garbage(), merged[-1].raw + item.raw)
        else:
            merged.append(item)
    return merged


def summary(items: list) -> list:
    """Comparable view: frames and controls as themselves, bad frames as (error class, raw)."""
    return [(type(i.error), i.raw) if isinstance(i, BadFrame) else i for i in items]


def data_with_lrc(target: int, template: str = "HEALTH#{}") -> str:
    """Search for a DATA text whose LRC byte equals ``target`` (0x02 / 0x03)."""
    for n in range(100_000):
        text = template.format(n)
        if xor(text.encode()) == target:
            return text
    raise AssertionError(f"no DATA with LRC {target:#04x}")


LRC_STX_DATA = data_with_lrc(0x02)
LRC_ETX_DATA = data_with_lrc(0x03)
LRC_STX_AUTH = data_with_lrc(0x02, "AUTH#CP{}#s3cr3t")
LRC_ETX_AUTH = data_with_lrc(0x03, "AUTH#CP{}#s3cr3t")


def parsed(text: str) -> Frame:
    opcode, *fields = text.split("#")
    return Frame(opcode, tuple(fields))


# ---------------------------------------------------------------- the table
# (Frame, exact bytes on the wire). One row per opcode at least, plus edge cases.
CASES: list[tuple[Frame, bytes]] = [
    (Frame("AUTH", ("CP001", "s3cr3t")), wire("AUTH#CP001#s3cr3t")),
    (Frame("AUTH", ("CP001", "")), wire("AUTH#CP001#")),
    (Frame("STATUS", ("CP001", "OK")), wire("STATUS#CP001#OK")),
    (Frame("STATUS", ("CP001", "KO")), wire("STATUS#CP001#KO")),
    (Frame("AUTH_OK", ("CP001", "default", "0.35", "22", "Calle Mayor 1, Alicante", "3", "a2V5")),
     wire("AUTH_OK#CP001#default#0.35#22#Calle Mayor 1, Alicante#3#a2V5")),
    (Frame("AUTH_DENIED", ("CP404", "CP_NOT_FOUND", "Charging point not found")),
     wire("AUTH_DENIED#CP404#CP_NOT_FOUND#Charging point not found")),
    (Frame("REVOKED", ("CP001", "KEYS_REVOKED")), wire("REVOKED#CP001#KEYS_REVOKED")),
    (Frame("CP_INFO", ("CP001", "default", "0.35", "22", "Plaza Ñ, Alcalá de Henares", "1", "")),
     wire("CP_INFO#CP001#default#0.35#22#Plaza Ñ, Alcalá de Henares#1#")),
    (Frame("HEALTH", ("0",)), wire("HEALTH#0")),
    (Frame("HEALTH", ("",)), wire("HEALTH#")),
    (Frame("CENTRAL", ("UP",)), wire("CENTRAL#UP")),
    (Frame("CENTRAL", ("DOWN",)), wire("CENTRAL#DOWN")),
    (Frame("HEALTH_REPLY", ("41", "OK")), wire("HEALTH_REPLY#41#OK")),
    (Frame("HEALTH_REPLY", ("42", "KO")), wire("HEALTH_REPLY#42#KO")),
    (Frame("AUTH_DENIED", ("CP€", "BUSY", "precio 0,35 €/kWh — ✓")), wire("AUTH_DENIED#CP€#BUSY#precio 0,35 €/kWh — ✓")),
    (Frame("AUTH_DENIED", ("CP1", "X", "tab\tand\x04\x05\x06\x15 controls")),
     wire("AUTH_DENIED#CP1#X#tab\tand\x04\x05\x06\x15 controls")),
    (parsed(LRC_STX_DATA), wire(LRC_STX_DATA)),
    (parsed(LRC_ETX_DATA), wire(LRC_ETX_DATA)),
    (parsed(LRC_STX_AUTH), wire(LRC_STX_AUTH)),
    (parsed(LRC_ETX_AUTH), wire(LRC_ETX_AUTH)),
]
IDS = [f"{f.opcode}-{i}" for i, (f, _) in enumerate(CASES)]


def test_table_covers_every_opcode():
    assert {f.opcode for f, _ in CASES} == set(p.OPCODES)


def test_table_has_lrc_bytes_equal_to_stx_and_etx():
    assert {raw[-1] for _, raw in CASES} >= {p.STX, p.ETX}


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_encode(item, raw):
    assert p.encode(item) == raw


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_frame_builder_gives_the_same_frame(item, raw):
    assert p.frame(item.opcode, *item.fields) == item


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_decode_whole(item, raw):
    assert feed_whole(raw) == [item]


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_decode_byte_by_byte(item, raw):
    reader = FrameReader()
    for byte in raw[:-1]:
        reader.feed(bytes([byte]))
        assert reader.next_item() is NEED_DATA
    reader.feed(raw[-1:])
    assert reader.next_item() == item
    assert reader.next_item() is NEED_DATA
    assert reader.pending == 0
    assert feed_bytewise(raw) == [item]


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_decode_split_at_every_position(item, raw):
    for cut in range(1, len(raw)):
        assert feed_chunks([raw[:cut], raw[cut:]]) == [item], cut


@pytest.mark.parametrize("item, raw", CASES, ids=IDS)
def test_decode_data_and_as_dict(item, raw):
    assert p.decode_data(raw[1:-2]) == item
    assert list(item.as_dict()) == list(p.OPCODES[item.opcode])
    assert tuple(item.as_dict().values()) == item.fields


def test_all_rows_in_one_read():
    stream = b"".join(raw for _, raw in CASES)
    expected = [item for item, _ in CASES]
    assert feed_whole(stream) == expected
    assert feed_bytewise(stream) == expected


def test_two_frames_in_one_read_then_a_split_third():
    first, second, third = (raw for _, raw in CASES[:3])
    reader = FrameReader()
    reader.feed(first + second + third[:4])
    assert drain(reader) == [CASES[0][0], CASES[1][0]]
    assert reader.pending == 4
    reader.feed(third[4:])
    assert drain(reader) == [CASES[2][0]]
    assert reader.pending == 0


def test_iterating_the_reader_yields_until_need_data():
    reader = FrameReader()
    reader.feed(CASES[0][1] + CASES[1][1] + b"\x02HEA")
    assert list(reader) == [CASES[0][0], CASES[1][0]]
    assert reader.next_item() is NEED_DATA


def test_control_bytes_between_frames():
    a, b = CASES[0], CASES[8]
    stream = bytes([ENQ]) + a[1] + bytes([ACK]) + b[1] + bytes([NACK, EOT])
    expected = [Control(ENQ), a[0], Control(ACK), b[0], Control(NACK), Control(EOT)]
    assert feed_whole(stream) == expected
    assert feed_bytewise(stream) == expected


@pytest.mark.parametrize("byte", [ENQ, ACK, NACK, EOT])
def test_control_bytes_alone(byte):
    assert p.control(byte) == bytes([byte])
    assert feed_whole(bytes([byte])) == [Control(byte)]


def test_control_byte_values_match_the_spec():
    assert (p.STX, p.ETX, p.EOT, p.ENQ, p.ACK, p.NACK) == (0x02, 0x03, 0x04, 0x05, 0x06, 0x15)
    assert p.CONTROL_BYTES == {0x04, 0x05, 0x06, 0x15}


@pytest.mark.parametrize("byte", [0x00, p.STX, p.ETX, 0x41, 0xFF])
def test_control_rejects_other_bytes(byte):
    with pytest.raises(ValueError):
        p.control(byte)


# ---------------------------------------------------------------- LRC equal to STX / ETX
@pytest.mark.parametrize("text", [LRC_STX_DATA, LRC_ETX_DATA, LRC_STX_AUTH, LRC_ETX_AUTH])
def test_lrc_equal_to_stx_or_etx_decodes_whole_split_and_followed(text):
    raw = wire(text)
    assert raw[-1] in (p.STX, p.ETX)
    assert p.lrc(text.encode()) == raw[-1]
    assert feed_whole(raw) == [parsed(text)]
    assert feed_bytewise(raw) == [parsed(text)]
    # the checksum byte arrives alone, then the next frame in the same read
    follow = wire("CENTRAL#UP")
    assert feed_chunks([raw[:-1], raw[-1:] + follow]) == [parsed(text), Frame("CENTRAL", ("UP",))]
    assert feed_whole(raw + raw) == [parsed(text)] * 2


# ---------------------------------------------------------------- garbage table
GOOD = wire("HEALTH#7")
GOOD_FRAME = Frame("HEALTH", ("7",))
BAD_LRC = GOOD[:-1] + bytes([GOOD[-1] ^ 0xFF])

# (name, input, expected summary); every row is followed by GOOD to show the reader recovers
GARBAGE = [
    ("bad LRC", BAD_LRC, [(BadLrc, BAD_LRC)]),
    ("LRC off by one bit", GOOD[:-1] + bytes([GOOD[-1] ^ 0x01]), [(BadLrc, GOOD[:-1] + bytes([GOOD[-1] ^ 0x01]))]),
    ("missing ETX then a new STX", b"\x02AUTH#CP001", [(MalformedFrame, b"\x02AUTH#CP001")]),
    ("lone STX", b"\x02", [(MalformedFrame, b"\x02")]),
    ("unknown opcode", wire("HELLO#1"), [(UnknownOpcode, wire("HELLO#1"))]),
    ("lower-case opcode", wire("health#1"), [(UnknownOpcode, wire("health#1"))]),
    ("empty DATA", wire(""), [(UnknownOpcode, wire(""))]),
    ("too few fields", wire("AUTH#CP001"), [(WrongFieldCount, wire("AUTH#CP001"))]),
    ("no fields", wire("HEALTH"), [(WrongFieldCount, wire("HEALTH"))]),
    ("too many fields", wire("HEALTH#1#2"), [(WrongFieldCount, wire("HEALTH#1#2"))]),
    ("invalid UTF-8", wire(b"HEALTH#\xff"), [(BadEncoding, wire(b"HEALTH#\xff"))]),
    ("truncated UTF-8", wire("HEALTH#€".encode()[:-1]), [(BadEncoding, wire("HEALTH#€".encode()[:-1]))]),
    ("bytes outside frames", b"hello", [(Garbage, b"hello")]),
    ("stray ETX", b"\x03", [(Garbage, b"\x03")]),
    ("garbage around a control byte", b"ab\x06cd", [(Garbage, b"ab"), Control(ACK), (Garbage, b"cd")]),
    ("garbage then a frame", b"\x00\xff" + wire("CENTRAL#UP"),
     [(Garbage, b"\x00\xff"), Frame("CENTRAL", ("UP",))]),
]


@pytest.mark.parametrize("name, raw, expected", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_whole(name, raw, expected):
    assert summary(feed_whole(raw + GOOD)) == expected + [GOOD_FRAME]


@pytest.mark.parametrize("name, raw, expected", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_byte_by_byte(name, raw, expected):
    assert summary(merge_garbage(feed_bytewise(raw + GOOD))) == expected + [GOOD_FRAME]


@pytest.mark.parametrize("name, raw, expected", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_is_answered_nack_and_frames_ack(name, raw, expected):
    items = feed_whole(raw + GOOD)
    for item in items:
        if isinstance(item, BadFrame):
            assert p.reply_for(item) == bytes([NACK])
    assert p.reply_for(items[-1]) == bytes([ACK])


def test_decode_data_raises_protocol_errors():
    with pytest.raises(UnknownOpcode):
        p.decode_data(b"NOPE#1")
    with pytest.raises(WrongFieldCount):
        p.decode_data(b"HEALTH#1#2")
    with pytest.raises(BadEncoding):
        p.decode_data(b"HEALTH#\xc3")


# ---------------------------------------------------------------- oversize
@pytest.mark.parametrize("max_pending", [16, 64, p.DEFAULT_MAX_PENDING])
@pytest.mark.parametrize("feeder", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
def test_oversize_without_etx_then_recovers(max_pending, feeder):
    oversize = b"\x02" + b"A" * max_pending  # max_pending + 1 bytes, no ETX
    items = feeder(oversize, max_pending)
    assert summary(items) == [(Oversize, oversize[:max_pending])]


@pytest.mark.parametrize("max_pending", [16, 64, p.DEFAULT_MAX_PENDING])
def test_oversize_discards_the_rest_of_the_frame_and_recovers(max_pending):
    reader = FrameReader(max_pending)
    reader.feed(b"\x02" + b"A" * max_pending)
    item = reader.next_item()
    assert isinstance(item, BadFrame) and isinstance(item.error, Oversize)
    assert p.reply_for(item) == bytes([NACK])
    assert reader.pending == 0
    reader.feed(b"B" * (3 * max_pending) + b"\x03\x06")  # the tail of the oversize frame
    assert reader.next_item() is NEED_DATA
    assert reader.pending == 0
    reader.feed(GOOD + bytes([EOT]))
    assert drain(reader) == [GOOD_FRAME, Control(EOT)]


def test_pending_stays_bounded_while_an_oversize_frame_streams_in():
    reader = FrameReader(32)
    reader.feed(b"\x02")
    for _ in range(1000):
        reader.feed(b"x" * 7)
        drain(reader)
        assert reader.pending <= 32
    reader.feed(GOOD)
    assert drain(reader) == [GOOD_FRAME]


def test_complete_frame_larger_than_max_pending_is_oversize():
    big = wire("AUTH_DENIED#CP1#X#" + "y" * 40)
    items = feed_whole(big + GOOD, max_pending=32)
    assert summary(items) == [(Oversize, big[:32]), GOOD_FRAME]


@pytest.mark.parametrize("feeder", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
def test_frame_of_exactly_max_pending_bytes_is_accepted(feeder):
    raw = wire("HEALTH#" + "9" * 20)
    assert feeder(raw, len(raw)) == [Frame("HEALTH", ("9" * 20,))]
    assert summary(feeder(raw, len(raw) - 1))[0][0] is Oversize


# ---------------------------------------------------------------- replies and errors
def test_reply_for():
    assert p.reply_for(GOOD_FRAME) == bytes([ACK])
    assert p.reply_for(BadFrame(BadLrc(), BAD_LRC)) == bytes([NACK])
    assert p.reply_for(Control(ENQ)) is None
    assert p.reply_for(Control(ACK)) is None
    assert p.reply_for(NEED_DATA) is None


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


ERROR_CLASSES = [ProtocolError, *_all_subclasses(ProtocolError)]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_code_round_trips(cls):
    assert p.PROTOCOL_ERRORS[cls.code] is cls
    assert cls.code.isupper() and cls.text
    assert isinstance(cls(), ProtocolError)


def test_error_table_has_exactly_the_error_classes():
    assert set(p.PROTOCOL_ERRORS.values()) == set(ERROR_CLASSES)
    assert len({c.code for c in ERROR_CLASSES}) == len(ERROR_CLASSES)
    assert all(code == cls.code for code, cls in p.PROTOCOL_ERRORS.items())


# ---------------------------------------------------------------- frame() builder
@pytest.mark.parametrize("bad", ["a#b", "#", "x\x02", "\x03y"])
def test_frame_rejects_separator_stx_etx_in_fields(bad):
    with pytest.raises(ValueError):
        p.frame("HEALTH", bad)


def test_frame_rejects_unknown_opcode_and_wrong_count():
    with pytest.raises(ValueError):
        p.frame("NOPE", "1")
    with pytest.raises(ValueError):
        p.frame("AUTH", "CP001")
    with pytest.raises(ValueError):
        p.frame("HEALTH", "1", "2")


def test_frame_converts_values_to_text():
    assert p.frame("HEALTH_REPLY", 7, None) == Frame("HEALTH_REPLY", ("7", ""))
    assert p.encode(p.frame("HEALTH", 12)) == wire("HEALTH#12")


def test_protocol_module_does_no_io():
    source = Path(p.__file__).read_text(encoding="utf-8")
    for module in ("socket", "threading", "time", "select", "asyncio"):
        assert f"import {module}" not in source


# ---------------------------------------------------------------- property tests
field_text = st.text(st.characters(blacklist_characters="#\x02\x03", blacklist_categories=("Cs",)), max_size=24)


@st.composite
def frames(draw):
    opcode = draw(st.sampled_from(sorted(p.OPCODES)))
    return p.frame(opcode, *(draw(field_text) for _ in p.OPCODES[opcode]))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@FUZZ
@given(st.lists(frames(), max_size=8), st.lists(st.integers(0, 10_000), max_size=20))
def test_any_frames_in_any_chunks_round_trip(items, cuts):
    stream = b"".join(p.encode(f) for f in items)
    for f in items:
        data = p.encode(f)
        assert data == wire(data[1:-2])
    assert feed_chunks(chunked(stream, cuts)) == items


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=30), st.sampled_from([8, 32, 256]))
def test_fuzz_arbitrary_bytes_never_raise_and_stay_bounded(chunks, max_pending):
    reader = FrameReader(max_pending)
    for chunk in chunks:
        before = reader.pending
        reader.feed(chunk)
        assert reader.pending == before + len(chunk)
        assert reader.pending <= max_pending + len(chunk)
        for item in drain(reader):
            if isinstance(item, BadFrame):
                assert type(item.error) in p.PROTOCOL_ERRORS.values()
                assert len(item.raw) <= max(max_pending, len(chunk) + max_pending)
                assert p.reply_for(item) == bytes([NACK])
            elif isinstance(item, Frame):
                assert p.reply_for(item) == bytes([ACK])
                assert len(item.fields) == len(p.OPCODES[item.opcode])
        assert reader.pending <= max_pending


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=10))
def test_fuzz_chunking_does_not_change_frames(data, cuts):
    whole = [i for i in feed_whole(data) if not isinstance(i, BadFrame)]
    split = [i for i in feed_chunks(chunked(data, cuts)) if not isinstance(i, BadFrame)]
    assert split == whole


# ---------------------------------------------------------------- docs/PROTOCOL.md
def test_protocol_doc_is_generated_from_the_code():
    from tools import gen_protocol_doc

    committed = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    assert gen_protocol_doc.render() == committed, "docs/PROTOCOL.md is stale: run python tools/gen_protocol_doc.py"
