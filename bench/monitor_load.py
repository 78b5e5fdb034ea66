"""Load on CENTRAL's Monitor socket server: N simulated Monitors, each sending STATUS every second.

Usage: python bench/monitor_load.py <central_host:port> [--monitors 2000] [--seconds 30] [--prefix LOAD]
(needs EVC_DB_ENV_FILE: it registers LOAD00000… in bulk). One asyncio loop plays every Monitor
(ENQ, AUTH, then STATUS#id#OK every second with a random phase) and measures the time from sending a
frame to its ACK. Prints connected monitors, frames/s and ACK latency percentiles. Not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import protocol as p  # noqa: E402
from common.config import host_port, load_env  # noqa: E402
from common.db import Database, dsn_from, migrate  # noqa: E402


def register(prefix: str, n: int) -> list[str]:
    """Register n bench CPs in one transaction."""
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    db = Database.connect(dsn_from(None))
    migrate(db)
    with db.transaction() as cur:
        cur.executemany("INSERT INTO charging_points (cp_id, address, city, price_eur_kwh, power_kw) "
                        "VALUES (%s, 'Banco de pruebas', 'Alicante', 0.30, 22) ON CONFLICT DO NOTHING",
                        [(i,) for i in ids])
    db.close()
    return ids


async def monitor(host: str, port: int, cp_id: str, until: float, latencies: list[float], counts: dict) -> None:
    """One simulated Monitor."""
    reader, writer = await asyncio.open_connection(host, port)
    frames = p.FrameReader()

    async def ack() -> bool:
        while True:
            for item in frames:
                if isinstance(item, p.Control) and item.byte in (p.ACK, p.NACK):
                    return item.byte == p.ACK
                if isinstance(item, p.Frame):
                    writer.write(p.control(p.ACK))
            data = await reader.read(4096)
            if not data:
                return False
            frames.feed(data)

    writer.write(p.control(p.ENQ))
    await ack()
    writer.write(p.encode(p.frame("AUTH", cp_id, "")))
    await ack()
    counts["connected"] += 1
    await asyncio.sleep(random.random())
    status = p.encode(p.frame("STATUS", cp_id, "OK"))
    while time.monotonic() < until:
        sent = time.perf_counter()
        writer.write(status)
        if await ack():
            if counts["connected"] == counts["total"]:  # steady state only: every Monitor is connected
                latencies.append((time.perf_counter() - sent) * 1000)
                counts["frames"] += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - sent)))
    writer.write(p.control(p.EOT))
    writer.close()


async def run(central: tuple[str, int], ids: list[str], seconds: float) -> None:
    """Start every Monitor (ramped), wait, report."""
    latencies: list[float] = []
    counts = {"connected": 0, "frames": 0, "total": len(ids)}
    until = time.monotonic() + seconds
    tasks = []
    for cp_id in ids:
        tasks.append(asyncio.create_task(monitor(*central, cp_id, until, latencies, counts)))
        if len(tasks) % 200 == 0:
            await asyncio.sleep(0.05)
    while counts["connected"] < len(ids) and time.monotonic() < until:
        await asyncio.sleep(0.05)
    started = time.monotonic()
    print(f"all {counts['connected']} Monitors authenticated after {started - (until - seconds):.1f} s")
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    s = sorted(latencies)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")  # noqa: E731
    print(f"monitors={len(ids)} connected={counts['connected']} errors={len(errors)} "
          f"frames={counts['frames']} ({counts['frames'] / max(time.monotonic() - started, 1e-9):.0f}/s)")
    print(f"STATUS->ACK p50={pick(0.5):.2f} ms p95={pick(0.95):.2f} ms p99={pick(0.99):.2f} ms max={s[-1] if s else 0:.2f} ms")
    if errors:
        print("first error:", repr(errors[0]))


def main() -> int:
    """Register the CPs and run the load."""
    load_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("central")
    ap.add_argument("--monitors", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--prefix", default="LOAD")
    args = ap.parse_args()
    ids = register(args.prefix, args.monitors)
    asyncio.run(run(host_port(args.central), ids, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
