"""CENTRAL's weather rules (SPEC §10; the wire contract is docs/CONTRACT-weather.md).

Theory of operation. EV_W decides *when* a place leaves or re-enters the temperature range (edge
triggered) and tells CENTRAL with ALERT / CLEAR; CENTRAL decides *what that means for CPs*:

* ALERT for (city, country) puts every CP there out of service with the reason WEATHER through
  ``CentralService.set_reason(..., after_supply=True)``: an idle CP goes PARADO at once, a supplying
  CP finishes its supply first (the reason is pending until the ticket).
* CLEAR removes only WEATHER (an operator stop or revoked keys stay).
* CENTRAL remembers which places are under alert (the newest weather_alerts row per place), so a
  repeated ALERT after a lost answer stores no second row (only transitions are stored), and every
  batch of observations reconciles the CPs: a CP registered in (or moved to) a place under alert gets
  WEATHER, a CP in an observed place that is not under alert loses it.
* Observations update the temperature shown in every CP view; weather_history keeps a row per place
  when the value changes or at least every HISTORY_EVERY_S seconds (not one per 4 s poll).

Validation functions are pure and return ``(value, problem)``, flaskr style; the blueprint in
``api_weather.py`` turns a problem into a 400.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Optional

from common.domain import OutOfService
from EV_Central_Server.central.service import CentralService, place_key

logger = logging.getLogger(__name__)

WEATHER = OutOfService.WEATHER.value
KINDS = ("ALERT", "CLEAR")
LEVELS = ("error", "warning", "info")
TEMPERATURE_LIMIT = 100  # |°C| accepted for thresholds and observations
HISTORY_EVERY_S = 60.0
MAX_OBSERVATIONS = 1000
MAX_TEXT = 500
COMPONENT = "EV_Central"
ACTOR_RECONCILE = "weather-reconcile"


# ---------------------------------------------------------------- validation (pure)
def _number(value: Any, name: str, optional: bool = False) -> tuple[Optional[Decimal], Optional[str]]:
    """A finite JSON number within ±TEMPERATURE_LIMIT as a Decimal (bools and strings refused)."""
    if value is None and optional:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"{name} must be a number" + (" or null" if optional else "")
    if abs(value) > TEMPERATURE_LIMIT:
        return None, f"{name} must be between -{TEMPERATURE_LIMIT} and {TEMPERATURE_LIMIT} °C"
    return Decimal(str(value)).quantize(Decimal("0.01")), None


def _place(body: dict) -> tuple[Optional[tuple[str, str]], Optional[str]]:
    """(city, country) of a body, trimmed; country defaults to ES."""
    city, country = body.get("city"), body.get("country", "ES")
    if not isinstance(city, str) or not city.strip() or len(city) > 100:
        return None, "city must be a non-empty text of at most 100 characters"
    if not isinstance(country, str) or not country.strip().isalpha() or len(country.strip()) != 2:
        return None, "country must be a two-letter code"
    return (" ".join(city.split()), country.strip().upper()), None


def validate_thresholds(body: Any) -> tuple[Optional[dict], Optional[str]]:
    """{"min_c": number, "max_c": number|null} with min_c < max_c."""
    if not isinstance(body, dict) or "min_c" not in body:
        return None, 'body must be {"min_c": number, "max_c": number|null}'
    unknown = set(body) - {"min_c", "max_c"}
    if unknown:
        return None, f"unknown field(s): {', '.join(sorted(unknown))}"
    min_c, problem = _number(body["min_c"], "min_c")
    if problem:
        return None, problem
    max_c, problem = _number(body.get("max_c"), "max_c", optional=True)
    if problem:
        return None, problem
    if max_c is not None and min_c >= max_c:
        return None, "min_c must be lower than max_c"
    return {"min_c": min_c, "max_c": max_c}, None


def validate_observations(body: Any) -> tuple[Optional[list[dict]], Optional[str]]:
    """{"observations": [{"city", "country", "temperature"}]} (1..MAX_OBSERVATIONS items)."""
    items = body.get("observations") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_OBSERVATIONS:
        return None, f'body must be {{"observations": [...]}} with 1 to {MAX_OBSERVATIONS} items'
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return None, f"observations[{i}] must be an object"
        place, problem = _place(item)
        temperature, problem = (None, problem) if problem else _number(item.get("temperature"), "temperature")
        if problem:
            return None, f"observations[{i}]: {problem}"
        out.append({"city": place[0], "country": place[1], "temperature": temperature})
    return out, None


def validate_alert(body: Any) -> tuple[Optional[dict], Optional[str]]:
    """{"city", "country", "kind": ALERT|CLEAR, "temperature": number|null}."""
    if not isinstance(body, dict):
        return None, 'body must be {"city", "country", "kind", "temperature"}'
    place, problem = _place(body)
    if problem:
        return None, problem
    if body.get("kind") not in KINDS:
        return None, "kind must be ALERT or CLEAR"
    temperature, problem = _number(body.get("temperature"), "temperature", optional=True)
    if problem:
        return None, problem
    return {"city": place[0], "country": place[1], "kind": body["kind"], "temperature": temperature}, None


def validate_message(body: Any) -> tuple[Optional[dict], Optional[str]]:
    """{"component": text, "level": error|warning|info, "text": text} for the Front's messages."""
    if not isinstance(body, dict):
        return None, 'body must be {"component", "level", "text"}'
    component, level, text = body.get("component", "EV_W"), body.get("level", "error"), body.get("text")
    if not isinstance(component, str) or not component.strip() or len(component) > 40:
        return None, "component must be a non-empty text of at most 40 characters"
    if level not in LEVELS:
        return None, f"level must be one of {', '.join(LEVELS)}"
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        return None, f"text must be a non-empty text of at most {MAX_TEXT} characters"
    return {"component": component.strip(), "level": level, "text": text.strip()}, None


def thresholds_json(t: dict) -> dict:
    """Thresholds as JSON numbers."""
    return {"min_c": float(t["min_c"]), "max_c": None if t["max_c"] is None else float(t["max_c"])}


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat(timespec="seconds") if value else None


# ---------------------------------------------------------------- the desk
class WeatherDesk:
    """The weather state CENTRAL keeps next to its service: latest temperatures and places under alert."""

    def __init__(self, service: CentralService, repo, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.service, self.repo, self.clock, self.now = service, repo, clock, now
        self._lock = threading.Lock()
        self._applying = threading.Lock()  # one ALERT/CLEAR/reconcile applied at a time: none undoes another
        self.latest: dict[tuple[str, str], dict] = {}  # place_key -> {city, country, temperature, observed_at}
        self.alerted: dict[tuple[str, str], dict] = {}  # place_key -> {city, country}
        self._stored_at: dict[tuple[str, str], tuple[float, Decimal]] = {}

    def load(self) -> None:
        """Latest temperatures and places under alert from the database (after a CENTRAL restart)."""
        with self._lock:
            for row in self.repo.latest_temperatures():
                key = place_key(row["city"], row["country"])
                self.latest[key] = {"city": row["city"], "country": row["country"],
                                    "temperature": Decimal(row["temperature"]), "observed_at": row["observed_at"]}
            for row in self.repo.latest_weather_alerts():
                if row["kind"] == "ALERT":
                    self.alerted[place_key(row["city"], row["country"])] = {"city": row["city"], "country": row["country"]}
        self.service.set_temperatures({k: float(v["temperature"]) for k, v in self.latest.items()})

    # ---- thresholds ----
    def thresholds(self) -> dict:
        """The stored thresholds as JSON numbers."""
        return thresholds_json(self.repo.weather_thresholds())

    def set_thresholds(self, t: dict, actor: str) -> dict:
        """Store validated thresholds; EV_W applies them on its next round."""
        self.repo.save_weather_thresholds(t["min_c"], t["max_c"])
        out = thresholds_json(t)
        self._audit("SYSTEM", "weather_thresholds", actor, True, f"min {out['min_c']} °C, max {out['max_c']} °C")
        return out

    # ---- observations ----
    def observe(self, observations: list[dict]) -> int:
        """Record validated observations; returns how many went to weather_history (change or HISTORY_EVERY_S)."""
        now, t = self.now(), self.clock()
        to_store = []
        with self._lock:
            for obs in observations:
                key = place_key(obs["city"], obs["country"])
                self.latest[key] = {**obs, "observed_at": now}
                last = self._stored_at.get(key)
                if last is None or last[1] != obs["temperature"] or t - last[0] >= HISTORY_EVERY_S:
                    self._stored_at[key] = (t, obs["temperature"])
                    to_store.append({**obs, "observed_at": now})
        self.repo.add_weather_observations(to_store)
        observed = {place_key(o["city"], o["country"]): float(o["temperature"]) for o in observations}
        self.service.set_temperatures(observed)
        with self._applying:
            with self._lock:
                alerted = set(self.alerted)
            self._apply(alerted, True, ACTOR_RECONCILE)
            self._apply(set(observed) - alerted, False, ACTOR_RECONCILE)
        return len(to_store)

    # ---- alerts ----
    def alert(self, city: str, country: str, kind: str, temperature: Optional[Decimal], actor: str) -> list[str]:
        """ALERT/CLEAR for a place: set or clear WEATHER on its CPs; returns the CPs that changed."""
        key, on = place_key(city, country), kind == "ALERT"
        with self._applying:
            with self._lock:
                transition = (key in self.alerted) != on
                if on:
                    self.alerted[key] = {"city": city, "country": country}
                else:
                    self.alerted.pop(key, None)
            if transition:
                self.repo.add_weather_alert(city, country, kind, temperature)
                self._audit("INCIDENT" if on else "STATUS", f"weather_{kind.lower()}", actor, True,
                            f"{city},{country}: {temperature} °C")
            return self._apply({key}, on, actor)

    def _apply(self, places: set[tuple[str, str]], on: bool, actor: str) -> list[str]:
        changed = []
        for cp_id in self.service.reason_targets(places, WEATHER, on) if places else ():
            try:
                self.service.set_reason(cp_id, WEATHER, on, actor, after_supply=True)
                changed.append(cp_id)
            except KeyError:  # removed meanwhile
                continue
        return changed

    # ---- views ----
    def overview(self, alerts_limit: int = 50) -> dict:
        """Thresholds, every observed place (temperature, alert, CPs) and the newest alerts."""
        cps_by_place: dict[tuple[str, str], list[str]] = {}
        for cp in self.service.snapshot():
            cps_by_place.setdefault(place_key(cp["city"], cp["country"]), []).append(cp["cp_id"])
        with self._lock:
            places = {**{k: {"city": v["city"], "country": v["country"]} for k, v in self.alerted.items()},
                      **self.latest}
            cities = [{"city": v["city"], "country": v["country"],
                       "temperature": float(v["temperature"]) if v.get("temperature") is not None else None,
                       "observed_at": _iso(v.get("observed_at")), "alert": k in self.alerted,
                       "charging_points": cps_by_place.get(k, [])}
                      for k, v in sorted(places.items())]
        alerts = [{"id": r["id"], "city": r["city"], "country": r["country"], "kind": r["kind"],
                   "temperature": None if r["temperature"] is None else float(r["temperature"]),
                   "created_at": _iso(r["created_at"])} for r in self.repo.weather_alerts(alerts_limit)]
        return {"thresholds": self.thresholds(), "cities": cities, "alerts": alerts}

    def message(self, msg: dict) -> None:
        """A message from the weather office for the Front's history."""
        self.repo.app_message(msg["component"], msg["level"], msg["text"])

    def refused(self, action: str, source_ip: Optional[str], why: str) -> None:
        """Audit a request refused for its API key (never the key itself)."""
        try:
            self.repo.audit(COMPONENT, "SECURITY", action, None, False, why, source_ip)
        except Exception:
            logger.exception("could not store audit record")

    def _audit(self, category: str, action: str, actor: str, success: bool, text: str) -> None:
        try:
            self.repo.audit(COMPONENT, category, action, actor, success, text)
        except Exception:
            logger.exception("could not store audit record")
