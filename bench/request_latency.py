"""Request → answer latency seen by a driver, through the real broker and a running CENTRAL.

Usage: python bench/request_latency.py <broker> <central_host:port> [--n 200]
(needs EVC_DB_ENV_FILE to register its bench CP and driver). It registers CP BENCH1 and driver
BENCHDRV, plays BENCH1's Monitor over a real socket (AUTH + STATUS every second), then times N
requests that are authorized (each then stopped by the driver) and N that are denied (CP_NOT_FOUND).
Prints p50 / p95 / p99 / max in milliseconds. A measurement, never a test.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import messages as m  # noqa: E402
from common import protocol as p  # noqa: E402
from common.bus import ZoneClient  # noqa: E402
from common.config import host_port, load_env  # noqa: E402
from common.db import Database, dsn_from, migrate  # noqa: E402
from common.framed import FramedConnection  # noqa: E402
from EV_Central_Server.central.repository import PostgresRepository  # noqa: E402

CP, DRIVER = "BENCH1", "BENCHDRV"


def percentiles(samples: list[float]) -> str:
    """p50/p95/p99/max of samples in ms."""
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return (f"n={len(s)} p50={pick(0.50):.1f} ms p95={pick(0.95):.1f} ms p99={pick(0.99):.1f} ms "
            f"max={s[-1]:.1f} ms mean={statistics.mean(s):.1f} ms")


def play_monitor(central: tuple[str, int], stop: threading.Event) -> None:
    """BENCH1's Monitor: authenticate, then STATUS OK every second."""
    conn = FramedConnection.connect(*central, peer="central")
    conn.send(p.frame("AUTH", CP, ""))
    conn.recv(5)
    while not stop.is_set():
        conn.send(p.frame("STATUS", CP, "OK"))
        stop.wait(1.0)
    conn.close()


def main() -> int:
    """Register, connect, measure, print."""
    load_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("broker")
    ap.add_argument("central")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    db = Database.connect(dsn_from(None))
    migrate(db)
    repo = PostgresRepository(db)
    repo.upsert_cp({"cp_id": CP, "address": "Banco de pruebas", "city": "Alicante", "country": "ES",
                    "price_eur_kwh": "0.30", "power_kw": "22", "zone": "default"})
    repo.add_driver(DRIVER)
    stop = threading.Event()
    threading.Thread(target=play_monitor, args=(host_port(args.central), stop), daemon=True).start()

    answers: dict[str, float] = {}
    arrived = threading.Condition()

    def on_message(env: m.Envelope) -> None:
        msg = env.message
        if isinstance(msg, (m.SupplyAuthorized, m.SupplyDenied)):
            with arrived:
                answers[msg.request_id] = time.perf_counter()
                arrived.notify_all()
            if isinstance(msg, m.SupplyAuthorized):
                client.send(m.StopSupply(msg.supply_id, "DRIVER_STOP"))
        elif isinstance(msg, m.TicketIssued):
            client.send(m.AckTicket(msg.ticket_id))

    client = ZoneClient(args.broker, "default", DRIVER, "driver", on_message)
    started = time.perf_counter()
    client.start()
    while not client.connected:
        time.sleep(0.01)
    print(f"driver channel ready in {(time.perf_counter() - started) * 1000:.0f} ms")
    time.sleep(1.5)  # let BENCH1's first STATUS reach CENTRAL before the first request

    for label, cp in (("authorized", CP), ("denied CP_NOT_FOUND", "NO_SUCH_CP")):
        samples = []
        for i in range(args.n):
            request_id = f"bench-{label[:4]}-{i}-{time.time_ns()}"
            sent = time.perf_counter()
            client.send(m.RequestSupply(cp, DRIVER, request_id))
            with arrived:
                arrived.wait_for(lambda: request_id in answers, 5)
            if request_id in answers:
                samples.append((answers[request_id] - sent) * 1000)
            if cp == CP:  # wait until the stop freed the CP
                deadline = time.time() + 5
                while time.time() < deadline and repo.list_supplies("active", CP, None, 1):
                    time.sleep(0.005)
        print(f"{label:22} {percentiles(samples)}")
    stop.set()
    client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
