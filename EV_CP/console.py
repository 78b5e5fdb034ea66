"""Console glue shared by the Monitor and the Engine (SPEC §11 "Consoles").

Commands come as lines on standard input, so the programs can be driven
without a terminal (scripts, containers, ``run_all.sh``); end of input only
stops reading, never the program. On a real terminal the Engine may ask for
single key presses instead (cbreak mode, restored on exit).
"""
from __future__ import annotations

import logging
import sys
import threading
from datetime import datetime
from typing import Callable

logger = logging.getLogger(__name__)
_print_lock = threading.Lock()


def say(text: str) -> None:
    """Print an operator line with the time; several threads print, so lines never interleave."""
    stamp = datetime.now().strftime("%H:%M:%S")
    with _print_lock:
        for line in text.splitlines() or [""]:
            print(f"[{stamp}] {line}", flush=True)


def quiet_console_logging(verbose: bool) -> None:
    """Keep stderr for our warnings: the operator already sees every step printed, and kafka-python
    repeats each broker outage several times a second. The log file keeps everything."""
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.WARNING)
            handler.addFilter(_not_kafka)


def _not_kafka(record: logging.LogRecord) -> bool:
    return not record.name.startswith("kafka")


class StdinCommands:
    """Reads commands from stdin in a daemon thread and hands each one to ``on_command``."""

    def __init__(self, on_command: Callable[[str], None], single_keys: bool = False, stream=None):
        self.on_command = on_command
        self.stream = stream or sys.stdin
        self.single_keys = single_keys and _is_tty(self.stream)
        self._saved_tty = None
        self._thread = threading.Thread(target=self._run, name="stdin", daemon=True)

    def start(self) -> None:
        """Start reading."""
        if self.single_keys:
            self._enter_cbreak()
        self._thread.start()

    def restore(self) -> None:
        """Give the terminal back as it was."""
        if self._saved_tty is not None:
            import termios
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None

    def _enter_cbreak(self) -> None:
        import termios
        import tty
        try:
            self._saved_tty = termios.tcgetattr(self.stream.fileno())
            tty.setcbreak(self.stream.fileno())
        except (termios.error, OSError):
            self.single_keys = False

    def _run(self) -> None:
        try:
            if self.single_keys:
                self._read_keys()
            else:
                self._read_lines()
        except (OSError, ValueError) as exc:
            logger.warning("standard input unusable (%s); console commands disabled", exc)

    def _read_lines(self) -> None:
        for line in self.stream:
            self._dispatch(line.strip())
        logger.info("end of standard input: console commands disabled, still running")

    def _read_keys(self) -> None:
        while True:
            key = self.stream.read(1)
            if not key:
                logger.info("end of standard input: console commands disabled, still running")
                return
            self._dispatch(key.strip())

    def _dispatch(self, command: str) -> None:
        if not command:
            return
        try:
            self.on_command(command)
        except Exception:  # our bug: keep the console alive
            logger.exception("console command %r failed", command)


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
