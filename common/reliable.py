"""Reliable delivery without I/O: the outbox of messages re-sent until acknowledged, and the memory
of envelope ids already handled (idempotent receivers). Used by both ends of the Kafka channels."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from common import messages as m


class SeenIds:
    """Bounded memory of envelope ids already handled (idempotent receivers)."""

    def __init__(self, limit: int = 10_000):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def check_and_add(self, msg_id: str) -> bool:
        """True the first time an id is seen."""
        if msg_id in self._ids:
            return False
        self._ids[msg_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


@dataclass
class Pending:
    """A reliable message waiting for its Ack."""

    msg_id: str
    message: m.Message
    target: str
    next_send: float


class Outbox:
    """Reliable messages re-sent until acknowledged; thread-safe."""

    def __init__(self, resend_s: float = 2.0, max_sends: Optional[int] = None):
        self.resend_s, self.max_sends = resend_s, max_sends
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._sends: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, message: m.Message, target: str = "", next_send: float = 0.0) -> str:
        """Queue a message (due at once, or at next_send when the caller sends it now itself); returns its id."""
        msg_id = m.new_id()
        with self._lock:
            self._pending[msg_id] = Pending(msg_id, message, target, next_send)
        return msg_id

    def discard(self, keep_unless) -> int:
        """Drop pending messages for which keep_unless(message) is true (no longer needed); returns how many."""
        with self._lock:
            gone = [msg_id for msg_id, p in self._pending.items() if keep_unless(p.message)]
            for msg_id in gone:
                del self._pending[msg_id]
                self._sends.pop(msg_id, None)
        return len(gone)

    def ack(self, ref: str) -> bool:
        """Drop an acknowledged message."""
        with self._lock:
            self._sends.pop(ref, None)
            return self._pending.pop(ref, None) is not None

    def due(self, now: float) -> list[Pending]:
        """Messages to (re-)send now, in the order they were queued."""
        with self._lock:
            ready = [p for p in self._pending.values() if p.next_send <= now]
            for p in ready:
                p.next_send = now + self.resend_s
                if self.max_sends is not None:  # a receiver that never answers is given up on, not retried forever
                    self._sends[p.msg_id] = sent = self._sends.get(p.msg_id, 0) + 1
                    if sent > self.max_sends:
                        del self._pending[p.msg_id]
                        del self._sends[p.msg_id]
            ready = [p for p in ready if p.msg_id in self._pending]
        return ready

    def retry_now(self) -> None:
        """Make every pending message due (after a reconnect)."""
        with self._lock:
            for p in self._pending.values():
                p.next_send = 0.0

    def pending(self) -> list[m.Message]:
        """Messages still waiting for their Ack."""
        with self._lock:
            return [p.message for p in self._pending.values()]
