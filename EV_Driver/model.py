"""Plain data the driver keeps and shows: CPs from the network status, file-mode results.

No I/O. ``CpView.from_entry`` is the one place a NetworkStatus entry (a dict on the
wire, see ``messages.NetworkStatus``) is turned into something typed.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Optional

from common import domain


def decimal_or_zero(value: Any, quantize=domain.energy) -> Decimal:
    """An exact decimal from wire text; 0 when missing or not a number (never raises)."""
    try:
        return quantize(value if value not in (None, "") else 0)
    except (InvalidOperation, ValueError, TypeError):
        return quantize(0)


@dataclass(frozen=True)
class LiveSupply:
    """The supply a CP is running, as far as the network status tells."""

    driver_id: str = ""
    power_kw: str = ""
    energy_kwh: str = ""
    amount_eur: str = ""


@dataclass(frozen=True)
class CpView:
    """One CP as the driver sees it: state, price, place and live supply."""

    cp_id: str
    state: str
    caption: str = ""
    city: str = ""
    address: str = ""
    price_eur_kwh: str = ""
    power_kw: str = ""
    supply: Optional[LiveSupply] = None
    temperature: str = ""  # °C, when the weather office reports one for the CP's city

    @classmethod
    def from_entry(cls, entry: Any) -> Optional["CpView"]:
        """A NetworkStatus ``cps`` entry -> CpView; None when it has no usable cp_id."""
        if not isinstance(entry, dict) or not isinstance(entry.get("cp_id"), str):
            return None
        text = {k: str(v) for k, v in entry.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
        raw_supply = entry.get("supply")
        supply = None
        if isinstance(raw_supply, dict):
            supply = LiveSupply(**{k: str(raw_supply[k]) for k in ("driver_id", "power_kw", "energy_kwh", "amount_eur")
                                   if raw_supply.get(k) is not None})
        return cls(cp_id=text["cp_id"], state=text.get("state", "?"), caption=text.get("caption", ""),
                   city=text.get("city", ""), address=text.get("address", ""),
                   price_eur_kwh=text.get("price_eur_kwh", ""), power_kw=text.get("power_kw", ""), supply=supply,
                   temperature=text.get("temperature", ""))


class Outcome(str, Enum):
    """How one requested service ended, for the file-mode summary."""

    OK = "ok"  # supplied and ended normally (unplugged or stopped by the driver)
    DENIED = "denied"  # CENTRAL said no
    FAILED = "failed"  # no answer, CENTRAL unreachable, or the supply ended abnormally


NORMAL_ENDS = frozenset({"UNPLUGGED", "DRIVER_STOP"})


@dataclass(frozen=True)
class ServiceResult:
    """One line of the file-mode summary."""

    cp_id: str
    outcome: Outcome
    reason: str = ""
    energy_kwh: Decimal = Decimal("0.000")
    amount_eur: Decimal = Decimal("0.00")
