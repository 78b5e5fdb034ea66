"""Reliable-message outbox and duplicate filter (SPEC §7; common/bus.py Outbox, SeenIds).

Time is always an explicit ``now``: nothing here sleeps or reads a clock.
(``common.bus`` also holds the Kafka adapters, so importing it loads kafka-python;
these two classes themselves do no I/O.)
"""
from __future__ import annotations

import pytest

from common import messages as m
from common.reliable import Outbox, SeenIds

A = m.StopSupply(supply_id="s1", reason="DRIVER_STOP")
B = m.SupplyFinished(supply_id="s2", cp_id="CP001", started_at=None, ended_at="e", energy_kwh="0",
                     amount_eur="0", reason="UNPLUGGED")
C = m.AuthorizeSupply(supply_id="s3", cp_id="CP002", driver_id="d", price_eur_kwh="0.35", expires_at="x")


def ids(pending) -> list[str]:
    return [p.msg_id for p in pending]


@pytest.fixture
def box() -> Outbox:
    return Outbox(resend_s=2.0)


def test_new_messages_are_due_at_once_whatever_now_is(box):
    a = box.add(A)
    assert ids(box.due(0.0)) == [a]
    b = box.add(B)
    assert ids(box.due(1.0)) == [b]  # a is not due again before 2.0
    assert ids(box.due(1000.0)) == [a, b]


def test_resend_timing(box):
    a = box.add(A)
    assert ids(box.due(10.0)) == [a]
    assert box.due(10.0) == []
    assert box.due(11.999) == []
    assert ids(box.due(12.0)) == [a]  # exactly resend_s later
    assert box.due(13.0) == []
    assert ids(box.due(20.0)) == [a]  # late poll: sent once, not once per missed period
    assert box.due(21.9) == []
    assert ids(box.due(22.0)) == [a]


def test_due_keeps_the_queue_order_and_each_message_its_own_timer(box):
    a, b = box.add(A), box.add(B)
    assert ids(box.due(0.0)) == [a, b]
    c = box.add(C)
    assert ids(box.due(1.0)) == [c]
    assert ids(box.due(2.0)) == [a, b]
    assert ids(box.due(3.0)) == [c]


def test_due_returns_the_message_and_target(box):
    a = box.add(A, target="evc.default.ch3.resp")
    (pending,) = box.due(0.0)
    assert (pending.msg_id, pending.message, pending.target) == (a, A, "evc.default.ch3.resp")


def test_ack_removes(box):
    a, b = box.add(A), box.add(B)
    assert box.ack(a) is True
    assert box.pending() == [B]
    assert ids(box.due(0.0)) == [b]
    assert box.ack(a) is False  # a duplicate Ack is harmless
    assert box.ack("never-sent") is False
    assert box.ack(b) is True
    assert box.pending() == [] and box.due(100.0) == []


def test_ack_before_first_send(box):
    a = box.add(A)
    box.ack(a)
    assert box.due(0.0) == []


def test_retry_now_makes_everything_due(box):
    a, b = box.add(A), box.add(B)
    box.due(50.0)
    assert box.due(51.0) == []
    box.retry_now()
    assert ids(box.due(51.0)) == [a, b]
    assert box.due(52.0) == []  # and the timer restarts from that send
    assert ids(box.due(53.0)) == [a, b]


def test_ids_are_unique_even_for_equal_messages(box):
    assert len({box.add(A) for _ in range(100)}) == 100
    assert box.pending() == [A] * 100


@pytest.mark.parametrize("resend_s", [0.5, 2.0, 30.0])
def test_resend_period_is_configurable(resend_s):
    box = Outbox(resend_s=resend_s)
    a = box.add(A)
    box.due(0.0)
    assert box.due(resend_s - 0.01) == []
    assert ids(box.due(resend_s)) == [a]


# ---------------------------------------------------------------- SeenIds
def test_seen_ids_dedupes():
    seen = SeenIds()
    assert seen.check_and_add("a") is True
    assert seen.check_and_add("a") is False
    assert seen.check_and_add("b") is True
    assert seen.check_and_add("a") is False


def test_seen_ids_forgets_the_oldest_beyond_its_limit():
    seen = SeenIds(limit=3)
    for msg_id in "abcd":
        assert seen.check_and_add(msg_id)
    for msg_id in "bcd":  # the newest three are remembered...
        assert seen.check_and_add(msg_id) is False
    assert seen.check_and_add("a") is True  # ...the oldest was forgotten


def test_seen_ids_is_bounded():
    seen = SeenIds(limit=100)
    for n in range(10_000):
        seen.check_and_add(str(n))
    assert len(seen._ids) == 100
    assert not any(seen.check_and_add(str(n)) for n in range(9_900, 10_000))
    assert seen.check_and_add("9899") is True


def test_seeing_a_duplicate_does_not_refresh_it():
    seen = SeenIds(limit=2)
    seen.check_and_add("a")
    seen.check_and_add("b")
    seen.check_and_add("a")  # duplicate: still the oldest
    seen.check_and_add("c")
    assert seen.check_and_add("b") is False
    assert seen.check_and_add("a") is True


def test_discard_drops_messages_no_longer_needed():
    box = Outbox(resend_s=2.0)
    keep = box.add(m.CancelAuthorization("s1", "AUTH_EXPIRED"), "engine:CP1")
    box.add(m.AuthorizeSupply("s1", "CP1", "alice", "0.3", "2030-01-01T00:00:00+00:00"), "engine:CP1")
    assert box.discard(lambda msg: isinstance(msg, m.AuthorizeSupply)) == 1
    assert [p.msg_id for p in box.due(0.0)] == [keep]


def test_max_sends_gives_up_on_a_receiver_that_never_answers():
    box = Outbox(resend_s=1.0, max_sends=3)
    msg_id = box.add(m.StopSupply("s1", "STOPPED_BY_OPERATOR"), "engine:CP1")
    sends = sum(1 for t in range(10) for p in box.due(float(t)) if p.msg_id == msg_id)
    assert sends == 3 and box.pending() == []


def test_a_message_sent_at_once_is_only_due_again_after_the_resend_interval():
    box = Outbox(resend_s=2.0)
    msg_id = box.add(m.StopSupply("s1", "DRIVER_STOP"), "engine:CP1", next_send=10.0 + 2.0)
    assert box.due(10.5) == [] and [p.msg_id for p in box.due(12.0)] == [msg_id]
