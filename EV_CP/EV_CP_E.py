#!/usr/bin/env python3
"""EV_CP_E: the charging point's Engine (the charger).

``python EV_CP/EV_CP_E.py <broker_host:port> [--listen-port 6001] [--time-scale 60]
[--auto-plug S] [--auto-unplug S] [--state-dir var/engine] [--web-port N [--web-host 127.0.0.1]]``

It serves one Monitor at a time on the listen port, answers its HEALTH checks, learns the CP's identity from CP_INFO and
then talks to CENTRAL over its Kafka zone channel. All decisions are taken by
``EV_CP.engine_core.EngineCore`` in one thread (the event loop below); the other
threads -- listener, Monitor reader/writer, Kafka client, stdin -- only put
events on a queue, so the state never needs a lock.

Console (lines on stdin, or single keys on a terminal): k force KO, o recover,
p plug, u unplug, r request an anonymous supply, s status, q quit.

A new connection on the listen port takes the Monitor's place only when the current
session is closed (EOF/EOT) or has sent no HEALTH for the monitor timeout (3 s); while
the current Monitor is live the newcomer is told EOT and closed (and logged), so a stray
or hostile connection cannot knock the real Monitor off. The newcomer waits up to
``NEWCOMER_GRACE_S`` for that decision: a restarted Monitor may connect a moment before
its old connection's EOF reaches the event loop, and is then accepted as soon as it does.

Owner panel (``--web-port``, package ``EV_CP.panel``): its buttons put the same keys
on the same queue; the loop hands it a fresh view after every event and tick
(``EV_CP.panel.view.panel_view``) and every operator line.
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
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Callable, Optional  # noqa: E402

from common import config  # noqa: E402
from common import messages as m  # noqa: E402
from common import protocol as p  # noqa: E402
from common.bus import ZoneClient  # noqa: E402
from common.framed import FramedConnection, LinkClosed  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from EV_CP import engine_core as core_mod  # noqa: E402
from EV_CP.console import StdinCommands, quiet_console_logging, say  # noqa: E402
from EV_CP.engine_core import EngineCore  # noqa: E402
from EV_CP.engine_store import SupplyStore  # noqa: E402

logger = logging.getLogger("EV_CP_E")

TICK_S = 0.25
PERSIST_EVERY_S = 1.0
NEWCOMER_GRACE_S = 0.5  # how long a new Monitor connection waits for the current one's EOF before refusal
HELP = "commands: k force KO | o recover | p plug | u unplug | r request supply | s status | q quit"


class MonitorLink:
    """One Monitor session: frames in via a reader thread, frames out via a writer thread.

    The writer exists so the event loop never blocks waiting for the Monitor's ACKs.
    """

    def __init__(self, conn: FramedConnection, generation: int, events: "queue.Queue[tuple]"):
        self.conn, self.generation, self.events = conn, generation, events
        self._out: "queue.Queue[Optional[p.Frame]]" = queue.Queue()
        threading.Thread(target=self._read, name=f"monitor-in-{generation}", daemon=True).start()
        threading.Thread(target=self._write, name=f"monitor-out-{generation}", daemon=True).start()

    def send(self, frame: p.Frame) -> None:
        """Queue a frame for the Monitor."""
        self._out.put(frame)

    def close(self) -> None:
        """End the session (EOT)."""
        self._out.put(None)
        self.conn.close()

    def _read(self) -> None:
        try:
            while True:
                frame = self.conn.recv(0.5)
                if frame is not None:
                    self.events.put(("frame", self.generation, frame))
        except LinkClosed:
            self.events.put(("monitor_eof", self.generation))

    def _write(self) -> None:
        while (frame := self._out.get()) is not None:
            try:
                if not self.conn.send(frame, timeout_s=2.0):
                    logger.warning("Monitor did not acknowledge %s", frame.opcode)
            except LinkClosed:
                return


class Listener:
    """Accepts Monitor connections and hands each one to the event loop."""

    def __init__(self, host: str, port: int, events: "queue.Queue[tuple]"):
        self.events = events
        self.server = socket.create_server((host, port), reuse_port=False)
        self.server.settimeout(1.0)
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="listener", daemon=True).start()

    def close(self) -> None:
        """Stop accepting."""
        self._stop.set()
        self.server.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.events.put(("monitor_conn", sock, f"{addr[0]}:{addr[1]}"))


class Engine:
    """The event loop: feeds events to the core and carries out its effects."""

    def __init__(self, args: argparse.Namespace, core: EngineCore, store: SupplyStore,
                 clock: Callable[[], float] = time.time):
        self.args, self.core, self.store, self.clock = args, core, store, clock
        self.events: "queue.Queue[tuple]" = queue.Queue()
        self.link: Optional[MonitorLink] = None
        self._newcomer: Optional[tuple[socket.socket, str, float]] = None  # (sock, peer, refuse at)
        self.zone: Optional[ZoneClient] = None
        self._generation = 0
        self._running = True
        self._persist_failing = False
        self.panel = None  # EV_CP.panel.bridge.PanelBridge when --web-port is given

    def say(self, text: str) -> None:
        """An operator line: the console, and the panel when there is one."""
        say(text)
        if self.panel is not None:
            self.panel.say(text)

    def _publish_view(self, now: float) -> None:
        if self.panel is None:
            return
        from EV_CP.panel.view import panel_view
        try:
            self.panel.publish(panel_view(self.core, now, self.panel.message_list()))
        except Exception:  # the panel must never stop the charger
            logger.exception("panel view failed")

    # ---- loop ----
    def run(self, listener: Listener) -> None:
        """Serve until quit."""
        next_tick = next_persist = 0.0
        while self._running:
            try:
                self._on_event(self.events.get(timeout=TICK_S))
            except queue.Empty:
                pass
            now = self.clock()
            if now >= next_tick:
                self._apply(self.core.tick(now))
                next_tick = now + TICK_S
            self._settle_newcomer(now)
            if now >= next_persist:
                self._check_acks()
                next_persist = now + PERSIST_EVERY_S
            self._persist()
            self._publish_view(now)
        self._shutdown(listener)

    def _on_event(self, event: tuple) -> None:
        kind, now = event[0], self.clock()
        try:
            handler = EVENT_HANDLERS[kind]
        except KeyError:
            logger.error("unknown event %r", kind)
            return
        try:
            handler(self, event, now)
        except Exception:  # our bug: log it and keep serving
            logger.exception("handling %r failed", event[:2])

    # ---- event handlers ----
    def _on_monitor_conn(self, event: tuple, now: float) -> None:
        _, sock, peer = event
        if self._monitor_replaceable(now):
            self._accept_monitor(sock, peer, now)
            return
        if self._newcomer is not None:  # only one waits: the older one is refused now
            self._refuse_monitor(*self._newcomer[:2])
        self._newcomer = (sock, peer, now + NEWCOMER_GRACE_S)

    def _monitor_replaceable(self, now: float) -> bool:
        """No live Monitor session: none, closed (EOF/EOT seen by its reader), or silent for the timeout."""
        return self.link is None or self.link.conn.closed.is_set() or self.core.monitor_replaceable(now)

    def _settle_newcomer(self, now: float) -> None:
        """A waiting connection takes the place once the current Monitor is gone, or is refused after the grace."""
        if self._newcomer is None:
            return
        sock, peer, refuse_at = self._newcomer
        if self._monitor_replaceable(now):
            self._newcomer = None
            self._accept_monitor(sock, peer, now)
        elif now >= refuse_at:
            self._newcomer = None
            self._refuse_monitor(sock, peer)

    def _accept_monitor(self, sock: socket.socket, peer: str, now: float) -> None:
        if self.link is not None:
            self.say(f"A new Monitor connected from {peer}: it replaces the previous one (closed or silent)")
            self.link.close()
        self._generation += 1
        self.link = MonitorLink(FramedConnection(sock, f"monitor {peer}"), self._generation, self.events)
        self._apply(self.core.monitor_connected(now))

    def _refuse_monitor(self, sock: socket.socket, peer: str) -> None:
        """The current Monitor is live: tell the newcomer EOT and close it (no session, no NACK)."""
        self.say(f"Refused a connection from {peer}: the current Monitor is live")
        logger.warning("refused a Monitor connection from %s: the current Monitor is live", peer)
        try:
            sock.settimeout(1.0)
            sock.sendall(p.control(p.EOT))
            sock.shutdown(socket.SHUT_WR)
            _drain(sock)  # unread input (its ENQ) would turn the close into a reset that can swallow the EOT
        except OSError:
            pass
        finally:
            sock.close()

    def _on_monitor_eof(self, event: tuple, now: float) -> None:
        if self.link is None or event[1] != self.link.generation:
            return  # a replaced session
        self.link = None
        self._apply(self.core.monitor_lost("connection closed", now))
        self._settle_newcomer(now)  # a restarted Monitor that connected just before this EOF: accept it now

    def _on_frame(self, event: tuple, now: float) -> None:
        _, generation, frame = event
        if self.link is None or generation != self.link.generation:
            return
        handler = FRAME_HANDLERS.get(frame.opcode)
        if handler is None:
            logger.warning("opcode %s not handled by the engine", frame.opcode)
            return
        handler(self, frame, now)

    def _on_cp_info(self, frame: p.Frame, now: float) -> None:
        info = core_mod.CpInfo(**frame.as_dict())
        persisted = self.store.load(info.cp_id) if self.core.info is None else None
        self._apply(self.core.cp_info(info, persisted, now))

    def _on_health(self, frame: p.Frame, now: float) -> None:
        self._apply(self.core.monitor_health(frame.fields[0], now))

    def _on_central(self, frame: p.Frame, now: float) -> None:
        self._apply(self.core.central_link(frame.fields[0] == p.LINK_UP))

    def _on_kafka(self, event: tuple, now: float) -> None:
        self._apply(self.core.handle(event[1], now))

    def _on_kafka_link(self, event: tuple, now: float) -> None:
        self._apply(self.core.kafka_link(event[1]))

    def _on_command(self, event: tuple, now: float) -> None:
        key = event[1][:1].lower()
        if key == "q":
            self.say("Quitting")
            self._running = False
        elif key == "s":
            self.say(self.core.status_text(now))
        elif key in OPERATOR_KEYS:
            self._apply(OPERATOR_KEYS[key](self.core, now))
        else:
            self.say(HELP)

    # ---- effects ----
    def _apply(self, effects: list) -> None:
        for effect in effects:
            if isinstance(effect, core_mod.Say):
                self.say(effect.text)
            elif isinstance(effect, core_mod.Publish):
                self._publish(effect.message)
            elif isinstance(effect, core_mod.ReplyHealth):
                if self.link is not None:
                    self.link.send(p.frame("HEALTH_REPLY", effect.seq, effect.engine))
            elif isinstance(effect, core_mod.ConnectKafka):
                self._connect_kafka(effect.cp_id, effect.zone)

    def _publish(self, message: m.Message) -> None:
        if self.zone is None:
            logger.error("no zone channel yet; %s not sent", message.type_name())
            return
        self.zone.send(message)
        logger.info("sent %r", message)

    def _connect_kafka(self, cp_id: str, zone: str) -> None:
        if self.zone is not None:
            self.zone.stop()
            self._apply(self.core.kafka_link(False))
        self.say(f"Opening the Kafka zone channel ({self.args.broker}, zone {zone})")
        self.zone = ZoneClient(self.args.broker, zone, cp_id, "engine",
                               on_message=lambda env: self.events.put(("kafka", env.message)),
                               on_link=lambda up: self.events.put(("kafka_link", up)),
                               hello_supply=self.core.hello_supply)
        self.zone.start()

    def _check_acks(self) -> None:
        if self.zone is None:
            return
        pending = {msg.supply_id for msg in self.zone.outbox.pending() if isinstance(msg, m.SupplyFinished)}
        self._apply(self.core.finals_acked(pending))

    def _persist(self) -> None:
        cp_id = self.core.cp_id
        if cp_id is None:
            return
        try:
            if self.core.has_state():
                self.store.save(cp_id, self.core.snapshot())
            else:
                self.store.delete(cp_id)
        except OSError as exc:
            if not self._persist_failing:  # say it once, not four times a second
                self.say(f"Cannot write the supply state file ({exc}); a crash now would lose the running supply")
                logger.error("cannot write the supply state file: %s", exc)
            self._persist_failing = True
            return
        if self._persist_failing:
            self.say("Supply state file written again")
            self._persist_failing = False

    def _shutdown(self, listener: Listener) -> None:
        self._persist()
        if self.core.supply is not None:
            self.say(f"Supply {self.core.supply.supply_id} stays on disk; it is closed when the engine restarts")
        listener.close()
        if self._newcomer is not None:
            self._newcomer[0].close()
        if self.link is not None:
            self.link.close()
        if self.zone is not None:
            self.zone.stop()


def _drain(sock: socket.socket, limit: int = 65536) -> None:
    """Read and drop whatever a refused peer already sent (bounded, without waiting)."""
    sock.setblocking(False)
    while limit > 0:
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            return
        limit -= len(data)


EVENT_HANDLERS: dict[str, Callable[[Engine, tuple, float], None]] = {
    "monitor_conn": Engine._on_monitor_conn,
    "monitor_eof": Engine._on_monitor_eof,
    "frame": Engine._on_frame,
    "kafka": Engine._on_kafka,
    "kafka_link": Engine._on_kafka_link,
    "cmd": Engine._on_command,
}
FRAME_HANDLERS: dict[str, Callable[[Engine, p.Frame, float], None]] = {
    "CP_INFO": Engine._on_cp_info,
    "HEALTH": Engine._on_health,
    "CENTRAL": Engine._on_central,
}
OPERATOR_KEYS: dict[str, Callable[[EngineCore, float], list]] = {
    "k": EngineCore.force_ko,
    "o": EngineCore.recover,
    "p": EngineCore.plug,
    "u": EngineCore.unplug,
    "r": EngineCore.request_supply,
}


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """Positional broker address first, then flags with environment defaults."""
    parser = argparse.ArgumentParser(prog="EV_CP_E.py", description="Charging point Engine")
    parser.add_argument("broker", help="Kafka bootstrap server host:port")
    parser.add_argument("--listen-port", type=int, default=int(config.env("EVC_ENGINE_PORT", "6001")),
                        help="port where the Monitor connects (default 6001, env EVC_ENGINE_PORT)")
    parser.add_argument("--listen-host", default=config.env("EVC_ENGINE_HOST", "0.0.0.0"))
    parser.add_argument("--time-scale", type=float, default=float(config.env("EVC_TIME_SCALE", "60")),
                        help="simulated seconds per real second for the energy figures (default 60)")
    parser.add_argument("--auto-plug", type=float, metavar="S", default=None,
                        help="plug in automatically S seconds after an authorization (unattended demos)")
    parser.add_argument("--auto-unplug", type=float, metavar="S", default=None,
                        help="unplug automatically after S seconds of charging")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where the running supply is persisted (default <EVC_VAR>/engine)")
    parser.add_argument("--web-port", type=int, default=int(config.env("EVC_ENGINE_WEB_PORT", "0")),
                        help="serve the owner panel on this port (0: no panel; env EVC_ENGINE_WEB_PORT)")
    parser.add_argument("--web-host", default=config.env("EVC_ENGINE_WEB_HOST", "127.0.0.1"),
                        help="address the panel listens on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--central-url", default=config.env("EVC_CENTRAL_URL", ""),
                        help="link to CENTRAL's Front shown on the panel (env EVC_CENTRAL_URL)")
    parser.add_argument("--verbose", action="store_true", help="also show info logs on stderr")
    args = parser.parse_args(argv)
    try:
        config.host_port(args.broker)
    except ValueError as exc:
        parser.error(str(exc))
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if not 0 <= args.web_port <= 65535:
        parser.error("--web-port must be a port number (0: no panel)")
    for flag, value in (("--auto-plug", args.auto_plug), ("--auto-unplug", args.auto_unplug)):
        if value is not None and value < 0:
            parser.error(f"{flag} must not be negative")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    """Parse arguments, build the engine, serve until quit."""
    config.load_env()
    args = parse_args(argv)
    setup_logging(f"EV_CP_E-{args.listen_port}")
    quiet_console_logging(args.verbose)
    store = SupplyStore(args.state_dir or config.var_dir() / "engine")
    core = EngineCore(args.time_scale, args.auto_plug, args.auto_unplug)
    engine = Engine(args, core, store)
    try:
        listener = Listener(args.listen_host, args.listen_port, engine.events)
    except OSError as exc:
        say(f"Cannot listen on {args.listen_host}:{args.listen_port}: {exc}")
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: engine.events.put(("cmd", "q")))
    if args.web_port:
        start_panel(args, engine)
    console = StdinCommands(lambda line: engine.events.put(("cmd", line)), single_keys=True)
    say(f"Engine listening for its Monitor on {args.listen_host}:{args.listen_port}; broker {args.broker}")
    say(HELP)
    console.start()
    try:
        engine.run(listener)
    finally:
        console.restore()
    return 0


def start_panel(args: argparse.Namespace, engine: Engine) -> None:
    """Serve the owner panel (EV_CP.panel) on a thread; its buttons feed the engine's queue."""
    from common.web import local_url, serve
    from EV_CP.panel import create_app
    from EV_CP.panel.bridge import PanelBridge

    engine.panel = PanelBridge(lambda key: engine.events.put(("cmd", key)))
    app = create_app(engine.panel, {"CENTRAL_URL": args.central_url})
    try:
        serve(app, args.web_host, args.web_port)
    except OSError as exc:
        engine.say(f"Cannot serve the panel on {args.web_host}:{args.web_port}: {exc.strerror or exc}")
        return
    engine.say(f"Engine panel on {local_url(args.web_host, args.web_port)}")


if __name__ == "__main__":
    sys.exit(main())
