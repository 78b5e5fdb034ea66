"""The Front's one background task: follow API_Central and push what changed to every open page.

Theory of operation. API_Central's ``GET /api/changes?since=V&timeout=S`` answers as soon as the
network's version differs from V (within milliseconds of a change) or after S seconds, with the whole
snapshot. The task keeps one such long poll in flight in a daemon helper thread (a blocked request
never delays the rest and never holds up the process's exit) and itself refreshes the things that
have no version (messages, drivers, weather) every ``refresh_s``. Each long-poll answer is emitted to
every client as ``snapshot``; the others are emitted only when they differ from what was last sent.

If API_Central cannot be reached the task emits ``central`` ``{"up": false}`` (pages show the banner
"Imposible conectar con la CENTRAL" and grey the last data), forgets the version (a restarted CENTRAL
counts again from zero) and tries again every ``retry_s``. The first answer after that emits
``central`` ``{"up": true}`` and a fresh snapshot, so pages recover without a reload.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from EV_Central_Server.front.central_client import ApiError, CentralApi, CentralUnavailable

logger = logging.getLogger(__name__)
UNREACHABLE_TEXT = "Imposible conectar con la CENTRAL"
WEATHER_MISSING_TEXT = "El servicio de clima aún no está disponible en API_Central"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LiveFeed:
    """Latest view of the network as the Front shows it, kept fresh and pushed to the pages."""

    def __init__(self, api: CentralApi, emit: Callable[[str, Any], None], *, poll_timeout_s: float = 10.0,
                 refresh_s: float = 2.0, retry_s: float = 1.0, min_interval_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.api, self.emit, self.clock = api, emit, clock
        self.poll_timeout_s, self.refresh_s, self.retry_s = poll_timeout_s, refresh_s, retry_s
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._last_poll = float("-inf")
        self.version = -1
        self.state: dict[str, Any] = {
            "central": {"up": None, "message": "Conectando con la CENTRAL…", "since": _now_iso()},
            "version": -1, "charging_points": [], "ongoing": [], "messages": [], "drivers": [],
            "weather": {"available": False, "message": None},
        }

    # ---------------------------------------------------------------- what pages read
    def view(self) -> dict:
        """Everything a newly opened page needs (a shallow copy)."""
        with self._lock:
            return dict(self.state)

    # ---------------------------------------------------------------- one step each
    def poll_changes(self, timeout_s: Optional[float] = None) -> dict:
        """One long poll of /api/changes; updates and emits the snapshot (raises CentralUnavailable)."""
        wait = self.poll_timeout_s if timeout_s is None else timeout_s
        self._stop.wait(max(0.0, self._last_poll + self.min_interval_s - self.clock()))  # coalesce bursts
        self._last_poll = self.clock()
        try:
            data = self.api.get("/api/changes", params={"since": self.version, "timeout": wait}, timeout_s=wait + 5)
        except ApiError as exc:  # CENTRAL answered, but not with a snapshot: treat as not usable
            raise CentralUnavailable(f"API_Central: {exc.message}") from exc
        self._apply_snapshot(data)
        return data

    def refresh(self) -> None:
        """Messages, drivers and weather (no version of their own): emit those that changed."""
        self._replace("messages", self.api.get("/api/messages"))
        self._replace("drivers", self.api.get("/api/drivers"))
        self._replace("weather", self._weather())

    def _weather(self) -> dict:
        try:
            data = self.api.get("/api/weather")
        except ApiError as exc:
            if exc.status in (404, 405):
                return {"available": False, "message": WEATHER_MISSING_TEXT}
            return {"available": False, "message": f"Clima: {exc.message}"}
        return {"available": True, "message": None, **(data if isinstance(data, dict) else {})}

    def _apply_snapshot(self, data: dict) -> None:
        snapshot = {"version": data.get("version", -1), "charging_points": data.get("charging_points", []),
                    "ongoing": data.get("ongoing", [])}
        with self._lock:
            self.version = snapshot["version"]
            self.state.update(snapshot)
        self.set_central(True)
        self.emit("snapshot", snapshot)

    def _replace(self, key: str, value: Any) -> None:
        with self._lock:
            if self.state.get(key) == value:
                return
            self.state[key] = value
        self.emit(key, value)

    def set_central(self, up: bool, detail: str = "") -> None:
        """Record and emit whether API_Central answers (only when that changes)."""
        with self._lock:
            if self.state["central"]["up"] is up:
                return
            self.state["central"] = {"up": up, "message": None if up else UNREACHABLE_TEXT,
                                     "detail": detail, "since": _now_iso()}
            if not up:
                self.version = -1
            status = dict(self.state["central"])
        (logger.info if up else logger.warning)("API_Central %s %s", "reachable" if up else "unreachable", detail)
        self.emit("central", status)

    # ---------------------------------------------------------------- the task
    def start(self, start_background_task: Callable[..., Any]) -> bool:
        """Start the loop once (Flask-SocketIO's start_background_task); False if already running."""
        with self._lock:
            if self._started:
                return False
            self._started = True
        start_background_task(self.run)
        return True

    def stop(self) -> None:
        """Ask the loop to end (it ends within one poll)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()

    def run(self) -> None:
        """The background task: start the long-poll helper, then refresh the rest every refresh_s."""
        threading.Thread(target=self._follow_changes, name="front-longpoll", daemon=True).start()
        while not self._stop.is_set():
            self._safe_refresh()
            self._stop.wait(self.refresh_s)

    def _follow_changes(self) -> None:
        """One long poll after another; while API_Central is unreachable, one attempt every retry_s."""
        while not self._stop.is_set():
            try:
                self.poll_changes()
            except CentralUnavailable as exc:
                self.set_central(False, str(exc))
                self._stop.wait(self.retry_s)
            except Exception:  # our bug: log it and keep the pages alive
                logger.exception("long poll failed")
                self._stop.wait(self.retry_s)

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except CentralUnavailable as exc:
            self.set_central(False, str(exc))
        except ApiError as exc:
            logger.warning("refresh: %s", exc)
        except Exception:
            logger.exception("refresh failed")
