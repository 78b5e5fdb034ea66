"""What the driver console prints: pure text builders, no I/O.

Readable reasons come from ``common.messages`` (DENY_REASONS, END_REASONS) so
every screen words them the same way. Times on the wire are ISO-8601 UTC; they are
shown in the given time zone (the machine's local zone by default).
"""
from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Iterable, Optional

from common import domain
from common import messages as m
from EV_Driver.model import CpView, Outcome, ServiceResult, decimal_or_zero

UNAVAILABLE = "Imposible conectar con la CENTRAL"

HELP = """Órdenes:
  request <CP>   solicitar un suministro en el punto de carga <CP> (p. ej. request ALC1)
  stop           parar el suministro en curso
  status | list  todos los puntos de carga con su estado, precio y ciudad
  tickets        tickets recibidos en esta sesión (el último completo)
  help           esta ayuda
  quit           salir (un suministro en curso continúa; su ticket se mostrará al volver)"""


def parse_time(text: Optional[str]) -> Optional[datetime]:
    """ISO-8601 text -> aware datetime, or None when missing or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def fmt_time(text: Optional[str], tz: Optional[tzinfo] = None, with_date: bool = True) -> str:
    """A wire timestamp as local 'YYYY-MM-DD HH:MM:SS' (or just the clock); '-' when missing."""
    when = parse_time(text)
    if when is None:
        return text or "-"
    local = when.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def fmt_duration(seconds: int) -> str:
    """Seconds -> 'H:MM:SS'."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def deny_text(reason: str, message: str = "") -> str:
    """'BUSY — Charging point is busy': the code and its readable text."""
    return f"{reason} — {m.DENY_REASONS.get(reason) or message or 'unknown reason'}"


def end_text(reason: str) -> str:
    """'UNPLUGGED — Vehicle unplugged': how a supply ended."""
    return f"{reason} — {m.END_REASONS.get(reason, reason)}"


def kwh(value: object) -> str:
    """Energy text with 3 decimals."""
    return f"{decimal_or_zero(value)} kWh"


def eur(value: object) -> str:
    """Money text with 2 decimals."""
    return f"{decimal_or_zero(value, domain.money)} €"


def authorized_text(msg: m.SupplyAuthorized, seconds_left: Optional[int], tz: Optional[tzinfo] = None) -> str:
    """The authorization, with how long the driver has to plug in."""
    window = (f"enchufa el vehículo en el punto en {seconds_left} s (antes de las "
              f"{fmt_time(msg.expires_at, tz, with_date=False)})" if seconds_left is not None
              else "enchufa el vehículo en el punto")
    return (f"Suministro AUTORIZADO en {msg.cp_id} (suministro {msg.supply_id}, "
            f"{msg.price_eur_kwh} €/kWh): {window}")


def telemetry_line(msg: m.Telemetry) -> str:
    """One live line per second: kW, kWh, €."""
    return f"{msg.cp_id} cargando: {msg.power_kw} kW · {kwh(msg.energy_kwh)} · {eur(msg.amount_eur)}"


def ticket_block(t: m.TicketIssued, tz: Optional[tzinfo] = None, title: str = "TICKET") -> str:
    """Every field of a ticket, one per line, framed."""
    rows = [
        ("Ticket", t.ticket_id),
        ("Suministro", t.supply_id),
        ("Punto de carga", t.cp_id),
        ("Conductor", t.driver_id),
        ("Inicio", fmt_time(t.started_at, tz) if t.started_at else "- (no llegó a enchufarse)"),
        ("Fin", fmt_time(t.ended_at, tz)),
        ("Duración", fmt_duration(t.duration_s)),
        ("Energía", kwh(t.energy_kwh)),
        ("Precio", f"{t.price_eur_kwh} €/kWh"),
        ("TOTAL", eur(t.amount_eur)),
        ("Finalizado por", end_text(t.reason)),
    ]
    width = max(len(label) for label, _ in rows)
    body = [f"  {label.ljust(width)} : {value}" for label, value in rows]
    rule = "=" * max(44, max(len(line) for line in body) + 2)
    return "\n".join([rule, f" {title}".center(len(rule)), rule, *body, rule])


def status_table(cps: Iterable[CpView], age_s: Optional[float]) -> str:
    """All CPs with state, price and city (plus live supply), and how fresh the data is."""
    cps = sorted(cps, key=lambda cp: cp.cp_id)
    if age_s is None:
        return "Aún no se ha recibido el estado de la red."
    if not cps:
        return f"La red no tiene puntos de carga (estado de hace {age_s:.0f} s)."
    rows = [("CP", "ESTADO", "PRECIO", "CIUDAD", "")]
    for cp in cps:
        state = cp.caption if cp.state == "PARADO" and cp.caption else cp.state
        live = ""
        if cp.supply is not None:
            live = f"{cp.supply.power_kw} kW · {kwh(cp.supply.energy_kwh)} · {eur(cp.supply.amount_eur)}"
        price = f"{cp.price_eur_kwh} €/kWh" if cp.price_eur_kwh else "-"
        rows.append((cp.cp_id, state, price, cp.city or "-", live))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(4)) + ("  " + row[4] if row[4] else "") for row in rows]
    lines.append(f"({len(cps)} puntos; estado de hace {age_s:.0f} s)")
    return "\n".join(line.rstrip() for line in lines)


def result_line(index: int, total: int, result: ServiceResult) -> str:
    """'[ 3/12] SEV3  ok      UNPLUGGED  1.234 kWh  0.43 €'."""
    figures = ""
    if result.outcome is not Outcome.DENIED and (result.energy_kwh or result.outcome is Outcome.OK):
        figures = f"  {result.energy_kwh} kWh  {result.amount_eur} €"
    width = len(str(total))
    return (f"[{index:>{width}}/{total}] {result.cp_id:<6} {result.outcome.value:<6}  "
            f"{result.reason}{figures}")


def summary_block(results: list[ServiceResult], total: int) -> str:
    """The file-mode summary: one line per service, the counts and the totals."""
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    energy = sum((r.energy_kwh for r in results), Decimal("0.000"))
    amount = sum((r.amount_eur for r in results), Decimal("0.00"))
    rule = "=" * 60
    lines = [rule, f" RESUMEN DEL MODO FICHERO ({len(results)}/{total} servicios)", rule]
    lines += [result_line(i, total, r) for i, r in enumerate(results, start=1)]
    lines.append("-" * 60)
    lines.append(f"ok: {counts[Outcome.OK]} · denied: {counts[Outcome.DENIED]} · failed: {counts[Outcome.FAILED]}"
                 f" · total: {domain.energy(energy)} kWh, {domain.money(amount)} €")
    lines.append(rule)
    return "\n".join(lines)


def tickets_text(tickets: list[m.TicketIssued], tz: Optional[tzinfo] = None) -> str:
    """The tickets seen this session, one line each, then the last one in full."""
    if not tickets:
        return "No se ha recibido ningún ticket en esta sesión."
    lines = [f"{len(tickets)} ticket(s) en esta sesión:"]
    for t in tickets:
        lines.append(f"  {fmt_time(t.ended_at, tz)}  {t.cp_id:<6} {kwh(t.energy_kwh):>12} {eur(t.amount_eur):>9}"
                     f"  {t.reason}  (ticket {t.ticket_id})")
    lines.append(ticket_block(tickets[-1], tz, title="ÚLTIMO TICKET"))
    return "\n".join(lines)
