"""Test doubles for CENTRAL's ports (STYLE habit 9): an in-memory repository, a recording outlet, a clock.

``FakeRepository`` mirrors every public method of ``central.repository.PostgresRepository``
(a unit test checks the method names and parameters with ``ast``, so this file never imports
psycopg2). Rows are plain dicts with the same keys and Python types the real cursor returns
(``Decimal`` for money and energy, aware ``datetime`` for timestamps).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Optional

from common import messages as m

T0 = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """Wall time (call it) and monotonic time that move only when told."""

    def __init__(self, start: datetime = T0):
        self.now = start
        self.t = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.t += seconds


def cp_row(cp_id: str, city: str = "Alicante", price: str = "0.35", power: str = "22", zone: str = "default",
           out_of_service: Optional[list[str]] = None, engine_ok: bool = True) -> dict:
    """A charging_points row as PostgresRepository.load_cps returns it."""
    return {"cp_id": cp_id, "address": f"Calle {cp_id} 1", "city": city, "country": "ES",
            "price_eur_kwh": Decimal(price), "power_kw": Decimal(power), "zone": zone,
            "out_of_service": list(out_of_service or []), "engine_ok": engine_ok}


class FakeRepository:
    """In-memory PostgresRepository: same methods, same row shapes, same one-ticket-per-supply rule."""

    def __init__(self, cps: Optional[list[dict]] = None, drivers: Optional[list[str]] = None,
                 clock: Optional[FakeClock] = None):
        self.clock = clock or FakeClock()
        self.cps: dict[str, dict] = {row["cp_id"]: dict(row) for row in cps or []}
        self.drivers: dict[str, dict] = {d: {"driver_id": d, "password_hash": None, "created_at": self.clock()}
                                         for d in drivers or []}
        self.supplies: dict[str, dict] = {}
        self.tickets: dict[str, dict] = {}  # by supply_id: the UNIQUE (supply_id) of the real table
        self.leases: dict[str, dict] = {}
        self.audit_log: list[dict] = []
        self.messages: list[dict] = []
        self.thresholds: dict = {"min_c": Decimal("0"), "max_c": None}
        self.weather_history: list[dict] = []
        self.weather_alert_rows: list[dict] = []
        self.fail_audit = False
        self._ids = itertools.count(1)

    # ---- charging points and drivers ----
    def load_cps(self) -> list[dict]:
        return [copy.deepcopy(self.cps[k]) for k in sorted(self.cps)]

    def get_cp(self, cp_id: str) -> Optional[dict]:
        row = self.cps.get(cp_id)
        return copy.deepcopy(row) if row else None

    def save_cp_flags(self, cp_id: str, out_of_service: list[str], engine_ok: bool) -> None:
        if cp_id in self.cps:
            self.cps[cp_id].update(out_of_service=sorted(out_of_service), engine_ok=engine_ok)

    def upsert_cp(self, cp: dict) -> None:
        row = self.cps.setdefault(cp["cp_id"], {"out_of_service": [], "engine_ok": True})
        row.update({k: cp[k] for k in ("cp_id", "address", "city", "country", "price_eur_kwh", "power_kw", "zone")})

    def delete_cp(self, cp_id: str) -> bool:
        return self.cps.pop(cp_id, None) is not None

    def driver_exists(self, driver_id: str) -> bool:
        return driver_id in self.drivers

    def add_driver(self, driver_id: str, password_hash: Optional[str] = None) -> bool:
        if driver_id in self.drivers:
            return False
        self.drivers[driver_id] = {"driver_id": driver_id, "password_hash": password_hash, "created_at": self.clock()}
        return True

    def set_driver_password(self, driver_id: str, password_hash: str) -> bool:
        if driver_id not in self.drivers:
            return False
        self.drivers[driver_id]["password_hash"] = password_hash
        return True

    def driver_password_hash(self, driver_id: str) -> Optional[str]:
        return self.drivers.get(driver_id, {}).get("password_hash")

    def last_ticket(self, driver_id: str) -> Optional[dict]:
        mine = [t for t in self.tickets.values() if t["driver_id"] == driver_id]
        return max(mine, key=lambda t: t["issued_at"]) if mine else None

    def list_drivers(self) -> list[dict]:
        return [{"driver_id": d["driver_id"], "created_at": d["created_at"]} for _, d in sorted(self.drivers.items())]

    # ---- supplies and tickets ----
    def open_supplies(self) -> list[dict]:
        return [dict(s) for s in self.supplies.values() if s["phase"] != "FINISHED"]

    def insert_supply(self, s: dict) -> None:
        if s["supply_id"] in self.supplies:
            raise ValueError(f"duplicate supply {s['supply_id']}")  # the real table's primary key
        self.supplies[s["supply_id"]] = {
            "supply_id": s["supply_id"], "request_id": s["request_id"], "cp_id": s["cp_id"],
            "driver_id": s["driver_id"], "phase": "AUTHORIZED", "price_eur_kwh": Decimal(s["price_eur_kwh"]),
            "authorized_at": s["authorized_at"], "expires_at": s["expires_at"], "started_at": None,
            "ended_at": None, "energy_kwh": Decimal("0"), "amount_eur": Decimal("0"),
            "power_kw": Decimal(s["power_kw"]), "end_reason": None}

    def mark_started(self, supply_id: str, started_at: datetime) -> None:
        row = self.supplies.get(supply_id)
        if row and row["phase"] == "AUTHORIZED":
            row.update(phase="CHARGING", started_at=started_at)

    def save_live_figures(self, figures: list[tuple[Decimal, Decimal, str]]) -> None:
        for energy, amount, supply_id in figures:
            row = self.supplies.get(supply_id)
            if row and row["phase"] == "CHARGING":
                row.update(energy_kwh=energy, amount_eur=amount)

    def finish_supply(self, supply_id: str, ended_at: datetime, started_at: Optional[datetime],
                      energy_kwh: Decimal, amount_eur: Decimal, reason: str, ticket: dict) -> dict:
        """Close the supply and store its ticket; a second call returns the ticket stored first."""
        row = self.supplies.get(supply_id)
        if row and row["phase"] != "FINISHED":
            row.update(phase="FINISHED", ended_at=ended_at, started_at=row["started_at"] or started_at,
                       energy_kwh=energy_kwh, amount_eur=amount_eur, end_reason=reason)
        if supply_id not in self.tickets:
            self.tickets[supply_id] = {**ticket, "issued_at": self.clock() + timedelta(microseconds=next(self._ids)),
                                       "acked_at": None}
        return dict(self.tickets[supply_id])

    def ticket_for(self, supply_id: str) -> Optional[dict]:
        row = self.tickets.get(supply_id)
        return dict(row) if row else None

    def unacked_tickets(self) -> list[dict]:
        return [dict(t) for t in sorted(self.tickets.values(), key=lambda t: t["issued_at"]) if t["acked_at"] is None]

    def ack_ticket(self, ticket_id: str) -> None:
        for row in self.tickets.values():
            if row["ticket_id"] == ticket_id and row["acked_at"] is None:
                row["acked_at"] = self.clock()

    def list_supplies(self, status: Optional[str], cp_id: Optional[str], driver_id: Optional[str],
                      limit: int) -> list[dict]:
        rows = list(self.supplies.values())
        if status == "active":
            rows = [r for r in rows if r["phase"] != "FINISHED"]
        elif status == "finished":
            rows = [r for r in rows if r["phase"] == "FINISHED"]
        rows = [r for r in rows if (not cp_id or r["cp_id"] == cp_id) and (not driver_id or r["driver_id"] == driver_id)]
        rows.sort(key=lambda r: r["authorized_at"], reverse=True)
        return [dict(r) for r in rows[:limit]]

    # ---- channel leases ----
    def load_leases(self) -> list[dict]:
        return [dict(row) for row in self.leases.values() if row["expires_at"] > self.clock()]

    def save_lease(self, lease: dict) -> None:
        self.leases[lease["client_id"]] = dict(lease)

    # ---- weather office (SPEC §10) ----
    def weather_thresholds(self) -> dict:
        return dict(self.thresholds)

    def save_weather_thresholds(self, min_c: Decimal, max_c: Optional[Decimal]) -> None:
        self.thresholds = {"min_c": Decimal(min_c), "max_c": None if max_c is None else Decimal(max_c)}

    def add_weather_observations(self, rows: list[dict]) -> None:
        self.weather_history += [{**r, "temperature": Decimal(str(r["temperature"])), "id": len(self.weather_history) + i + 1}
                                 for i, r in enumerate(rows)]

    def latest_temperatures(self) -> list[dict]:
        latest: dict[tuple[str, str], dict] = {}
        for row in self.weather_history:
            latest[(row["city"], row["country"])] = row
        return [{k: r[k] for k in ("city", "country", "temperature", "observed_at")} for r in latest.values()]

    def add_weather_alert(self, city: str, country: str, kind: str, temperature: Optional[Decimal]) -> None:
        self.weather_alert_rows.append({"id": len(self.weather_alert_rows) + 1, "city": city, "country": country,
                                        "kind": kind, "temperature": None if temperature is None else Decimal(str(temperature)),
                                        "created_at": self.clock()})

    def weather_alerts(self, limit: int = 50) -> list[dict]:
        return [dict(r) for r in reversed(self.weather_alert_rows)][:limit]

    def latest_weather_alerts(self) -> list[dict]:
        latest: dict[tuple[str, str], dict] = {}
        for row in self.weather_alert_rows:
            latest[(row["city"], row["country"])] = row
        return [dict(r) for r in latest.values()]

    # ---- audit and application messages ----
    def audit(self, component: str, category: str, action: str, actor: Optional[str], success: bool,
              description: str, source_ip: Optional[str] = None) -> None:
        if self.fail_audit:
            raise RuntimeError("audit store down")
        self.audit_log.append({"component": component, "category": category, "action": action, "actor": actor,
                               "source_ip": source_ip, "success": success, "description": description})

    def app_message(self, component: str, level: str, text: str) -> None:
        self.messages.append({"id": len(self.messages) + 1, "ts": self.clock(), "component": component,
                              "level": level, "text": text})

    def app_messages(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in reversed(self.messages)][:limit]


@dataclass
class Sent:
    """One call on the outlet."""

    how: str  # "to_client" | "to_client_reliable"
    kind: str
    client_id: str
    message: m.Message


class RecordingOutlet:
    """Outlet that records what the service sends (to_client, to_client_reliable, publish_status)."""

    def __init__(self):
        self.sent: list[Sent] = []
        self.statuses: list[list[dict]] = []
        self.forgotten: list[str] = []

    def to_client(self, kind: str, client_id: str, message: m.Message) -> None:
        self.sent.append(Sent("to_client", kind, client_id, message))

    def to_client_reliable(self, kind: str, client_id: str, message: m.Message) -> None:
        self.sent.append(Sent("to_client_reliable", kind, client_id, message))

    def publish_status(self, cps: list[dict]) -> None:
        self.statuses.append(cps)

    def forget_supply(self, supply_id: str) -> None:
        self.forgotten.append(supply_id)

    def of(self, message_type: type, kind: Optional[str] = None, client_id: Optional[str] = None) -> list[Sent]:
        """Calls that sent a message of one type (optionally to one kind / client)."""
        return [s for s in self.sent if isinstance(s.message, message_type)
                and (kind is None or s.kind == kind) and (client_id is None or s.client_id == client_id)]

    def messages(self, message_type: type, kind: Optional[str] = None, client_id: Optional[str] = None) -> list:
        """The messages of one type sent (optionally to one kind / client)."""
        return [s.message for s in self.of(message_type, kind, client_id)]

    def clear(self) -> None:
        self.sent.clear()
        self.statuses.clear()
