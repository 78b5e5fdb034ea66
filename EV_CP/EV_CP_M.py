#!/usr/bin/env python3
"""EV_CP_M: the charging point's Monitor (its health module).

``python EV_CP/EV_CP_M.py <engine_host:port> <central_host:port> <cp_id> [--secret-file F]``

Two links, each kept alive by its own thread (see docs/CONTRACT-central.md):

* Engine: connect (retrying every second), send CP_INFO and CENTRAL#UP|DOWN,
  then HEALTH every second; the answers feed a ``HealthTracker``.
* CENTRAL: connect (backoff up to 2 s), ENQ, AUTH, and on AUTH_OK hand the CP's
  identity to the Engine; then STATUS#cp_id#OK|KO every second (at once when the
  engine status changes), which is CENTRAL's liveness signal. When the link
  drops the Monitor says so, tells the Engine CENTRAL#DOWN and re-authenticates
  by itself; a refusal (AUTH_DENIED) is retried every 5 s.

Console (lines on stdin; end of input does not stop it): status, reauth, quit.
The secret comes from --secret-file, $EVC_CP_SECRET or $EVC_CP_SECRET_FILE and is
never printed; it may be empty until the Registry exists.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import logging  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

from common import config  # noqa: E402
from common import protocol as p  # noqa: E402
from common.framed import FramedConnection, LinkClosed  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from EV_CP.console import StdinCommands, quiet_console_logging, say  # noqa: E402
from EV_CP.monitor_core import Backoff, HealthTracker  # noqa: E402

logger = logging.getLogger("EV_CP_M")

HEALTH_EVERY_S = 1.0
STATUS_EVERY_S = 1.0
ENGINE_RETRY_S = 1.0
DENIED_RETRY_S = 5.0
AUTH_ANSWER_S = 5.0
MAX_UNACKED_STATUS = 3       # CENTRAL silent for ~3 s: treat the link as lost
DOWN_REMINDER_S = 15.0
FIRST_VERDICT_WAIT_S = 3.0
HELP = "commands: status | reauth | quit"


class EngineLink:
    """Keeps the socket to the Engine: greets it, checks its health every second."""

    def __init__(self, host: str, port: int, stop: threading.Event):
        self.host, self.port, self.stop = host, port, stop
        self.tracker = HealthTracker()
        self.lock = threading.Lock()
        self.status_changed = threading.Event()
        self.known = threading.Event()  # the Engine answered a first HEALTH (for the first STATUS)
        self._control: "queue.Queue[p.Frame]" = queue.Queue()
        self._greeting: list[p.Frame] = []  # nothing to say until the CENTRAL side knows something
        self._connected = False
        self._last_status = None

    # ---- used by the CENTRAL side ----
    def status(self) -> str:
        """OK | KO, as reported to CENTRAL."""
        with self.lock:
            return self.tracker.status

    def describe(self) -> str:
        """Status line for the console."""
        with self.lock:
            return f"Engine {self.host}:{self.port}: {self.tracker.status} ({self.tracker.reason()})"

    def tell(self, greeting: list[p.Frame]) -> None:
        """New CP_INFO / CENTRAL link news: sent now, and again after every reconnect."""
        with self.lock:
            self._greeting = list(greeting)
            if self._connected:
                for frame in greeting:
                    self._control.put(frame)

    # ---- thread ----
    def run(self) -> None:
        """Connect, serve, reconnect, until stopped."""
        failures = 0
        while not self.stop.is_set():
            try:
                conn = FramedConnection.connect(self.host, self.port, "engine")
            except (OSError, LinkClosed) as exc:
                if failures == 0:
                    say(f"Engine not reachable at {self.host}:{self.port} ({exc}); retrying every second")
                failures += 1
                self._set_link(False)
                self.stop.wait(ENGINE_RETRY_S)
                continue
            failures = 0
            say(f"Connected to the Engine at {self.host}:{self.port}")
            self._serve(conn)

    def _serve(self, conn: FramedConnection) -> None:
        self._set_link(True)
        try:
            self._greet(conn)
            next_health = 0.0
            while not self.stop.is_set():
                self._send_control(conn)
                if self._overdue():
                    next_health = 0.0  # a missed answer: check again at once
                if time.monotonic() >= next_health:
                    next_health = time.monotonic() + HEALTH_EVERY_S
                    self._check(conn)
                frame = conn.recv(0.1)
                if frame is not None:
                    self._on_frame(frame)
        except LinkClosed:
            say("Lost the Engine: reporting KO and retrying")
        finally:
            conn.close()
            self._set_link(False)

    def _greet(self, conn: FramedConnection) -> None:
        with self.lock:
            self._connected = True
            greeting = list(self._greeting)
            while not self._control.empty():
                self._control.get_nowait()
        for frame in greeting:
            conn.send(frame)

    def _send_control(self, conn: FramedConnection) -> None:
        while True:
            try:
                frame = self._control.get_nowait()
            except queue.Empty:
                return
            if not conn.send(frame):
                logger.warning("Engine did not acknowledge %s", frame.opcode)

    def _overdue(self) -> bool:
        with self.lock:
            missed = self.tracker.expire(time.monotonic())
        if missed:
            self._report()
        return missed

    def _check(self, conn: FramedConnection) -> None:
        with self.lock:
            seq = self.tracker.next_check(time.monotonic())
        conn.send(p.frame("HEALTH", seq), timeout_s=0.5)
        self._report()

    def _on_frame(self, frame: p.Frame) -> None:
        if frame.opcode != "HEALTH_REPLY":
            logger.warning("unexpected %s from the Engine", frame.opcode)
            return
        with self.lock:
            self.tracker.reply(*frame.fields)
        self.known.set()
        self._report()

    def _set_link(self, up: bool) -> None:
        with self.lock:
            self._connected = up and self._connected
            self.tracker.link(up)
        self._report()

    def _report(self) -> None:
        """Print and flag every change of the engine status (CENTRAL hears of it at once)."""
        with self.lock:
            status, reason = self.tracker.status, self.tracker.reason()
        if status != self._last_status:
            if self._last_status is not None or status == p.ENGINE_OK:
                say(f"Engine status {status}: {reason}")
            self._last_status = status
            self.status_changed.set()


class CentralLink:
    """Keeps the authenticated socket to CENTRAL and reports STATUS every second."""

    def __init__(self, host: str, port: int, cp_id: str, secret: str, engine: EngineLink,
                 stop: threading.Event):
        self.host, self.port, self.cp_id, self._secret = host, port, cp_id, secret
        self.engine, self.stop = engine, stop
        self.reauth = threading.Event()
        self.up = False
        self.auth: Optional[dict[str, str]] = None
        self.denied: Optional[str] = None
        self.revoked: Optional[str] = None
        self._down_since: Optional[float] = None
        self._last_reminder = 0.0

    def describe(self) -> str:
        """Status line for the console (never the key)."""
        if self.up and self.auth:
            a = self.auth
            extra = f"; KEYS REVOKED ({self.revoked})" if self.revoked else ""
            return (f"CENTRAL {self.host}:{self.port}: authenticated as {self.cp_id} (zone {a['zone']}, "
                    f"{a['price_eur_kwh']} EUR/kWh, {a['power_kw']} kW, key version {a['key_version'] or '-'}){extra}")
        why = f"; last refusal: {self.denied}" if self.denied else ""
        return f"CENTRAL {self.host}:{self.port}: Imposible conectar con la CENTRAL{why}"

    # ---- thread ----
    def run(self) -> None:
        """Connect, authenticate, report, reconnect, until stopped."""
        # Engine and Monitor usually start together: give the Engine a moment so the first STATUS is
        # not a KO that only means "not started yet" (CENTRAL would flash AVERIADO).
        self.engine.known.wait(FIRST_VERDICT_WAIT_S)
        backoff = Backoff()
        while not self.stop.is_set():
            self.reauth.clear()
            outcome = self._session()
            if outcome == "served":
                backoff.reset()
            if self.stop.is_set() or self.reauth.is_set():
                continue
            delay = DENIED_RETRY_S if outcome == "denied" else backoff.next()
            self.reauth.wait(delay)

    def _session(self) -> str:
        try:
            conn = FramedConnection.connect(self.host, self.port, "CENTRAL")
        except (OSError, LinkClosed) as exc:
            self._went_down(f"{exc}")
            return "unreachable"
        try:
            outcome = self._authenticate(conn)
            if outcome == "ok":
                self._serve(conn)
                return "served"
            return outcome
        except LinkClosed as exc:
            self._went_down(f"link closed: {exc}")
            return "lost"
        finally:
            conn.close()

    def _authenticate(self, conn: FramedConnection) -> str:
        if not conn.send(p.frame("AUTH", self.cp_id, self._secret)):
            self._went_down("CENTRAL did not acknowledge AUTH")
            return "lost"
        deadline = time.monotonic() + AUTH_ANSWER_S
        while time.monotonic() < deadline and not self.stop.is_set():
            frame = conn.recv(0.2)
            if frame is None:
                continue
            if frame.opcode == "AUTH_OK":
                self._authenticated(frame)
                return "ok"
            if frame.opcode == "AUTH_DENIED":
                fields = frame.as_dict()
                self.denied = f"{fields['reason']}: {fields['message']}"
                say(f"CENTRAL refused authentication of {self.cp_id}: {self.denied}; retrying in {DENIED_RETRY_S:g} s")
                return "denied"
            logger.warning("unexpected %s from CENTRAL before authentication", frame.opcode)
        self._went_down("no answer to AUTH")
        return "lost"

    def _authenticated(self, frame: p.Frame) -> None:
        fields = frame.as_dict()
        if fields["cp_id"] != self.cp_id:
            logger.warning("AUTH_OK names %s, we are %s", fields["cp_id"], self.cp_id)
        self.auth, self.denied, self.revoked, self.up = fields, None, None, True
        self._down_since = None
        key_note = f"key version {fields['key_version']}" if fields["key"] else "no key (security off)"
        say(f"Authenticated with CENTRAL as {self.cp_id}: zone {fields['zone']}, {fields['price_eur_kwh']} EUR/kWh, "
            f"{fields['power_kw']} kW, {key_note}")
        self.engine.tell([p.frame("CP_INFO", *(fields[name] for name in p.OPCODES["CP_INFO"])),
                          p.frame("CENTRAL", p.LINK_UP)])

    def _serve(self, conn: FramedConnection) -> None:
        unacked, next_status = 0, 0.0
        while not self.stop.is_set() and not self.reauth.is_set():
            if time.monotonic() >= next_status or self.engine.status_changed.is_set():
                self.engine.status_changed.clear()
                next_status = time.monotonic() + STATUS_EVERY_S
                acked = conn.send(p.frame("STATUS", self.cp_id, self.engine.status()), timeout_s=1.0)
                unacked = 0 if acked else unacked + 1
                if unacked >= MAX_UNACKED_STATUS:
                    raise LinkClosed(f"CENTRAL acknowledged none of the last {unacked} STATUS frames")
            frame = conn.recv(0.1)
            if frame is not None:
                self._on_frame(frame)
        if self.reauth.is_set():
            say("Re-authenticating with CENTRAL")
            self._went_down("re-authentication requested", quiet=True)

    def _on_frame(self, frame: p.Frame) -> None:
        if frame.opcode == "REVOKED":
            self.revoked = frame.as_dict()["reason"]
            say(f"CENTRAL revoked the keys of {self.cp_id} ({self.revoked}); use 'reauth' to get new ones")
        elif frame.opcode == "AUTH_OK":
            self._authenticated(frame)
        else:
            logger.warning("unexpected %s from CENTRAL", frame.opcode)

    def _went_down(self, why: str, quiet: bool = False) -> None:
        now = time.monotonic()
        if self.up or self._down_since is None:
            self.up, self._down_since, self._last_reminder = False, now, now
            if not quiet:
                say(f"Imposible conectar con la CENTRAL ({why}); retrying")
            self.engine.tell(self._engine_greeting(p.LINK_DOWN))
        elif now - self._last_reminder >= DOWN_REMINDER_S:
            self._last_reminder = now
            say(f"Imposible conectar con la CENTRAL (down {int(now - self._down_since)} s: {why}); retrying")
        logger.info("CENTRAL link down: %s", why)

    def _engine_greeting(self, link: str) -> list[p.Frame]:
        """What the Engine must hear after a reconnect: who we are (if known) and CENTRAL's link."""
        frames = []
        if self.auth:
            frames.append(p.frame("CP_INFO", *(self.auth[name] for name in p.OPCODES["CP_INFO"])))
        return frames + [p.frame("CENTRAL", link)]


class Monitor:
    """Owns both links and the console."""

    def __init__(self, args: argparse.Namespace, secret: str):
        self.stop = threading.Event()
        engine_host, engine_port = args.engine
        central_host, central_port = args.central
        self.engine = EngineLink(engine_host, engine_port, self.stop)
        self.central = CentralLink(central_host, central_port, args.cp_id, secret, self.engine, self.stop)

    def run(self) -> None:
        """Start both links and wait for quit."""
        threading.Thread(target=self.engine.run, name="engine-link", daemon=True).start()
        threading.Thread(target=self.central.run, name="central-link", daemon=True).start()
        while not self.stop.wait(0.5):
            pass
        time.sleep(0.3)  # let the links say EOT

    def command(self, line: str) -> None:
        """One console command."""
        word = line.strip().lower()
        if word in ("status", "s"):
            say(self.engine.describe())
            say(self.central.describe())
        elif word in ("reauth", "r"):
            self.central.reauth.set()
        elif word in ("quit", "q", "exit"):
            say("Quitting")
            self.stop.set()
        else:
            say(HELP)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """Positional Engine and CENTRAL addresses and the CP id, then flags."""
    parser = argparse.ArgumentParser(prog="EV_CP_M.py", description="Charging point Monitor")
    parser.add_argument("engine", type=config.host_port_arg, help="Engine host:port")
    parser.add_argument("central", type=config.host_port_arg, help="CENTRAL host:port")
    parser.add_argument("cp_id", help="this charging point's id")
    parser.add_argument("--secret-file", type=Path, default=None,
                        help="file holding the CP secret (else $EVC_CP_SECRET or $EVC_CP_SECRET_FILE)")
    parser.add_argument("--verbose", action="store_true", help="also show info logs on stderr")
    args = parser.parse_args(argv)
    if not args.cp_id or any(c in args.cp_id for c in "#\x02\x03") or args.cp_id != args.cp_id.strip():
        parser.error("cp_id may not be empty or contain '#', spaces at the ends, STX or ETX")
    return args


def read_secret(path: Optional[Path]) -> str:
    """The CP secret (empty when none is configured yet); raises ValueError for an unusable one."""
    if path is not None:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from exc
    else:
        secret = config.secret_from("EVC_CP_SECRET") or ""
    if any(c in secret for c in "#\x02\x03"):
        raise ValueError("the secret may not contain '#', STX or ETX")
    return secret


def main(argv: Optional[list[str]] = None) -> int:
    """Parse arguments, start both links and the console, run until quit."""
    config.load_env()
    args = parse_args(argv)
    setup_logging(f"EV_CP_M-{args.cp_id}")
    quiet_console_logging(args.verbose)
    try:
        secret = read_secret(args.secret_file)
    except ValueError as exc:
        say(f"Cannot start: {exc}")
        return 2
    monitor = Monitor(args, secret)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: monitor.stop.set())
    say(f"Monitor of {args.cp_id}: Engine {args.engine[0]}:{args.engine[1]}, "
        f"CENTRAL {args.central[0]}:{args.central[1]}{'' if secret else ' (no secret configured)'}")
    say(HELP)
    StdinCommands(monitor.command).start()
    monitor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
