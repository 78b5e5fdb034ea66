"""The weather office's client of API_Central (docs/CONTRACT-weather.md).

Writes carry ``X-API-Key``; every failure becomes ``CentralError`` (status None when CENTRAL could not
be reached). The key is never put in a message or a log line.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional, Union

import requests

from EV_Weather.office import CentralError, Location, Thresholds

KEY_HEADER = "X-API-Key"


class CentralClient:
    """GET/POST to API_Central with bounded timeouts; one requests session per thread."""

    def __init__(self, base_url: str, api_key: Optional[str], timeout_s: float = 3.0,
                 verify: Union[bool, str] = True, session_factory: Callable[[], requests.Session] = requests.Session):
        self.base_url, self.timeout_s, self.verify = base_url.rstrip("/"), timeout_s, verify
        self._key = api_key or ""
        self._session_factory = session_factory
        self._local = threading.local()

    def _request(self, method: str, path: str, body: Optional[dict] = None, keyed: bool = False):
        session = getattr(self._local, "session", None) or self._new_session()
        headers = {KEY_HEADER: self._key} if keyed else {}
        try:
            response = session.request(method, self.base_url + path, json=body, headers=headers,
                                       timeout=self.timeout_s, verify=self.verify)
        except requests.RequestException as exc:
            raise CentralError(f"{type(exc).__name__} en {self.base_url}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not 200 <= response.status_code < 300:
            code = data.get("error") if isinstance(data, dict) else None
            raise CentralError(f"{method} {path}: HTTP {response.status_code} {code or ''}".strip(), response.status_code)
        return data

    def _new_session(self) -> requests.Session:
        self._local.session = self._session_factory()
        return self._local.session

    def locations(self) -> list[Location]:
        """Distinct (city, country) of the CPs."""
        cps = self._request("GET", "/api/charging_points")
        seen: dict[tuple[str, str], Location] = {}
        for cp in cps or []:
            try:
                loc = Location.parse(f"{cp['city']},{cp.get('country') or 'ES'}")
            except (KeyError, TypeError, ValueError):
                continue
            seen.setdefault(loc.key, loc)
        return list(seen.values())

    def alerted_places(self) -> list[Location]:
        """Places CENTRAL has under a weather alert (to carry on after an EV_W restart)."""
        data = self._request("GET", "/api/weather") or {}
        return [Location(c["city"], c["country"]) for c in data.get("cities", []) if c.get("alert")]

    def thresholds(self) -> Thresholds:
        """The current range."""
        data = self._request("GET", "/api/weather/thresholds")
        try:
            return Thresholds(float(data["min_c"]), None if data.get("max_c") is None else float(data["max_c"]))
        except (TypeError, KeyError, ValueError):
            raise CentralError("thresholds: unexpected answer") from None

    def observations(self, items: list[dict]) -> None:
        """One round's temperatures."""
        self._request("POST", "/api/weather/observations", {"observations": items}, keyed=True)

    def alert(self, location: Location, kind: str, temperature: Optional[float]) -> list[str]:
        """ALERT or CLEAR for a place; returns the CPs CENTRAL changed."""
        data = self._request("POST", "/api/weather/alerts", {"city": location.city, "country": location.country,
                                                             "kind": kind, "temperature": temperature}, keyed=True)
        return list((data or {}).get("charging_points", []))

    def message(self, level: str, text: str) -> None:
        """A message for the Front's history."""
        self._request("POST", "/api/messages", {"component": "EV_W", "level": level, "text": text}, keyed=True)
