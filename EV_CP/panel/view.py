"""What the Engine's owner panel shows, built from the EngineCore (no I/O, SPEC §11 "Engine panel").

``panel_view`` runs on the Engine's event-loop thread (the only thread that touches the core)
and returns plain JSON-able data. The state shown is the Engine's own view of what CENTRAL
derives (SPEC §3, ``common.domain.derive_cp_state``): the CP is linked when its Monitor is up
and the Monitor reaches CENTRAL; the out-of-service reasons are the last ones CENTRAL sent
(``CpStatus``: operator stop, weather), so a stopped CP shows PARADO with CENTRAL's reason.
``actions`` says which buttons make sense now; the core still checks every command, exactly as
for a console key.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Optional

from common import domain as d
from common import messages as m
from EV_CP.engine_core import EngineCore, Supply

price_text = d.price_text
ANON_PREFIX = d.ANON_PREFIX
STATE_TEXT = {
    "DESCONECTADO": "Desconectado", "ACTIVADO": "Activado", "SUMINISTRANDO": "Suministrando",
    "PARADO": "Parado", "AVERIADO": "Averiado",
}


def local_state(core: EngineCore) -> d.CpState:
    """The CP state as far as the Engine can tell."""
    charging = core.supply is not None and core.supply.phase is d.Phase.CHARGING
    return d.derive_cp_state(core.monitor_up and core.central_up is True, not core.forced_ko, core.out_of_service,
                             charging)


def supply_view(s: Optional[Supply], power_kw: str, now: float) -> Optional[dict]:
    """The running supply (authorized or charging) with live figures."""
    if s is None:
        return None
    charging = s.phase is d.Phase.CHARGING
    return {"supply_id": s.supply_id, "driver_id": s.driver_id, "phase": s.phase.value,
            "anonymous": s.driver_id.startswith(ANON_PREFIX), "price_eur_kwh": price_text(s.price_eur_kwh),
            "power_kw": power_kw if charging else "", "started_at": s.started_at, "expires_at": s.expires_at,
            "elapsed_s": int(now - s.plugged_at) if charging and s.plugged_at else None,
            "energy_kwh": str(s.energy_kwh), "amount_eur": str(s.amount_eur), "seq": s.seq}


def actions(core: EngineCore) -> dict:
    """Which buttons are enabled now."""
    s = core.supply
    return {"request": core.request_refusal() is None,
            "plug": s is not None and s.phase is d.Phase.AUTHORIZED and not core.forced_ko,
            "unplug": s is not None and s.phase is d.Phase.CHARGING,
            "ko": not core.forced_ko, "recover": core.forced_ko}


def _plain(message: Optional[m.Message], **extra) -> Optional[dict]:
    if message is None:
        return None
    data = dataclasses.asdict(message)
    data["reason_text"] = m.END_REASONS.get(data.get("reason", ""), data.get("reason", ""))
    if "price_eur_kwh" in data:
        data["price_eur_kwh"] = price_text(data["price_eur_kwh"])
    data.update(extra)
    return data


def panel_view(core: EngineCore, now: float, messages: Iterable[dict] = ()) -> dict:
    """Everything the panel shows."""
    info = core.info
    state = local_state(core)
    return {
        "cp_id": info.cp_id if info else None,
        "zone": info.zone if info else "", "address": info.address if info else "",
        "price_eur_kwh": price_text(info.price_eur_kwh) if info else "", "power_kw": info.power_kw if info else "",
        "state": state.value, "state_text": STATE_TEXT[state.value],
        "engine": core.engine_status, "forced_ko": core.forced_ko,
        "monitor_up": core.monitor_up,
        "central_up": core.central_up,  # None: this Monitor has not said yet
        "kafka_up": core.kafka_up,
        "out_of_service": list(core.out_of_service),
        "out_of_service_text": core.out_of_service_text(),  # '' when in service
        "refusal": core.refusal() or core.out_of_service_text() or None,
        "request_pending": core.request_pending,
        "supply": supply_view(core.supply, info.power_kw if info else "", now),
        "last_finished": _plain(core.last_finished, driver_id=core.last_finished_driver),
        "last_ticket": _plain(core.last_ticket),
        "finals_pending": len(core.finals),
        "actions": actions(core),
        "messages": list(messages),
    }
