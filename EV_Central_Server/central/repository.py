"""PostgreSQL repository of CENTRAL: every read and write of its tables, in short transactions."""
from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

from common.db import Database

logger = logging.getLogger(__name__)
CP_COLUMNS = "cp_id, address, city, country, price_eur_kwh, power_kw, zone, out_of_service, engine_ok"
SUPPLY_COLUMNS = ("supply_id, request_id, cp_id, driver_id, phase, price_eur_kwh, authorized_at, expires_at, "
                  "started_at, ended_at, energy_kwh, amount_eur, power_kw, end_reason")
TICKET_COLUMNS = ("ticket_id, supply_id, cp_id, driver_id, started_at, ended_at, duration_s, energy_kwh, "
                  "price_eur_kwh, amount_eur, reason, issued_at, acked_at")


class PostgresRepository:
    """CENTRAL's persistence port, backed by PostgreSQL."""

    def __init__(self, db: Database):
        self.db = db

    # ---- charging points and drivers ----
    def load_cps(self) -> list[dict]:
        """Every registered CP."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {CP_COLUMNS} FROM charging_points ORDER BY cp_id")
            return list(cur.fetchall())

    def get_cp(self, cp_id: str) -> Optional[dict]:
        """One CP, or None."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {CP_COLUMNS} FROM charging_points WHERE cp_id = %s", (cp_id,))
            return cur.fetchone()

    def save_cp_flags(self, cp_id: str, out_of_service: list[str], engine_ok: bool) -> None:
        """Persist a CP's out-of-service reasons and engine health."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE charging_points SET out_of_service = %s, engine_ok = %s WHERE cp_id = %s",
                        (sorted(out_of_service), engine_ok, cp_id))

    def upsert_cp(self, cp: dict) -> None:
        """Register or update a CP (admin command)."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO charging_points (cp_id, address, city, country, price_eur_kwh, power_kw, zone) "
                "VALUES (%(cp_id)s, %(address)s, %(city)s, %(country)s, %(price_eur_kwh)s, %(power_kw)s, %(zone)s) "
                "ON CONFLICT (cp_id) DO UPDATE SET address = EXCLUDED.address, city = EXCLUDED.city, "
                "country = EXCLUDED.country, price_eur_kwh = EXCLUDED.price_eur_kwh, "
                "power_kw = EXCLUDED.power_kw, zone = EXCLUDED.zone", cp)

    def delete_cp(self, cp_id: str) -> bool:
        """Remove a CP; False when unknown."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM charging_points WHERE cp_id = %s", (cp_id,))
            return cur.rowcount > 0

    def driver_exists(self, driver_id: str) -> bool:
        """Whether a driver is registered."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM drivers WHERE driver_id = %s", (driver_id,))
            return cur.fetchone() is not None

    def add_driver(self, driver_id: str, password_hash: Optional[str] = None) -> bool:
        """Register a driver; False when the id already exists (nothing changes then)."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO drivers (driver_id, password_hash) VALUES (%s, %s) "
                        "ON CONFLICT (driver_id) DO NOTHING", (driver_id, password_hash))
            return cur.rowcount > 0

    def set_driver_password(self, driver_id: str, password_hash: str) -> bool:
        """Replace a driver's password hash; False when the driver does not exist."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE drivers SET password_hash = %s WHERE driver_id = %s", (password_hash, driver_id))
            return cur.rowcount > 0

    def driver_password_hash(self, driver_id: str) -> Optional[str]:
        """The stored password hash of a driver, or None."""
        with self.db.transaction() as cur:
            cur.execute("SELECT password_hash FROM drivers WHERE driver_id = %s", (driver_id,))
            row = cur.fetchone()
            return row["password_hash"] if row else None

    def last_ticket(self, driver_id: str) -> Optional[dict]:
        """A driver's newest ticket."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE driver_id = %s ORDER BY issued_at DESC LIMIT 1",
                        (driver_id,))
            return cur.fetchone()

    def list_drivers(self) -> list[dict]:
        """Every driver id (no personal data)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT driver_id, created_at FROM drivers ORDER BY driver_id")
            return list(cur.fetchall())

    # ---- supplies and tickets ----
    def open_supplies(self) -> list[dict]:
        """Supplies not finished yet."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {SUPPLY_COLUMNS} FROM supplies WHERE phase <> 'FINISHED'")
            return list(cur.fetchall())

    def insert_supply(self, s: dict) -> None:
        """Record a new authorized supply."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO supplies (supply_id, request_id, cp_id, driver_id, phase, price_eur_kwh, "
                "authorized_at, expires_at, power_kw) VALUES (%(supply_id)s, %(request_id)s, %(cp_id)s, "
                "%(driver_id)s, 'AUTHORIZED', %(price_eur_kwh)s, %(authorized_at)s, %(expires_at)s, %(power_kw)s)", s)

    def mark_started(self, supply_id: str, started_at: datetime) -> None:
        """The vehicle was plugged in."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE supplies SET phase = 'CHARGING', started_at = %s "
                        "WHERE supply_id = %s AND phase = 'AUTHORIZED'", (started_at, supply_id))

    def save_live_figures(self, figures: list[tuple[Decimal, Decimal, str]]) -> None:
        """Batch-persist the latest (energy, amount, supply_id) of running supplies."""
        if not figures:
            return
        with self.db.transaction() as cur:
            cur.executemany("UPDATE supplies SET energy_kwh = %s, amount_eur = %s "
                            "WHERE supply_id = %s AND phase = 'CHARGING'", figures)

    def finish_supply(self, supply_id: str, ended_at: datetime, started_at: Optional[datetime],
                      energy_kwh: Decimal, amount_eur: Decimal, reason: str, ticket: dict) -> dict:
        """Close a supply and store its ticket in one transaction; returns the one ticket of that supply."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE supplies SET phase = 'FINISHED', ended_at = %s, started_at = COALESCE(started_at, %s), "
                        "energy_kwh = %s, amount_eur = %s, end_reason = %s "
                        "WHERE supply_id = %s AND phase <> 'FINISHED'",
                        (ended_at, started_at, energy_kwh, amount_eur, reason, supply_id))
            cur.execute(
                "INSERT INTO tickets (ticket_id, supply_id, cp_id, driver_id, started_at, ended_at, duration_s, "
                "energy_kwh, price_eur_kwh, amount_eur, reason) VALUES (%(ticket_id)s, %(supply_id)s, %(cp_id)s, "
                "%(driver_id)s, %(started_at)s, %(ended_at)s, %(duration_s)s, %(energy_kwh)s, %(price_eur_kwh)s, "
                "%(amount_eur)s, %(reason)s) ON CONFLICT (supply_id) DO NOTHING", ticket)
            cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE supply_id = %s", (supply_id,))
            return cur.fetchone()

    def ticket_for(self, supply_id: str) -> Optional[dict]:
        """The ticket of a supply, if it has one."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE supply_id = %s", (supply_id,))
            return cur.fetchone()

    def unacked_tickets(self) -> list[dict]:
        """Tickets not yet acknowledged by their driver."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE acked_at IS NULL ORDER BY issued_at")
            return list(cur.fetchall())

    def ack_ticket(self, ticket_id: str) -> None:
        """The driver saw the ticket."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE tickets SET acked_at = now() WHERE ticket_id = %s AND acked_at IS NULL", (ticket_id,))

    def list_supplies(self, status: Optional[str], cp_id: Optional[str], driver_id: Optional[str],
                      limit: int) -> list[dict]:
        """Supplies, newest first, filtered by status (active|finished), CP and driver."""
        where, args = [], []
        if status == "active":
            where.append("phase <> 'FINISHED'")
        elif status == "finished":
            where.append("phase = 'FINISHED'")
        if cp_id:
            where.append("cp_id = %s")
            args.append(cp_id)
        if driver_id:
            where.append("driver_id = %s")
            args.append(driver_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {SUPPLY_COLUMNS} FROM supplies {clause} ORDER BY authorized_at DESC LIMIT %s",
                        (*args, limit))
            return list(cur.fetchall())

    # ---- channel leases ----
    def load_leases(self) -> list[dict]:
        """Channel leases still valid."""
        with self.db.transaction() as cur:
            cur.execute("SELECT client_id, kind, zone, channel, partition, expires_at FROM channel_leases "
                        "WHERE expires_at > now()")
            return list(cur.fetchall())

    def save_lease(self, lease: dict) -> None:
        """Record a client's channel lease (so a restarted CENTRAL can still reach it)."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO channel_leases (client_id, kind, zone, channel, partition, expires_at) "
                "VALUES (%(client_id)s, %(kind)s, %(zone)s, %(channel)s, %(partition)s, %(expires_at)s) "
                "ON CONFLICT (client_id) DO UPDATE SET kind = EXCLUDED.kind, zone = EXCLUDED.zone, "
                "channel = EXCLUDED.channel, partition = EXCLUDED.partition, expires_at = EXCLUDED.expires_at", lease)

    # ---- weather office (SPEC §10) ----
    def weather_thresholds(self) -> dict:
        """The thresholds {min_c, max_c (or None)} as Decimals."""
        with self.db.transaction() as cur:
            cur.execute("SELECT min_c, max_c FROM weather_thresholds WHERE id")
            row = cur.fetchone()
            return dict(row) if row else {"min_c": Decimal("0"), "max_c": None}

    def save_weather_thresholds(self, min_c: Decimal, max_c: Optional[Decimal]) -> None:
        """Store the thresholds (one row)."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO weather_thresholds (id, min_c, max_c, updated_at) VALUES (true, %s, %s, now()) "
                        "ON CONFLICT (id) DO UPDATE SET min_c = EXCLUDED.min_c, max_c = EXCLUDED.max_c, "
                        "updated_at = now()", (min_c, max_c))

    def add_weather_observations(self, rows: list[dict]) -> None:
        """Batch-insert observations {city, country, temperature, observed_at} into weather_history."""
        if not rows:
            return
        with self.db.transaction() as cur:
            cur.executemany("INSERT INTO weather_history (city, country, temperature, observed_at) "
                            "VALUES (%(city)s, %(country)s, %(temperature)s, %(observed_at)s)", rows)

    def latest_temperatures(self) -> list[dict]:
        """The newest observation of every (city, country)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT DISTINCT ON (city, country) city, country, temperature, observed_at "
                        "FROM weather_history ORDER BY city, country, observed_at DESC")
            return list(cur.fetchall())

    def add_weather_alert(self, city: str, country: str, kind: str, temperature: Optional[Decimal]) -> None:
        """One ALERT or CLEAR row of weather_alerts."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO weather_alerts (city, country, kind, temperature) VALUES (%s, %s, %s, %s)",
                        (city, country, kind, temperature))

    def weather_alerts(self, limit: int = 50) -> list[dict]:
        """The newest ALERT/CLEAR rows."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id, city, country, kind, temperature, created_at FROM weather_alerts "
                        "ORDER BY id DESC LIMIT %s", (limit,))
            return list(cur.fetchall())

    def latest_weather_alerts(self) -> list[dict]:
        """The newest ALERT/CLEAR row of every (city, country): which places are under alert now."""
        with self.db.transaction() as cur:
            cur.execute("SELECT DISTINCT ON (city, country) id, city, country, kind, temperature, created_at "
                        "FROM weather_alerts ORDER BY city, country, id DESC")
            return list(cur.fetchall())

    # ---- audit and application messages ----
    def audit(self, component: str, category: str, action: str, actor: Optional[str], success: bool,
              description: str, source_ip: Optional[str] = None) -> None:
        """One audit_log row (never secrets)."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO audit_log (component, category, action, actor, source_ip, success, description) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (component, category, action, actor, source_ip, success, description))

    def app_message(self, component: str, level: str, text: str) -> None:
        """A message shown in the Front's history."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO app_messages (component, level, text) VALUES (%s, %s, %s)",
                        (component, level, text))

    def app_messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest application messages."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id, ts, component, level, text FROM app_messages ORDER BY id DESC LIMIT %s", (limit,))
            return list(cur.fetchall())


class BackgroundJournal:
    """Audit records and app messages written in batches by one thread, off the service lock.

    They are logs, not state: a slow disk must not hold up every Monitor while CENTRAL waits for a
    commit. Same methods as the repository's, so the service does not know the difference.
    """

    def __init__(self, db: Database, flush_s: float = 0.2, limit: int = 100_000):
        self.db, self.flush_s = db, flush_s
        self._queue: "queue.Queue[tuple[str, tuple]]" = queue.Queue(limit)
        threading.Thread(target=self._run, name="journal", daemon=True).start()

    def audit(self, component: str, category: str, action: str, actor: Optional[str], success: bool,
              description: str, source_ip: Optional[str] = None) -> None:
        """Queue one audit_log row."""
        self._put("audit", (component, category, action, actor, source_ip, success, description))

    def app_message(self, component: str, level: str, text: str) -> None:
        """Queue one app_messages row."""
        self._put("message", (component, level, text))

    def _put(self, kind: str, row: tuple) -> None:
        try:
            self._queue.put_nowait((kind, row))
        except queue.Full:
            logger.error("journal queue full: dropped a %s record", kind)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get(timeout=self.flush_s if len(batch) == 1 else 0))
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception:
                logger.exception("could not write %d journal records", len(batch))

    def _write(self, batch: list[tuple[str, tuple]]) -> None:
        audits = [row for kind, row in batch if kind == "audit"]
        messages = [row for kind, row in batch if kind == "message"]
        with self.db.transaction() as cur:
            if audits:
                cur.executemany("INSERT INTO audit_log (component, category, action, actor, source_ip, success, "
                                "description) VALUES (%s, %s, %s, %s, %s, %s, %s)", audits)
            if messages:
                cur.executemany("INSERT INTO app_messages (component, level, text) VALUES (%s, %s, %s)", messages)
