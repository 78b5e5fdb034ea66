"""Logging set-up: readable lines on stderr, JSON lines per component under var/log."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from common.config import var_dir


class JsonLines(logging.Formatter):
    """One JSON object per record: timestamp, component, level, message."""

    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "component": self.component,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def quiet_kafka_client(record: logging.LogRecord) -> bool:
    """Keep kafka-python's connection chatter (dozens of lines a second while a broker is away) off the
    console; the JSON log file still has it, and our own code says once what is happening."""
    return not record.name.startswith("kafka") or record.levelno >= logging.CRITICAL


def setup_logging(component: str, level: str = "INFO", log_dir: Optional[Path] = None) -> None:
    """Log to stderr and to var/log/<component>.jsonl."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(f"%(asctime)s {component} %(levelname)s %(name)s: %(message)s"))
    console.addFilter(quiet_kafka_client)
    root.addHandler(console)
    folder = log_dir or var_dir() / "log"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in component)
    file_handler = logging.FileHandler(folder / f"{safe}.jsonl", encoding="utf-8")
    file_handler.setFormatter(JsonLines(component))
    root.addHandler(file_handler)
    for noisy in ("kafka", "werkzeug", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
