"""The driver web app's runtime: one driver session per logged-in driver, accounts, tickets on disk.

Theory of operation
-------------------
The process's own driver (``client_id`` on the command line, with the console and file
mode) is the *home* :class:`DriverApp`. Account operations (``RegisterDriver`` /
``LoginDriver``) go to CENTRAL over the home zone link; CENTRAL answers the sender, so the
:class:`AccountResult` comes back on that link and wakes the waiting web request.

After a login, :meth:`DriverHub.runtime` gives the driver's :class:`DriverRuntime`: the home
one when the driver is the process's own ``client_id``, otherwise a fresh DriverApp (its own
``DriverSession`` and zone link with ``client_id`` = the driver id, no console) started on a
thread. Everything CENTRAL sends is keyed by driver id, so a runtime only ever holds its own
driver's requests, supplies, tickets and history. The network status (the same for everyone)
is read once by the home app and fanned out.

A runtime rebuilds its page view on its own loop thread after every step
(``DriverApp.observers``) and, when it changed, sets :attr:`DriverHub.changed` so the
Socket.IO task pushes it. The last ticket survives a reload (it is in the view) and a
restart: it is written to ``<var>/driver-web/<driver>.last_ticket.json`` and CENTRAL's
``SupplyHistory`` (asked on every link-up and after every ticket) carries it too.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from common import messages as m
from EV_Driver import screens
from EV_Driver.session import DriverSession, Show
from EV_Driver.web.view import driver_view, newer_ticket, ticket_from_dict

logger = logging.getLogger(__name__)

ACCOUNT_TIMEOUT_S = 10.0
HISTORY_RETRY_S = 5.0
MAX_MESSAGES = 60
SKIPPED_LEVELS = {"live"}  # one line per telemetry second: the page shows the figures instead


def secret_key(path: Path) -> bytes:
    """The session-cookie secret of this install: random, made once, kept in var (never in git)."""
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return data


class TicketStore:
    """Each driver's last ticket as a small JSON file (atomic replace)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, driver_id: str) -> Path:
        """Where a driver's last ticket lives (the id is made file-name safe)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in driver_id)
        return self.folder / f"{safe}.last_ticket.json"

    def load(self, driver_id: str) -> Optional[m.TicketIssued]:
        """The stored last ticket, or None (missing or unreadable)."""
        try:
            ticket = ticket_from_dict(json.loads(self.path(driver_id).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None
        return ticket if ticket is not None and ticket.driver_id == driver_id else None

    def save(self, ticket: m.TicketIssued) -> None:
        """Keep a ticket as the driver's last one."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.path(ticket.driver_id)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(ticket)), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            logger.error("cannot store the last ticket of %s: %s", ticket.driver_id, exc)


class DriverRuntime:
    """One driver's DriverApp plus what only the web page needs: messages, history, last ticket."""

    def __init__(self, app, store: TicketStore, notify: Callable[[], None],
                 monotonic: Callable[[], float] = time.monotonic):
        self.app, self.store, self.notify, self.monotonic = app, store, notify, monotonic
        self.driver_id: str = app.session.driver_id
        self.messages: deque = deque(maxlen=MAX_MESSAGES)
        self.history: Optional[list] = None
        self.last_ticket: Optional[m.TicketIssued] = store.load(self.driver_id)
        self._seen_ticket_count = 0
        self._history_asked_at: Optional[float] = None
        self._lock = threading.Lock()
        self._view: Optional[dict] = None
        self._view_json = ""
        self.view_ready = threading.Event()
        app.sinks.append(self.show)
        app.taps.append(self.tap)
        app.link_taps.append(self.link_changed)
        app.observers.append(self.observe)

    # ---- from the driver app ----
    def show(self, effect: Show) -> None:
        """A session text becomes a page message (live telemetry lines are shown as figures instead)."""
        if effect.level in SKIPPED_LEVELS:
            return
        with self._lock:
            self.messages.append({"time": datetime.now().strftime("%H:%M:%S"), "level": effect.level,
                                  "text": effect.text})

    def tap(self, message: m.Message) -> None:
        """SupplyHistory from CENTRAL (zone thread): keep it and the last ticket it carries."""
        if not isinstance(message, m.SupplyHistory) or message.driver_id != self.driver_id:
            return
        remote = ticket_from_dict(message.last_ticket)
        with self._lock:
            self.history = [row for row in message.supplies if isinstance(row, dict)]
            best = newer_ticket(self.last_ticket, remote if remote and remote.driver_id == self.driver_id else None)
            changed, self.last_ticket = best is not self.last_ticket, best
        if changed and best is not None:
            self.store.save(best)
        self.app.poke()

    def link_changed(self, up: bool) -> None:
        """The zone link came up (zone thread): ask for the history (a restart, or CENTRAL back)."""
        if up:
            self.query_history()

    def query_history(self) -> None:
        """Ask CENTRAL for this driver's supplies and last ticket."""
        self._history_asked_at = self.monotonic()
        self.app.client.send(m.QueryHistory(self.driver_id))

    def observe(self, session: DriverSession) -> None:
        """After every step (loop thread): keep new tickets, refresh the history, rebuild the view."""
        if len(session.tickets) != self._seen_ticket_count:
            self._seen_ticket_count = len(session.tickets)
            self._keep_ticket(session.tickets[-1])
            self.query_history()
        elif self.history is None and session.link_up and self._history_due():
            self.query_history()
        self._rebuild(session)

    def _history_due(self) -> bool:
        return self._history_asked_at is None or self.monotonic() - self._history_asked_at >= HISTORY_RETRY_S

    def _keep_ticket(self, ticket: m.TicketIssued) -> None:
        with self._lock:
            best = newer_ticket(self.last_ticket, ticket)
            changed, self.last_ticket = best is not self.last_ticket, best
        if changed:
            self.store.save(ticket)

    def _rebuild(self, session: DriverSession) -> None:
        with self._lock:
            view = driver_view(session, datetime.now(timezone.utc), self.monotonic(), self.last_ticket,
                               self.history, self.messages)
        text = json.dumps(view, sort_keys=True, default=str)
        if text == self._view_json:
            return
        with self._lock:
            self._view, self._view_json = json.loads(text), text
        self.view_ready.set()
        self.notify()

    # ---- for the web app ----
    def view(self, wait_s: float = 1.0) -> Optional[dict]:
        """The latest page view (waits briefly for the first one)."""
        self.view_ready.wait(wait_s)
        with self._lock:
            return self._view


@dataclasses.dataclass
class _Waiter:
    request_id: str
    event: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: Optional[m.AccountResult] = None


class DriverHub:
    """Every driver this process serves on the web, and the account operations."""

    def __init__(self, home, make_app: Callable[[str], object], store: TicketStore,
                 account_timeout_s: float = ACCOUNT_TIMEOUT_S):
        self.home, self.make_app, self.store = home, make_app, store
        self.account_timeout_s = account_timeout_s
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._runtimes: dict[str, DriverRuntime] = {}
        self._runtimes[home.session.driver_id] = DriverRuntime(home, store, self.changed.set)
        home.taps.append(self._account_tap)
        home.status_taps.append(self._fan_out_status)

    # ---- runtimes ----
    def runtime(self, driver_id: str) -> DriverRuntime:
        """A logged-in driver's runtime (started on first use)."""
        with self._lock:
            found = self._runtimes.get(driver_id)
            if found is not None:
                return found
            app = self.make_app(driver_id)
            runtime = self._runtimes[driver_id] = DriverRuntime(app, self.store, self.changed.set)
        threading.Thread(target=app.run, args=(None,), name=f"driver-{driver_id}", daemon=True).start()
        return runtime

    def release(self, driver_id: str) -> None:
        """Stop a web-only driver's runtime (its Kafka link and threads) after it logged out."""
        with self._lock:
            runtime = self._runtimes.get(driver_id)
            if runtime is None or runtime.app is self.home:
                return
            del self._runtimes[driver_id]
        runtime.app.request_quit()

    def runtimes(self) -> list[DriverRuntime]:
        """Every runtime (for the push task)."""
        with self._lock:
            return list(self._runtimes.values())

    def stop(self) -> None:
        """Stop the web-only drivers (the home one is stopped by main)."""
        for runtime in self.runtimes():
            if runtime.app is not self.home:
                runtime.app.request_quit()

    def _fan_out_status(self, status: m.NetworkStatus) -> None:
        for runtime in self.runtimes():
            if runtime.app is not self.home:
                runtime.app.feed(status)

    # ---- accounts ----
    def register(self, driver_id: str, password: str) -> m.AccountResult:
        """Create a driver account at CENTRAL; waits for its answer (bounded)."""
        return self._account(m.RegisterDriver(driver_id, password, m.new_id()))

    def login(self, driver_id: str, password: str) -> m.AccountResult:
        """Check a driver's password at CENTRAL; waits for its answer (bounded)."""
        return self._account(m.LoginDriver(driver_id, password, m.new_id()))

    def _account(self, message) -> m.AccountResult:
        client = self.home.client
        deadline = time.monotonic() + self.account_timeout_s
        unavailable = m.AccountResult(message.driver_id, False, "CENTRAL_UNAVAILABLE", screens.UNAVAILABLE)
        while not client.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        if not client.connected:
            return unavailable
        waiter = _Waiter(message.request_id)
        with self._lock:
            self._waiters.append(waiter)
        try:
            if client.send(message) is None:
                return unavailable
            waiter.event.wait(max(0.0, deadline - time.monotonic()))
        finally:
            with self._lock:
                self._waiters.remove(waiter)
        return waiter.result or unavailable

    def _account_tap(self, message: m.Message) -> None:
        if not isinstance(message, m.AccountResult):
            return
        with self._lock:
            for waiter in self._waiters:  # exactly the request it answers: never another person's login
                if message.request_id is not None and waiter.request_id == message.request_id:
                    waiter.result = message
                    waiter.event.set()
                    return
