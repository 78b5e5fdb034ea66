"""Configuration: positional arguments, flags with environment defaults, and `.env` files."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent


def load_env() -> None:
    """Load `.env` from the working directory and the repo root (real environment wins)."""
    load_dotenv(Path.cwd() / ".env", override=False)
    load_dotenv(ROOT / ".env", override=False)
    db_env = os.environ.get("EVC_DB_ENV_FILE")
    if db_env:
        load_dotenv(db_env, override=False)


def env(name: str, default: Optional[str] = None) -> Optional[str]:
    """An EVC_* setting from the environment."""
    return os.environ.get(name, default)


def host_port(text: str, default_port: Optional[int] = None) -> tuple[str, int]:
    """'host:port' (or 'host' with a default port) -> (host, port); raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"expected host:port, got {text!r}")
        return text, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


def host_port_arg(text: str) -> tuple[str, int]:
    """argparse type for host:port."""
    try:
        return host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def secret_from(name: str) -> Optional[str]:
    """A secret from $NAME or from the file named by $NAME_FILE; never from code."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def var_dir() -> Path:
    """Runtime folder (git-ignored): logs, buffers, pid files."""
    path = Path(os.environ.get("EVC_VAR", ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path
