"""EV_Driver: the driver app (console and file mode) over Kafka (SPEC §2, §4 steps 5-11, §5, §11).

    python EV_Driver/EV_Driver.py <broker_host:port> <client_id> [--file services.txt] [--zone default]
                                  [--wait-s 4] [--reply-timeout-s 10] [--exit-when-done]
                                  [--web-port N [--web-host 127.0.0.1]]

This is the I/O edge and the composition root: it parses arguments, builds the
zone link (``common.bus.ZoneClient``), the status reader (``common.bus.StatusReader``)
and the console, and feeds everything they produce, one event at a time, to the
I/O-free :class:`EV_Driver.session.DriverSession`, whose effects it carries out.
Threads only put events on one queue; only the main loop touches the session.

The web app (``--web-port``, package ``EV_Driver.web``) runs beside the console: it
sends lines through :meth:`DriverApp.submit` (and services files through
:meth:`DriverApp.submit_batch`), is one more effect sink in ``DriverApp.sinks``,
reads the session after every step through ``DriverApp.observers`` (on the loop
thread, so it never races the session), and sees account answers through
``DriverApp.taps``. Each logged-in driver other than ``client_id`` gets a
DriverApp of its own (its own session and zone link, no console).
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, TextIO

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import domain  # noqa: E402
from common import messages as m  # noqa: E402
from common.config import env, host_port_arg, load_env  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from EV_Driver.services import ServicesFileError, parse_services  # noqa: E402
from EV_Driver.session import (BatchDone, DriverSession, Effect, Quit, Send, Show,  # noqa: E402
                               SystemClock)

logger = logging.getLogger("EV_Driver")

DRIVER_ID_PATTERN = domain.DRIVER_ID_PATTERN
TICK_S = 0.2
MAX_LINE = 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# ---------------------------------------------------------------- arguments
def _driver_id(text: str) -> str:
    if not DRIVER_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"invalid driver id {text[:70]!r} (letters, digits, _ . @ -; 1-64)")
    return text


def _zone(text: str) -> str:
    if not m.ZONE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"invalid zone {text[:50]!r} (letters, digits, _ -; 1-40)")
    return text


def _bounded(kind, low, high, expected: str, what: str):
    """An argparse type: ``kind(text)`` between low and high; the errors name what was expected."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} out of range: {text!r}")
        return value
    return parse


_seconds = _bounded(float, 0, 3600, "seconds", "seconds")
_port = _bounded(int, 0, 65535, "a port number", "port")


def build_parser() -> argparse.ArgumentParser:
    """Positional arguments first (SPEC §2), then flags with environment defaults."""
    p = argparse.ArgumentParser(prog="EV_Driver.py", description="EV Charging Network: driver app (console and file mode)")
    p.add_argument("broker", type=host_port_arg, metavar="broker_host:port", help="Kafka bootstrap server")
    p.add_argument("client_id", type=_driver_id, help="this driver's id")
    p.add_argument("--file", default=env("EVC_DRIVER_FILE"), help="services file: one CP id per line [EVC_DRIVER_FILE]")
    p.add_argument("--zone", type=_zone, default=env("EVC_ZONE", m.DEFAULT_ZONE), help="zone [EVC_ZONE, default]")
    p.add_argument("--wait-s", type=_seconds, default=4.0, help="pause after each service in file mode (4)")
    p.add_argument("--reply-timeout-s", type=_seconds, default=10.0,
                   help="how long to wait for CENTRAL's answer to a request (10)")
    p.add_argument("--exit-when-done", action="store_true", help="exit after the file-mode summary")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=env("EVC_LOG_LEVEL", "INFO").upper(),
                   help="level of var/log/EV_Driver-<id>.jsonl [EVC_LOG_LEVEL, INFO]")
    p.add_argument("--console-log-level", type=str.upper, choices=LOG_LEVELS,
                   default=env("EVC_CONSOLE_LOG_LEVEL", "ERROR").upper(),
                   help="log level echoed on stderr [EVC_CONSOLE_LOG_LEVEL, ERROR]; the console itself is stdout")
    p.add_argument("--web-port", type=_port, default=_port(env("EVC_DRIVER_WEB_PORT", "0")),
                   help="serve the driver web app on this port (0: no web app) [EVC_DRIVER_WEB_PORT]")
    p.add_argument("--web-host", default=env("EVC_DRIVER_WEB_HOST", "127.0.0.1"),
                   help="address the web app listens on [EVC_DRIVER_WEB_HOST, 127.0.0.1; 0.0.0.0 for every interface]")
    return p


def load_services(path: str) -> list[str]:
    """Read and parse a services file; raises ServicesFileError or OSError."""
    return parse_services(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- console output
class ConsoleSink:
    """Prints Show effects: a time stamp per line, blocks as they are, colour on a terminal."""

    COLOURS = {"ok": "32", "warn": "33", "error": "31", "live": "36"}

    def __init__(self, out: TextIO):
        self.out = out
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        self._lock = threading.Lock()

    def show(self, effect: Show) -> None:
        """Print one text for the driver."""
        text = effect.text
        if effect.level != "block":
            text = f"[{datetime.now().strftime('%H:%M:%S')}] {text}"
        code = self.COLOURS.get(effect.level)
        if self.colour and code:
            text = f"\033[{code}m{text}\033[0m"
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()


# ---------------------------------------------------------------- the app
class DriverApp:
    """Owns the session, the event queue and the threads that feed it."""

    def __init__(self, args: argparse.Namespace, session: DriverSession, out: TextIO,
                 zone_client_factory: Callable[..., object], status_reader_factory: Optional[Callable[[], object]],
                 stdin: Optional[TextIO] = None):
        self.args, self.session = args, session
        self.events: queue.Queue = queue.Queue()
        self.sinks: list[Callable[[Show], None]] = [ConsoleSink(out).show] if out is not None else []
        self.taps: list[Callable[[m.Message], None]] = []  # zone thread: every message from CENTRAL
        self.link_taps: list[Callable[[bool], None]] = []  # zone thread: link changes
        self.status_taps: list[Callable[[m.NetworkStatus], None]] = []  # status thread: every NetworkStatus
        self.observers: list[Callable[[DriverSession], None]] = []  # loop thread: after every step
        self.stdin = stdin
        self.client = zone_client_factory(on_message=self._on_message, on_link=self._on_link)
        self.status_reader_factory = status_reader_factory
        self._stop = threading.Event()
        self.exit_code = 0

    # ---- inputs (any thread) ----
    def submit(self, line: str) -> None:
        """A console line from any front-end."""
        self.events.put(("line", line[:MAX_LINE]))

    def submit_batch(self, cp_ids: list[str]) -> None:
        """Start file mode with these CP ids (the web app's upload)."""
        self.events.put(("batch", list(cp_ids)))

    def feed(self, message: m.Message) -> None:
        """A message from elsewhere (the network status, shared by the web app's drivers)."""
        self.events.put(("msg", message))

    def poke(self) -> None:
        """Run a step soon (observers see fresh data)."""
        self.events.put(("tick", None))

    def _on_message(self, env: m.Envelope) -> None:
        self._call(self.taps, env.message)
        self.events.put(("msg", env.message))

    def _on_link(self, up: bool) -> None:
        self.events.put(("link", up))
        self._call(self.link_taps, up)

    @staticmethod
    def _call(callbacks: list, value) -> None:
        for callback in callbacks:
            try:
                callback(value)
            except Exception:  # one front-end's bug never stops the driver
                logger.exception("callback %r failed for %r", callback, value)

    def request_quit(self) -> None:
        """Leave the main loop (signals, other front-ends)."""
        self.events.put(("quit", None))

    def _read_stdin(self) -> None:
        assert self.stdin is not None
        for line in self.stdin:
            self.submit(line)
        logger.info("standard input closed; still running until 'quit' or a signal")

    def _read_status(self) -> None:
        reader = None
        while not self._stop.is_set():
            try:
                if reader is None:
                    reader = self.status_reader_factory()
                for env in reader.poll(timeout_ms=500):
                    if isinstance(env.message, m.NetworkStatus):
                        self.events.put(("msg", env.message))
                        self._call(self.status_taps, env.message)
            except Exception as exc:  # broker away: retry with a fresh reader
                logger.warning("status reader: %s; retrying", exc)
                reader = self._close_reader(reader)
                self._stop.wait(1.0)
        self._close_reader(reader)

    @staticmethod
    def _close_reader(reader) -> None:
        if reader is not None:
            try:
                reader.close()
            except Exception:
                pass
        return None

    # ---- the loop (main thread) ----
    def run(self, services: Optional[list[str]]) -> int:
        """Serve until quit; returns the exit code."""
        threads = []
        if self.status_reader_factory is not None:
            threads.append(threading.Thread(target=self._read_status, name="status", daemon=True))
        if self.stdin is not None:
            threads.append(threading.Thread(target=self._read_stdin, name="stdin", daemon=True))
        self._apply([Show(f"EV Driver {self.session.driver_id} · zona {self.args.zone} · broker "
                          f"{self.args.broker_text}. Escribe 'help' para ver las órdenes.")])
        self.client.start()
        for t in threads:
            t.start()
        if services:
            self._apply(self.session.start_batch(services))
        try:
            while not self._stop.is_set():
                self._step()
        finally:
            self._stop.set()
            self.client.stop()
            for t in threads:
                if t.name == "status":
                    t.join(timeout=3)
        return self.exit_code

    def _step(self) -> None:
        try:
            kind, value = self.events.get(timeout=TICK_S)
        except queue.Empty:
            kind, value = "tick", None
        if kind == "quit":
            self._stop.set()
            return
        handler = {"line": self.session.command, "msg": self.session.handle,
                   "link": self.session.link_changed, "batch": self.session.start_batch}.get(kind)
        self._apply((handler(value) if handler else []) + self.session.tick())
        self._call(self.observers, self.session)

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Show):
                for sink in self.sinks:
                    try:
                        sink(effect)
                    except Exception:
                        logger.exception("display sink failed for %r", effect)
            elif isinstance(effect, Send):
                self.client.send(effect.message)
            elif isinstance(effect, Quit):
                self._stop.set()
            elif isinstance(effect, BatchDone):
                self._batch_done(effect)

    def _batch_done(self, effect: BatchDone) -> None:
        if self.args.exit_when_done:
            self._stop.set()
            self.exit_code = 0
        else:
            self._apply([Show("Fichero terminado; sigue el modo consola ('help' para ver las órdenes).")])


# ---------------------------------------------------------------- composition root
def main(argv: Optional[list[str]] = None) -> int:
    """Parse arguments, build the adapters and run the driver until quit."""
    load_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.broker_text = f"{args.broker[0]}:{args.broker[1]}"
    services = None
    if args.file:
        try:
            services = load_services(args.file)
        except ServicesFileError as exc:
            parser.exit(2, f"EV_Driver.py: services file {args.file}: {exc}\n")
        except OSError as exc:
            parser.exit(2, f"EV_Driver.py: cannot read services file {args.file}: {exc.strerror or exc}\n")
    _setup_logging(args)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")

    from common.bus import StatusReader, ZoneClient  # kafka is imported only when the app runs

    session = DriverSession(args.client_id, SystemClock(), reply_timeout_s=args.reply_timeout_s, wait_s=args.wait_s)
    app = DriverApp(
        args, session, sys.stdout,
        zone_client_factory=lambda **cb: ZoneClient(args.broker_text, args.zone, args.client_id, "driver", **cb),
        status_reader_factory=lambda: StatusReader(args.broker_text, args.zone),
        stdin=sys.stdin,
    )
    hub = start_web(args, app, ZoneClient) if args.web_port else None
    signal.signal(signal.SIGTERM, lambda *_: app.request_quit())
    try:
        return app.run(services)
    except KeyboardInterrupt:
        return 130
    finally:
        if hub is not None:
            hub.stop()


def start_web(args: argparse.Namespace, home: DriverApp, zone_client_cls) -> object:
    """Serve the driver web app (EV_Driver.web) on a thread beside the console; returns its hub."""
    from common.config import var_dir
    from common.web import local_url, serve
    from EV_Driver.web import create_app
    from EV_Driver.web.hub import DriverHub, TicketStore, secret_key

    web_args = argparse.Namespace(**{**vars(args), "exit_when_done": False})

    def make_app(driver_id: str) -> DriverApp:
        session = DriverSession(driver_id, SystemClock(), reply_timeout_s=args.reply_timeout_s, wait_s=args.wait_s)
        return DriverApp(web_args, session, None, status_reader_factory=None,
                         zone_client_factory=lambda **cb: zone_client_cls(args.broker_text, args.zone, driver_id,
                                                                          "driver", **cb))

    folder = var_dir() / "driver-web"
    hub = DriverHub(home, make_app, TicketStore(folder))
    flask_app = create_app(hub, {"SECRET_KEY": secret_key(folder / "secret_key")})
    url = local_url(args.web_host, args.web_port)
    try:
        serve(flask_app, args.web_host, args.web_port)
    except OSError as exc:
        home._apply([Show(f"No se pudo abrir la app web en {args.web_host}:{args.web_port}: {exc.strerror or exc}",
                          "error")])
        return hub
    home._apply([Show(f"App web del conductor en {url}")])
    return hub


def _setup_logging(args: argparse.Namespace) -> None:
    setup_logging(f"EV_Driver-{args.client_id}", args.log_level)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # stderr, not the JSON file
            handler.setLevel(args.console_log_level)
            if args.console_log_level != "DEBUG":  # kafka-python's own chatter stays in the log file
                handler.addFilter(lambda record: not record.name.startswith("kafka"))


if __name__ == "__main__":
    sys.exit(main())
