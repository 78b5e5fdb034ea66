"""The weather office's core (SPEC §10): locations, thresholds, the edge trigger and one poll round.

Theory of operation.
* Locations = places of the CPs (synced from API_Central) ∪ places the operator added − places the
  operator removed. A place is (city, country), matched case- and space-insensitively.
* Every round (4 s) the office reads the thresholds from API_Central (keeping the last ones if it
  cannot), asks the provider for every place at once (a slow or failing city never holds up the
  others), posts the temperatures, then runs the edge trigger per place.
* Edge trigger: ``edge(alerted, temperature, thresholds)`` is a pure table: ALERT when a place is out
  of range and CENTRAL has not acknowledged an ALERT for it, CLEAR when it is back in range and
  CENTRAL has. The acknowledged state only changes when CENTRAL answered 2xx, so a lost ALERT/CLEAR is
  sent again on the next round and never twice once accepted. A failed reading changes nothing.
* A place that stops being watched while under alert gets a CLEAR, so its CPs are never left PARADO
  with nobody watching.
* A city the provider cannot answer for shows UNREACHABLE (once per outage, on the console and among
  the Front's messages); its last value is kept and the other cities go on.

No I/O here besides the injected ports: ``provider.temperature(location)``, the ``central`` client
and ``out(text)`` for the console.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Optional, Protocol

logger = logging.getLogger(__name__)

UNREACHABLE = "Imposible acceder al clima. Conexión con Openweather no disponible"
CENTRAL_DOWN = "Imposible conectar con la CENTRAL"
ALERT, CLEAR = "ALERT", "CLEAR"
MESSAGE_MAX = 500  # API_Central's limit for a message text


def places(labels: list[str], shown: int = 6) -> str:
    """'A, B, C' or 'A, B, … y N más' (a message stays short with hundreds of cities)."""
    if len(labels) <= shown:
        return ", ".join(labels)
    return f"{', '.join(labels[:shown])}, … y {len(labels) - shown} más"


class ProviderError(Exception):
    """The provider has no temperature for a place right now (readable text, never a key)."""

    def __init__(self, text: str, status: Optional[int] = None):
        super().__init__(text)
        self.status = status


class CentralError(Exception):
    """API_Central could not be reached or refused a request."""

    def __init__(self, text: str, status: Optional[int] = None):
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class Location:
    """A place the office watches: a city and a two-letter country code."""

    city: str
    country: str = "ES"

    @property
    def key(self) -> tuple[str, str]:
        """Identity: city case- and space-insensitive, country upper-case (as CENTRAL's place_key)."""
        return " ".join(self.city.split()).casefold(), self.country.strip().upper()

    @property
    def label(self) -> str:
        return f"{self.city},{self.country}"

    @classmethod
    def parse(cls, text: str) -> "Location":
        """'City' or 'City,CC' (raises ValueError)."""
        city, _, country = text.strip().rpartition(",") if "," in text else (text.strip(), "", "ES")
        city, country = " ".join(city.split()), (country.strip() or "ES").upper()
        if not city or len(city) > 100:
            raise ValueError("ciudad vacía o demasiado larga")
        if len(country) != 2 or not country.isalpha():
            raise ValueError(f"país {country!r}: usa un código de dos letras (ES, FR, ...)")
        return cls(city, country)


@dataclass(frozen=True)
class Thresholds:
    """The allowed range: min_c ≤ t (and t ≤ max_c when there is a maximum)."""

    min_c: float = 0.0
    max_c: Optional[float] = None

    def in_range(self, temperature: float) -> bool:
        return temperature >= self.min_c and (self.max_c is None or temperature <= self.max_c)

    def text(self) -> str:
        return f"[{self.min_c:g} °C, {'—' if self.max_c is None else f'{self.max_c:g} °C'}]"


def edge(alerted: bool, temperature: Optional[float], thresholds: Thresholds) -> Optional[str]:
    """ALERT, CLEAR or None for one place (pure; None temperature = no reading this round)."""
    if temperature is None:
        return None
    out = not thresholds.in_range(temperature)
    if out and not alerted:
        return ALERT
    if not out and alerted:
        return CLEAR
    return None


@dataclass
class Reading:
    """What the office knows of one place."""

    temperature: Optional[float] = None
    at: Optional[float] = None          # wall time of the last good reading
    error: Optional[str] = None         # set while the provider fails for this place


class Provider(Protocol):
    name: str

    def temperature(self, location: Location) -> float: ...


class Central(Protocol):
    def locations(self) -> list[Location]: ...
    def alerted_places(self) -> list[Location]: ...
    def thresholds(self) -> Thresholds: ...
    def observations(self, items: list[dict]) -> None: ...
    def alert(self, location: Location, kind: str, temperature: Optional[float]) -> list[str]: ...
    def message(self, level: str, text: str) -> None: ...


class LocationBook:
    """Synced places, operator additions and operator removals (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.synced: dict[tuple[str, str], Location] = {}
        self.added: dict[tuple[str, str], Location] = {}
        self.removed: dict[tuple[str, str], Location] = {}

    def current(self) -> list[Location]:
        """The places watched now, sorted by label."""
        with self._lock:
            places = {**self.synced, **self.added}
            return sorted((loc for k, loc in places.items() if k not in self.removed), key=lambda l: l.key)

    def sync(self, locations: Iterable[Location]) -> tuple[list[Location], list[Location]]:
        """Replace the synced places; returns (appeared, disappeared) among the watched places."""
        before = {loc.key: loc for loc in self.current()}
        with self._lock:
            self.synced = {loc.key: loc for loc in locations}
        after = {loc.key: loc for loc in self.current()}
        return [after[k] for k in after if k not in before], [before[k] for k in before if k not in after]

    def add(self, location: Location) -> bool:
        """The operator watches a place (again); False when it was already watched."""
        was = location.key in {loc.key for loc in self.current()}
        with self._lock:
            self.removed.pop(location.key, None)
            if location.key not in self.synced:
                self.added.setdefault(location.key, location)
        return not was

    def remove(self, location: Location) -> bool:
        """The operator stops watching a place, even a CP's one (until added again); False if not watched."""
        was = location.key in {loc.key for loc in self.current()}
        with self._lock:
            self.added.pop(location.key, None)
            if location.key in self.synced:
                self.removed[location.key] = self.synced[location.key]
        return was

    def source(self, location: Location) -> str:
        """'cp' (synced from API_Central) or 'operator'."""
        with self._lock:
            return "cp" if location.key in self.synced else "operator"


@dataclass
class RoundResult:
    """What one round did (for tests and the status line)."""

    temperatures: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)  # (kind, label) accepted by CENTRAL


class WeatherOffice:
    """Keeps the locations, polls them, and tells API_Central (thread-safe; rounds never overlap)."""

    def __init__(self, provider: Provider, central: Central, out: Callable[[str], None] = print,
                 wall: Callable[[], float] = time.time, workers: int = 8):
        self.provider, self.central, self.out, self.wall = provider, central, out, wall
        self.book = LocationBook()
        self.thresholds = Thresholds()
        self.readings: dict[tuple[str, str], Reading] = {}
        self.alerted: dict[tuple[str, str], Location] = {}  # ALERT acknowledged by CENTRAL
        self._seeded = False
        self._central_ok: Optional[bool] = None
        self._key_ok: Optional[bool] = None
        self._outbox: deque[tuple[str, str]] = deque(maxlen=50)
        self._round_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wx-fetch")
        self.rounds = 0

    def close(self) -> None:
        """Stop the fetch threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def say(self, text: str) -> None:
        """A console line with the time."""
        self.out(f"[{datetime.now().strftime('%H:%M:%S')}] {text}")

    # ---- locations ----
    def sync(self) -> bool:
        """Places of the CPs from API_Central (and, the first time, which are under alert); False on failure."""
        try:
            if not self._seeded:
                self.alerted.update({loc.key: loc for loc in self.central.alerted_places()})
                self._seeded = True
            locations = self.central.locations()
        except CentralError as exc:
            self._central_state(False, exc)
            return False
        self._central_state(True)
        appeared, gone = self.book.sync(locations)
        for loc in appeared:
            self.say(f"Ubicación añadida (CP): {loc.label}")
        for loc in gone:
            self.say(f"Ubicación retirada (sin CPs): {loc.label}")
        return True

    def add_city(self, text: str) -> str:
        """Operator: watch a city ('City[,CC]'); returns a readable answer."""
        location = Location.parse(text)
        if self.book.add(location):
            return f"Ubicación añadida: {location.label}"
        return f"{location.label} ya estaba en la lista"

    def remove_city(self, text: str) -> str:
        """Operator: stop watching a city; its alert, if any, is cleared on the next round."""
        location = Location.parse(text)
        if self.book.remove(location):
            return f"Ubicación retirada: {location.label}"
        return f"{location.label} no estaba en la lista"

    def status(self) -> list[dict]:
        """Every watched place with its last reading, alert and source."""
        rows = []
        for loc in self.book.current():
            reading = self.readings.get(loc.key, Reading())
            rows.append({"city": loc.city, "country": loc.country, "source": self.book.source(loc),
                         "temperature": reading.temperature, "observed_at": reading.at,
                         "error": reading.error, "alert": loc.key in self.alerted})
        return rows

    # ---- one round ----
    def poll_round(self) -> RoundResult:
        """Thresholds, temperatures of every place, observations and edge-triggered alerts."""
        with self._round_lock:
            self.rounds += 1
            self._refresh_thresholds()
            self._flush_messages()
            locations = self.book.current()
            result = self._fetch(locations)
            self._post_observations(locations, result)
            self._trigger(locations, result)
            self._clear_unwatched(result)
            return result

    def _refresh_thresholds(self) -> None:
        try:
            new = self.central.thresholds()
        except CentralError as exc:
            self._central_state(False, exc)
            return
        self._central_state(True)
        if new != self.thresholds:
            self.say(f"Umbrales: {new.text()}")
            self.thresholds = new

    def _fetch(self, locations: list[Location]) -> RoundResult:
        result = RoundResult()
        futures = {loc: self._pool.submit(self.provider.temperature, loc) for loc in locations}
        newly_failed: dict[str, list[str]] = {}
        recovered = []
        for loc, future in futures.items():
            reading = self.readings.setdefault(loc.key, Reading())
            try:
                value = round(float(future.result()), 2)
            except ProviderError as exc:
                result.failed[loc.label] = str(exc)
                if reading.error is None:
                    newly_failed.setdefault(str(exc), []).append(loc.label)
                reading.error = str(exc)
                continue
            except Exception as exc:  # our bug or an odd answer: one city, never the round
                logger.exception("provider failed for %s", loc.label)
                result.failed[loc.label] = type(exc).__name__
                reading.error = reading.error or type(exc).__name__
                continue
            if reading.error is not None:
                recovered.append(loc.label)
            reading.temperature, reading.at, reading.error = value, self.wall(), None
            result.temperatures[loc.label] = value
        self._report_provider(newly_failed, recovered, len(locations))
        return result

    def _report_provider(self, newly_failed: dict[str, list[str]], recovered: list[str], watched: int) -> None:
        """One line (and one Front message) per round for the cities that just failed, and for those back."""
        if newly_failed:
            parts = [f"{'todas las ciudades' if len(labels) == watched > 1 else places(labels)}: {why}"
                     for why, labels in newly_failed.items()]
            text = f"{UNREACHABLE} ({'; '.join(parts)})"
            self.say(text)
            self._message("error", text[:MESSAGE_MAX])
        if recovered:
            text = f"Clima disponible de nuevo: {places(recovered)}"
            self.say(text)
            self._message("info", text[:MESSAGE_MAX])

    def _post_observations(self, locations: list[Location], result: RoundResult) -> None:
        items = [{"city": loc.city, "country": loc.country, "temperature": result.temperatures[loc.label]}
                 for loc in locations if loc.label in result.temperatures]
        if not items:
            return
        try:
            self.central.observations(items)
        except CentralError as exc:
            self._central_state(False, exc)
            return
        self._central_state(True, write=True)

    def _trigger(self, locations: list[Location], result: RoundResult) -> None:
        for loc in locations:
            temperature = result.temperatures.get(loc.label)
            kind = edge(loc.key in self.alerted, temperature, self.thresholds)
            if kind:
                self._send(loc, kind, temperature, result)

    def _clear_unwatched(self, result: RoundResult) -> None:
        watched = {loc.key for loc in self.book.current()}
        for key, loc in list(self.alerted.items()):
            if key not in watched:
                self._send(loc, CLEAR, self.readings.get(key, Reading()).temperature, result, why="ya no se vigila")

    def _send(self, loc: Location, kind: str, temperature: Optional[float], result: RoundResult,
              why: Optional[str] = None) -> None:
        try:
            cps = self.central.alert(loc, kind, temperature)
        except CentralError as exc:
            self._central_state(False, exc)
            return
        self._central_state(True, write=True)
        if kind == ALERT:
            self.alerted[loc.key] = loc
        else:
            self.alerted.pop(loc.key, None)
        result.events.append((kind, loc.label))
        shown = "—" if temperature is None else f"{temperature:g} °C"
        word = "ALERTA" if kind == ALERT else "FIN DE ALERTA"
        self.say(f"{word} {loc.label}: {shown}, rango {self.thresholds.text()}"
                 f"{f' ({why})' if why else ''}; CPs afectados: {', '.join(cps) or 'ninguno'}")

    # ---- messages for the Front, and CENTRAL's reachability ----
    def _message(self, level: str, text: str) -> None:
        self._outbox.append((level, text))
        self._flush_messages()

    def _flush_messages(self) -> None:
        """Post the messages CENTRAL has not taken yet (kept, bounded, while it is away)."""
        while self._outbox:
            level, text = self._outbox[0]
            try:
                self.central.message(level, text)
            except CentralError as exc:
                self._central_state(False, exc)
                return
            self._outbox.popleft()
            self._central_state(True, write=True)

    def _central_state(self, ok: bool, exc: Optional[CentralError] = None, write: bool = False) -> None:
        """Say once when CENTRAL goes away / comes back, and once when it refuses our key."""
        if not ok and exc is not None and exc.status == 401:
            if self._key_ok is not False:
                self._key_ok = False
                self.say("La CENTRAL rechaza la clave del servicio de clima (401); revisa EVC_WEATHER_API_KEY")
            return
        if not ok and exc is not None and exc.status is not None:
            logger.warning("API_Central answered %s", exc)
            return
        if ok and write:
            self._key_ok = True
        if ok != self._central_ok:
            self._central_ok = ok
            self.say("Conectado con la CENTRAL" if ok else f"{CENTRAL_DOWN} ({exc})")
