"""Between the Engine's event loop and its owner panel: commands in, views and messages out.

The Engine loop is the only thread that touches the core. The panel never reads the core: the
loop calls :meth:`PanelBridge.publish` after every event and tick with a fresh view, and
:meth:`say` with every operator line. Panel buttons call :meth:`submit` with the same console
key the operator would press, which the loop handles like any typed key (``("cmd", key)``).
"""
from __future__ import annotations

import json
import threading
from collections import deque
from datetime import datetime
from typing import Callable, Optional

MAX_MESSAGES = 60
LIVE_PREFIX = "Charging "  # the per-second telemetry line: the panel shows the figures instead
COMMAND_KEYS = {"request": "r", "plug": "p", "unplug": "u", "ko": "k", "recover": "o"}


class PanelBridge:
    """Thread-safe hand-over of views, messages and commands."""

    def __init__(self, submit_key: Callable[[str], None]):
        self._submit_key = submit_key
        self.changed = threading.Event()
        self.messages: deque = deque(maxlen=MAX_MESSAGES)
        self._lock = threading.Lock()
        self._view: Optional[dict] = None
        self._view_json = ""
        self.ready = threading.Event()

    def submit(self, command: str) -> bool:
        """A panel button: the console key for it goes to the Engine loop; False when unknown."""
        key = COMMAND_KEYS.get(command)
        if key is None:
            return False
        self._submit_key(key)
        return True

    def say(self, text: str) -> None:
        """An operator line (loop thread); per-second telemetry lines are left to the console."""
        if text.startswith(LIVE_PREFIX):
            return
        with self._lock:
            self.messages.append({"time": datetime.now().strftime("%H:%M:%S"), "text": text})
        self.changed.set()

    def message_list(self) -> list[dict]:
        """The recent operator lines, oldest first."""
        with self._lock:
            return list(self.messages)

    def publish(self, view: dict) -> None:
        """A fresh view (loop thread); wakes the push task only when something changed."""
        text = json.dumps(view, sort_keys=True, default=str)
        if text == self._view_json:
            return
        with self._lock:
            self._view, self._view_json = json.loads(text), text
        self.ready.set()
        self.changed.set()

    def view(self, wait_s: float = 0.0) -> Optional[dict]:
        """The latest view (optionally waiting for the first)."""
        self.ready.wait(wait_s)
        with self._lock:
            return self._view
