"""The Engine's crash file: ``<state-dir>/<cp_id>.json`` (SPEC §5, "Engine killed").

It holds ``EngineCore.snapshot()``: the running supply and the final records
CENTRAL has not acknowledged yet. This is a local file of the Engine, not a
wire format, so it is plain JSON of that snapshot. Writes are atomic (temporary
file, fsync, ``os.replace``) so a kill mid-write leaves the previous version; an
unreadable file is moved aside (``.bad``) rather than crashing the Engine.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)


class SupplyStore:
    """Saves, loads and deletes one CP's snapshot file."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._last: Optional[dict] = None

    def path(self, cp_id: str) -> Path:
        """Where this CP's snapshot lives (the id is made file-name safe)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cp_id)
        return self.folder / f"{safe}.json"

    def load(self, cp_id: str) -> Optional[dict]:
        """The snapshot a previous run left, or None."""
        path = self.path(cp_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.error("unreadable state file %s (%s); moved aside", path, exc)
            os.replace(path, path.with_suffix(".json.bad"))
            return None
        if not isinstance(data, dict):
            logger.error("state file %s is not an object; ignored", path)
            return None
        self._last = data
        return data

    def save(self, cp_id: str, snapshot: dict) -> None:
        """Write the snapshot atomically, only when it changed."""
        if snapshot == self._last:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(cp_id)
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(snapshot, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._last = snapshot

    def delete(self, cp_id: str) -> None:
        """Nothing left to lose: remove the file."""
        if self._last is None and not self.path(cp_id).exists():
            return
        try:
            self.path(cp_id).unlink()
        except FileNotFoundError:
            pass
        self._last = None
