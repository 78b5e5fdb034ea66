"""The Monitor's decisions, without I/O (SPEC §4 steps 3-4, §5).

:class:`HealthTracker` turns HEALTH / HEALTH_REPLY traffic into the engine
status the Monitor reports to CENTRAL: KO when the link to the Engine is down,
when the Engine answers KO, or when two HEALTH checks in a row go unanswered;
OK again as soon as the Engine answers OK. A check counts as missed when no
answer came within ``reply_timeout_s``, and the next check then goes out at
once, so a silent Engine is declared KO within about 2 s (SPEC §4 step 4).
:class:`Backoff` paces reconnects.
"""
from __future__ import annotations

from typing import Optional

from common.protocol import ENGINE_KO, ENGINE_OK

MAX_MISSED = 2
REPLY_TIMEOUT_S = 0.5


class HealthTracker:
    """Engine health as seen by the Monitor; ``status`` is what STATUS carries."""

    def __init__(self, max_missed: int = MAX_MISSED, reply_timeout_s: float = REPLY_TIMEOUT_S):
        self.max_missed, self.reply_timeout_s = max_missed, reply_timeout_s
        self.link_up = False
        self.answer: Optional[str] = None  # the Engine's last answer on this link
        self.missed = 0
        self._outstanding: Optional[int] = None
        self._sent_at = 0.0
        self._seq = 0

    @property
    def status(self) -> str:
        """OK only with a live link, a last answer of OK and fewer than ``max_missed`` silent checks."""
        healthy = self.link_up and self.answer == ENGINE_OK and self.missed < self.max_missed
        return ENGINE_OK if healthy else ENGINE_KO

    def reason(self) -> str:
        """Why the status is what it is, for the console."""
        if not self.link_up:
            return "Engine not reachable"
        if self.missed >= self.max_missed:
            return f"Engine did not answer {self.missed} health checks in a row"
        if self.answer is None:
            return "waiting for the Engine's first answer"
        return "Engine reports KO" if self.answer == ENGINE_KO else "Engine reports OK"

    def link(self, up: bool) -> None:
        """The socket to the Engine opened or closed: start afresh."""
        self.link_up, self.answer, self.missed, self._outstanding = up, None, 0, None

    def next_check(self, now: float) -> int:
        """A HEALTH is about to go out: the previous one, if unanswered, counts as missed."""
        if self._outstanding is not None:
            self.missed += 1
        self._seq += 1
        self._outstanding, self._sent_at = self._seq, now
        return self._seq

    def expire(self, now: float) -> bool:
        """Count the outstanding check as missed once its answer is overdue; True when it just was."""
        if self._outstanding is None or now - self._sent_at < self.reply_timeout_s:
            return False
        self._outstanding = None
        self.missed += 1
        return True

    def reply(self, seq: str, engine: str) -> None:
        """HEALTH_REPLY from the Engine; late or unknown answers still prove it is alive."""
        if engine not in (ENGINE_OK, ENGINE_KO):
            return
        self.answer, self.missed = engine, 0
        if str(self._outstanding) == seq:
            self._outstanding = None


class Backoff:
    """Reconnect delays: start small, double, never above ``maximum``; reset after a success."""

    def __init__(self, first: float = 0.5, maximum: float = 2.0):
        self.first, self.maximum = first, maximum
        self._next = first

    def next(self) -> float:
        """The delay to wait now."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """The link worked: next failure waits the shortest delay again."""
        self._next = self.first
