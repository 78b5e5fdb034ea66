"""Domain rules: everything that changes CP or supply state lives here (SPEC §3, §4).

Pure functions and tables, no I/O. CENTRAL, the API, the consoles and every
screen call these; nothing else computes a CP state, its colour or a supply phase.

CP state derivation, in this order (SPEC §3): Monitor link down -> DESCONECTADO;
Engine KO -> AVERIADO; any out-of-service reason -> PARADO; a supply in
progress -> SUMINISTRANDO; else ACTIVADO.

Supply lifecycle: ``TRANSITIONS[(phase, event)] -> phase``. A supply is
AUTHORIZED when CENTRAL accepts a request, CHARGING once the vehicle is plugged,
and FINISHED when it ends for any reason (unplug, stop, fault, expiry). Every
supply that reaches FINISHED gets exactly one ticket. Illegal transitions raise
and leave the phase unchanged.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Iterable, Optional


class CpState(str, Enum):
    DESCONECTADO = "DESCONECTADO"
    ACTIVADO = "ACTIVADO"
    SUMINISTRANDO = "SUMINISTRANDO"
    PARADO = "PARADO"
    AVERIADO = "AVERIADO"


STATE_COLOURS: dict[CpState, str] = {
    CpState.DESCONECTADO: "grey",
    CpState.ACTIVADO: "green",
    CpState.SUMINISTRANDO: "green",
    CpState.PARADO: "orange",
    CpState.AVERIADO: "red",
}
OUT_OF_ORDER_CAPTION = "Out of Order"


ANON_PREFIX = "ANON-"  # driver id of a supply requested on the CP itself: ANON-<cp_id>


def anonymous_driver(cp_id: str) -> str:
    """The driver id of an anonymous supply at a CP."""
    return f"{ANON_PREFIX}{cp_id}"


class OutOfService(str, Enum):
    """Independent reasons a CP is deliberately out of service."""

    OPERATOR = "OPERATOR"
    WEATHER = "WEATHER"
    KEYS_REVOKED = "KEYS_REVOKED"


def derive_cp_state(link_up: bool, engine_ok: bool, out_of_service: Iterable[str], supplying: bool) -> CpState:
    """CENTRAL's view of a CP from its link, engine health, reasons and supply (SPEC §3)."""
    if not link_up:
        return CpState.DESCONECTADO
    if not engine_ok:
        return CpState.AVERIADO
    if any(True for _ in out_of_service):
        return CpState.PARADO
    if supplying:
        return CpState.SUMINISTRANDO
    return CpState.ACTIVADO


def caption(state: CpState, out_of_service: Iterable[str] = ()) -> str:
    """Text shown under a CP tile: the state, or 'Out of Order' plus its reasons."""
    if state is CpState.PARADO:
        return f"{OUT_OF_ORDER_CAPTION} ({', '.join(sorted(out_of_service))})"
    return state.value


def deny_reason(state: CpState, out_of_service: Iterable[str], cp_busy: bool) -> Optional[str]:
    """Why a CP cannot take a new supply now, or None when it can (SPEC §4 step 5)."""
    reasons = set(out_of_service)
    if state is CpState.DESCONECTADO:
        return "DISCONNECTED"
    if state is CpState.AVERIADO:
        return "FAULTY"
    if state is CpState.PARADO:
        return "WEATHER" if reasons == {OutOfService.WEATHER.value} else "OUT_OF_ORDER"
    if cp_busy or state is CpState.SUMINISTRANDO:  # a supplying CP is busy even if the flag was not passed
        return "BUSY"
    return None


class Phase(str, Enum):
    AUTHORIZED = "AUTHORIZED"
    CHARGING = "CHARGING"
    FINISHED = "FINISHED"


class SupplyEvent(str, Enum):
    PLUG = "PLUG"
    FINISH = "FINISH"  # unplug, stop, fault, lost link: the engine's final record or CENTRAL's decision
    EXPIRE = "EXPIRE"  # not plugged in time
    CANCEL = "CANCEL"  # authorization withdrawn before the plug (stop, fault, revocation)


TRANSITIONS: dict[tuple[Phase, SupplyEvent], Phase] = {
    (Phase.AUTHORIZED, SupplyEvent.PLUG): Phase.CHARGING,
    (Phase.AUTHORIZED, SupplyEvent.EXPIRE): Phase.FINISHED,
    (Phase.AUTHORIZED, SupplyEvent.CANCEL): Phase.FINISHED,
    (Phase.AUTHORIZED, SupplyEvent.FINISH): Phase.FINISHED,
    (Phase.CHARGING, SupplyEvent.FINISH): Phase.FINISHED,
}


class IllegalTransition(Exception):
    """An event that the supply's current phase does not accept."""


def next_phase(phase: Phase, event: SupplyEvent) -> Phase:
    """The phase after an event; raises IllegalTransition for events the phase does not accept."""
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} is not allowed in phase {phase.value}") from None


# ---- money and energy: exact decimals everywhere ----
KWH_QUANTUM = Decimal("0.001")
EUR_QUANTUM = Decimal("0.01")


MAX_SUPPLY_KWH = Decimal("100000")  # far above any real supply; bounds what a report may claim


def reported_energy(value: object) -> Decimal:
    """kWh reported by a CP, checked: finite, not negative, not absurd; raises ValueError otherwise."""
    try:
        kwh = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"energy {value!r} is not a number") from None
    if not kwh.is_finite() or kwh < 0 or kwh > MAX_SUPPLY_KWH:
        raise ValueError(f"energy {value!r} is out of range (0-{MAX_SUPPLY_KWH} kWh)")
    return energy(kwh)


def plain(value: object) -> str:
    """A decimal without trailing zeros or exponent, for screens: 0.3500 -> '0.35', 50.00 -> '50'."""
    return f"{Decimal(str(value)).normalize():f}"


def price_text(value: object) -> str:
    """A €/kWh price for screens with at least 2 decimals ('0.4' -> '0.40'); '' when missing or not a number."""
    try:
        price = Decimal(str(value))
    except ArithmeticError:
        return ""
    if not price.is_finite():
        return ""
    return str(price.quantize(EUR_QUANTUM) if price.as_tuple().exponent > -2 else price)


def energy(value: object) -> Decimal:
    """kWh as an exact decimal with 3 places."""
    return Decimal(str(value)).quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


def money(value: object) -> Decimal:
    """€ as an exact decimal with 2 places."""
    return Decimal(str(value)).quantize(EUR_QUANTUM, rounding=ROUND_HALF_UP)


def amount_for(energy_kwh: object, price_eur_kwh: object) -> Decimal:
    """€ charged for an energy at a price (kWh × €/kWh)."""
    return money(Decimal(str(energy_kwh)) * Decimal(str(price_eur_kwh)))


def energy_after(seconds: float, power_kw: object, time_scale: float = 1.0) -> Decimal:
    """kWh delivered at a constant power over some seconds (time_scale speeds up simulations)."""
    return energy(Decimal(str(power_kw)) * Decimal(str(seconds * time_scale)) / Decimal(3600))


# ---- CP registration records ----
CP_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # = charging_points.cp_id CHECK in sql/001_core.sql
ZONE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DRIVER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # = drivers.driver_id CHECK in sql/001_core.sql


def validate_cp(body: object) -> tuple[Optional[dict], Optional[str]]:
    """A CP registration record, checked: (record, None) or (None, readable problem)."""
    if not isinstance(body, dict):
        return None, "body must be a JSON object"
    for name in ("cp_id", "address", "city", "price_eur_kwh", "power_kw"):
        if body.get(name) in (None, ""):
            return None, f"{name} is required"
    texts = {k: body.get(k, default) for k, default in (("cp_id", ""), ("address", ""), ("city", ""),
                                                        ("country", "ES"), ("zone", "default"))}
    if not all(isinstance(v, str) for v in texts.values()):
        return None, "cp_id, address, city, country and zone must be text"
    if not CP_ID_PATTERN.match(texts["cp_id"]):
        return None, "cp_id must be 1-32 letters, digits, _ or -"
    if not ZONE_PATTERN.match(texts["zone"]):
        return None, "zone must be 1-40 letters, digits, _ or -"
    if len(texts["address"]) > 200 or len(texts["city"]) > 100 or len(texts["country"]) > 60:
        return None, "address, city or country too long"
    try:
        price, power = Decimal(str(body["price_eur_kwh"])), Decimal(str(body["power_kw"]))
    except ArithmeticError:
        return None, "price_eur_kwh and power_kw must be numbers"
    if not price.is_finite() or not power.is_finite() or price < 0 or power <= 0 or price > 100 or power > 1000:
        return None, "price_eur_kwh must be 0-100 and power_kw 0-1000 (exclusive of 0)"
    return {**texts, "price_eur_kwh": price, "power_kw": power}, None
