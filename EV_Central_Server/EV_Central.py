"""EV_Central: CENTRAL's backend — Monitor sockets, Kafka, PostgreSQL, API_Central and operator console.

Usage: python EV_Central_Server/EV_Central.py <listen_port> <broker_host:port> [<db_host:port>]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.serving import make_server  # noqa: E402

from common.config import env, host_port_arg, load_env  # noqa: E402
from common.db import Database, dsn_from, migrate  # noqa: E402
from common.logs import setup_logging  # noqa: E402
from EV_Central_Server.central.api import create_app  # noqa: E402
from EV_Central_Server.central.console import OperatorConsole  # noqa: E402
from EV_Central_Server.central.kafka_side import CentralBus  # noqa: E402
from EV_Central_Server.central.monitor_server import MonitorServer  # noqa: E402
from EV_Central_Server.central.repository import BackgroundJournal, PostgresRepository  # noqa: E402
from EV_Central_Server.central.routing import KafkaRouter  # noqa: E402
from EV_Central_Server.central.service import CentralService  # noqa: E402

logger = logging.getLogger("EV_Central")


def parse_args(argv):
    """Positional arguments per SPEC §2, everything else a flag with an environment default."""
    ap = argparse.ArgumentParser(prog="EV_Central", description=__doc__.splitlines()[0])
    ap.add_argument("listen_port", type=int, help="TCP port for Monitors (default deployment: 8020)")
    ap.add_argument("broker", type=host_port_arg, help="Kafka bootstrap host:port")
    ap.add_argument("db", nargs="?", default=None, help="PostgreSQL host:port (default EVC_DB_HOST:EVC_DB_PORT)")
    ap.add_argument("--listen-host", default=env("EVC_CENTRAL_HOST", "0.0.0.0"))
    ap.add_argument("--api-port", type=int, default=int(env("EVC_API_PORT", "8000")))
    ap.add_argument("--api-host", default=env("EVC_API_HOST", "0.0.0.0"))
    ap.add_argument("--auth-timeout", type=float, default=float(env("EVC_AUTH_TIMEOUT_S", "60")),
                    help="seconds an authorization waits for the plug")
    ap.add_argument("--lease-s", type=int, default=int(env("EVC_LEASE_S", "600")))
    ap.add_argument("--group", default=env("EVC_KAFKA_GROUP", "evc-central"),
                    help="Kafka consumer group shared by CENTRAL instances")
    ap.add_argument("--no-console", action="store_true", help="do not read operator commands from stdin")
    return ap.parse_args(argv)


def start_thread(target, name: str) -> threading.Thread:
    """A daemon thread that logs, instead of dying silently, when its loop fails."""
    def guarded():
        try:
            target()
        except Exception:
            logger.exception("thread %s stopped", name)
    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def every(seconds: float, action, name: str) -> None:
    """Run an action periodically in its own thread; one failure never stops the timer."""
    def loop():
        while True:
            time.sleep(seconds)
            try:
                action()
            except Exception:
                logger.exception("periodic task %s failed", name)
    start_thread(loop, name)


def main(argv=None) -> int:
    """Build the adapters, load state from the DB and serve until killed."""
    load_env()
    args = parse_args(argv)
    os.environ.setdefault("EVC_COMPONENT", "EV_Central")
    setup_logging("EV_Central")
    started = time.monotonic()
    broker = "%s:%d" % args.broker
    db = Database.connect(dsn_from(args.db), attempts=60)
    migrate(db)
    repo = PostgresRepository(db)
    bus = CentralBus(broker, repo, lease_s=args.lease_s, group=args.group)
    status_due = threading.Event()
    service = CentralService(repo, bus, auth_timeout_s=args.auth_timeout, on_change=status_due.set,
                             journal=BackgroundJournal(db))
    service.load()
    bus.start(service.zones(), KafkaRouter(service, bus, ThreadPoolExecutor(2, thread_name_prefix="accounts")))

    monitor_server = MonitorServer(service, args.listen_host, args.listen_port)
    start_thread(monitor_server.run_forever, "monitor-server")
    api = make_server(args.api_host, args.api_port, create_app(service, repo), threaded=True)
    start_thread(api.serve_forever, "api-central")

    def publish_status():
        """On change and at least every 2 s; bursts coalesce, and a big network waits longer so that
        building the status never takes more than a fifth of the time (about 1 s at 10,000 CPs)."""
        status_due.wait(2.0)
        status_due.clear()
        started = time.monotonic()
        bus.publish_status(service.snapshot())
        time.sleep(max(0.5, 4 * (time.monotonic() - started)))

    every(0.5, service.check_links, "silent-links")
    every(1.0, service.expire_authorizations, "auth-expiry")
    every(5.0, lambda: repo.save_live_figures(service.live_figures()), "live-figures")
    every(5.0, service.resend_tickets, "ticket-resend")
    every(5.0, service.sync_registered, "registered-cps")
    every(0.0, publish_status, "status-publisher")
    monitor_server.ready.wait(10)
    print(f"CENTRAL listo en {time.monotonic() - started:.1f} s: Monitors en :{args.listen_port}, "
          f"API_Central en http://{args.api_host}:{args.api_port}/api/charging_points, Kafka {broker}", flush=True)
    if not args.no_console and sys.stdin is not None and not sys.stdin.closed:
        if OperatorConsole(service).run():
            return 0
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
