"""What the driver web page shows, as plain JSON-able data built from the session (no I/O).

``driver_view`` is called on the driver's loop thread after every step (so it never races
the session) and its result is what the page renders, both in the first HTML and in every
Socket.IO ``state`` push. Only this driver's data goes in: other drivers' supplies at a CP
show as the CP's state, never with their driver id or figures.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Iterable, Optional

from common import domain
from common import messages as m
from EV_Driver import screens
from EV_Driver.model import CpView, decimal_or_zero
from EV_Driver.session import DriverSession

price_text = domain.price_text

CAN_REQUEST = domain.CpState.ACTIVADO.value


def cp_row(cp: CpView) -> dict:
    """One CP tile: id, place, state (and its class), price, temperature."""
    state = cp.state if cp.state in domain.CpState.__members__ else "DESCONECTADO"
    return {"cp_id": cp.cp_id, "state": state, "caption": cp.caption or state, "city": cp.city,
            "address": cp.address, "price_eur_kwh": price_text(cp.price_eur_kwh), "power_kw": cp.power_kw,
            "temperature": cp.temperature, "can_request": state == CAN_REQUEST}


def ticket_dict(ticket: m.TicketIssued) -> dict:
    """A ticket with its readable end reason and local times."""
    data = dataclasses.asdict(ticket)
    data.update(reason_text=m.END_REASONS.get(ticket.reason, ticket.reason),
                started_local=screens.fmt_time(ticket.started_at) if ticket.started_at else "-",
                ended_local=screens.fmt_time(ticket.ended_at),
                duration=screens.fmt_duration(ticket.duration_s),
                energy_kwh=str(decimal_or_zero(ticket.energy_kwh)),
                amount_eur=str(decimal_or_zero(ticket.amount_eur, domain.money)),
                price_eur_kwh=price_text(ticket.price_eur_kwh))
    return data


def ticket_from_dict(data: object) -> Optional[m.TicketIssued]:
    """A TicketIssued from stored / SupplyHistory data; None when unusable."""
    if not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(m.TicketIssued)}
    try:
        return m.TicketIssued(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def newer_ticket(a: Optional[m.TicketIssued], b: Optional[m.TicketIssued]) -> Optional[m.TicketIssued]:
    """The ticket that ended last (ISO-8601 UTC text compares in time order)."""
    if a is None or b is None:
        return a or b
    return b if (b.ended_at or "") > (a.ended_at or "") else a


def history_row(row: dict) -> dict:
    """One supply of the history (CENTRAL's row) with local times and readable figures."""
    started = row.get("started_at") or row.get("authorized_at")
    return {"supply_id": str(row.get("supply_id", "")), "cp_id": str(row.get("cp_id", "")),
            "phase": str(row.get("phase", "")), "end_reason": str(row.get("end_reason") or ""),
            "started_local": screens.fmt_time(started) if started else "-",
            "energy_kwh": str(decimal_or_zero(row.get("energy_kwh"))),
            "amount_eur": str(decimal_or_zero(row.get("amount_eur"), domain.money))}


def supply_view(session: DriverSession, now: datetime) -> Optional[dict]:
    """The driver's own open supply (authorized or charging), with live figures."""
    s = session.supply
    if s is None:
        return None
    last = s.last
    started = screens.parse_time(s.started_at)
    elapsed = max(0, int((now - started).total_seconds())) if started and started.tzinfo else None
    return {"supply_id": s.supply_id, "cp_id": s.cp_id, "charging": s.charging,
            "phase": "CHARGING" if s.charging else "AUTHORIZED", "price_eur_kwh": price_text(s.price_eur_kwh),
            "started_at": s.started_at, "elapsed_s": elapsed, "stop_sent": s.stop_sent,
            "power_kw": last.power_kw if last else "",
            "energy_kwh": str(decimal_or_zero(last.energy_kwh)) if last else "0.000",
            "amount_eur": str(decimal_or_zero(last.amount_eur, domain.money)) if last else "0.00",
            "seq": last.seq if last else 0}


def batch_view(session: DriverSession, monotonic_now: float) -> Optional[dict]:
    """File mode: progress i/N, the wait before the next request, the results so far."""
    b = session.batch
    if b is None:
        return None
    done = len(b.results)
    running = b.resume_at is None and not b.done
    wait_left = 0.0 if b.resume_at is None or b.done else max(0.0, b.resume_at - monotonic_now)
    return {"total": len(b.items), "done": done, "finished": b.done,
            "current": done + 1 if running else done, "current_cp": b.items[done] if running else None,
            "next_cp": b.items[done] if not running and not b.done else None,
            "wait_s": round(wait_left, 1),
            "results": [{"cp_id": r.cp_id, "outcome": r.outcome.value, "reason": r.reason,
                         "energy_kwh": str(r.energy_kwh), "amount_eur": str(r.amount_eur)} for r in b.results]}


def driver_view(session: DriverSession, now: datetime, monotonic_now: float, last_ticket: Optional[m.TicketIssued],
                history: Optional[list], messages: Iterable[dict]) -> dict:
    """Everything the page shows for one driver."""
    req = session.request
    return {
        "driver_id": session.driver_id,
        "reachable": session.reachable is not False,  # None (still starting) is not an outage yet
        "central": {None: "starting", True: "up", False: "down"}[session.reachable],
        "banner": None if session.reachable is not False else screens.UNAVAILABLE,
        "cps": [cp_row(cp) for _, cp in sorted(session.cps.items())],
        "status_seen": session.last_status_at is not None,
        "request": {"cp_id": req.cp_id, "sent": req.sent} if req else None,
        "supply": supply_view(session, now),
        "last_ticket": ticket_dict(last_ticket) if last_ticket else None,
        "history": [history_row(row) for row in history] if history is not None else None,
        "batch": batch_view(session, monotonic_now),
        "messages": list(messages),
    }
