"""Temperature providers of the weather office: OpenWeather (current weather) and a scripted scenario.

Both answer ``temperature(location) -> °C`` or raise ``ProviderError`` with a readable reason.

* ``OpenWeatherProvider`` calls the current-weather endpoint (``q=City,CC&units=metric&appid=KEY``) and
  maps its answers: 200 → ``main.temp``; 401 invalid key, 404 city not found, 429, 5xx, timeouts and
  refused connections → ProviderError. The key never appears in a message or a log line (requests'
  own exception texts carry the URL, so they are never shown).
* ``ScenarioProvider`` reads a JSON file of points ``[t_s, °C]`` per city and interpolates linearly,
  looping every ``period_s``; a ``null`` point means "no data" until the next point (the offline way to
  show the UNREACHABLE message). Cities not in the file get a steady, plausible temperature.

Scenario file (demo/weather/scenario.json)::

    {"period_s": 240,
     "default": {"base": 14.0, "spread": 6.0, "amplitude": 1.5},
     "cities": {"Bilbao,ES": [[0, 6], [40, 1], [60, -2], [130, -3], [160, 4], [240, 6]]}}
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Optional

import requests

from common.config import secret_from
from EV_Weather.office import Location, ProviderError

OPENWEATHER_URL = "https://api.openweathermap.org/data/2.5/weather"
KEY_ENV = "EVC_OPENWEATHER_API_KEY"
LEGACY_KEY_ENV = "OPENWEATHER_API_KEY"  # the name the original team used
DEFAULT_KEY_FILE = Path(__file__).resolve().parent / "api_key.txt"  # git-ignored


def openweather_key(key_file: Optional[Path] = DEFAULT_KEY_FILE) -> Optional[str]:
    """The OpenWeather key: $EVC_OPENWEATHER_API_KEY (or its _FILE, or .env), $OPENWEATHER_API_KEY, or the key file."""
    key = secret_from(KEY_ENV) or os.environ.get(LEGACY_KEY_ENV)
    if not key and key_file is not None and Path(key_file).is_file():
        key = Path(key_file).read_text(encoding="utf-8").strip()
    return key or None


class OpenWeatherProvider:
    """Current weather by city and country from OpenWeather (or a compatible stub)."""

    name = "openweather"

    def __init__(self, api_key: str, url: str = OPENWEATHER_URL, timeout_s: float = 3.0,
                 session_factory: Callable[[], requests.Session] = requests.Session):
        self.url, self.timeout_s, self._key = url, timeout_s, api_key
        self._session_factory = session_factory
        self._local = threading.local()  # one session per fetch thread

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._session_factory()
        return session

    def temperature(self, location: Location) -> float:
        """°C now at the location (ProviderError when OpenWeather cannot answer for it)."""
        params = {"q": f"{location.city},{location.country}", "units": "metric", "appid": self._key}
        try:
            response = self._session().get(self.url, params=params, timeout=self.timeout_s)
        except requests.Timeout:
            raise ProviderError("sin respuesta de OpenWeather (timeout)") from None
        except requests.RequestException as exc:
            raise ProviderError(f"sin conexión con OpenWeather ({type(exc).__name__})") from None
        body = _json_or_none(response)
        if response.status_code != 200:
            raise ProviderError(f"OpenWeather HTTP {response.status_code}: {self._clean(_message(body))}",
                                response.status_code)
        try:
            value = float(body["main"]["temp"])
        except (TypeError, KeyError, ValueError):
            raise ProviderError("respuesta de OpenWeather sin main.temp") from None
        if not math.isfinite(value):
            raise ProviderError("temperatura no válida en la respuesta de OpenWeather")
        return value

    def _clean(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _json_or_none(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _message(body) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:200]
    return "respuesta no válida"


class ScenarioProvider:
    """Scripted temperatures per city over time, looping (offline demos and tests)."""

    name = "scenario"

    def __init__(self, scenario: dict, clock: Callable[[], float] = time.monotonic):
        self.clock, self.t0 = clock, clock()
        self.default = {"base": 14.0, "spread": 6.0, "amplitude": 1.5, **scenario.get("default", {})}
        self.cities = {Location.parse(name).key: _points(name, pts) for name, pts in scenario.get("cities", {}).items()}
        last = max((p[-1][0] for p in self.cities.values() if p), default=0.0)
        self.period_s = float(scenario.get("period_s", last or 60.0))
        if self.period_s <= 0 or self.period_s < last:
            raise ValueError(f"period_s must be positive and at least the last point's time ({last:g} s)")

    @classmethod
    def from_file(cls, path: Path, clock: Callable[[], float] = time.monotonic) -> "ScenarioProvider":
        """Load a scenario file (ValueError with the reason when it is not valid)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"scenario {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"scenario {path}: expected a JSON object")
        return cls(data, clock)

    def temperature(self, location: Location) -> float:
        """°C of the location at the scenario's current time (ProviderError for a null stretch)."""
        t = (self.clock() - self.t0) % self.period_s
        points = self.cities.get(location.key)
        if points is None:
            return self._default(location, t)
        value = interpolate(points, t, self.period_s)
        if value is None:
            raise ProviderError("escenario: sin datos para esta ciudad ahora")
        return value

    def _default(self, location: Location, t: float) -> float:
        h = zlib.crc32("|".join(location.key).encode()) / 0xFFFFFFFF  # stable per city, no randomness
        wave = math.sin(2 * math.pi * (t / self.period_s + h))
        d = self.default
        return round(d["base"] + (h - 0.5) * d["spread"] + d["amplitude"] * wave, 1)


def _points(name: str, raw) -> list[tuple[float, Optional[float]]]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"scenario city {name}: expected a list of [t_s, °C or null] points")
    points = []
    for item in raw:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], (int, float))
                or not (item[1] is None or isinstance(item[1], (int, float)))):
            raise ValueError(f"scenario city {name}: bad point {item!r}")
        points.append((float(item[0]), None if item[1] is None else float(item[1])))
    if [p[0] for p in points] != sorted({p[0] for p in points}) or points[0][0] < 0:
        raise ValueError(f"scenario city {name}: point times must be increasing from 0")
    return points


def interpolate(points: list[tuple[float, Optional[float]]], t: float, period_s: float) -> Optional[float]:
    """Value at t: linear between two numbers, the earlier value when either end is null; wraps at period_s."""
    if t < points[0][0]:  # before the first point: the stretch from the last point, wrapping
        start, end = (points[-1][0] - period_s, points[-1][1]), (points[0][0], points[0][1])
    else:
        i = max(i for i, p in enumerate(points) if p[0] <= t)
        start = points[i]
        end = points[i + 1] if i + 1 < len(points) else (period_s + points[0][0], points[0][1])
    if start[1] is None or end[1] is None or end[0] == start[0]:
        return start[1]
    return round(start[1] + (end[1] - start[1]) * (t - start[0]) / (end[0] - start[0]), 2)
