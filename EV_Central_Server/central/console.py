"""CENTRAL's operator console: commands as lines on stdin, with or without a terminal."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

from EV_Central_Server.central.service import CentralService

logger = logging.getLogger(__name__)
HELP = "comandos: list | stop <id|all> | resume <id|all> | help | quit"


def render_table(rows: list[dict]) -> str:
    """The CP list as a fixed-width table."""
    lines = [f"{'CP':<8} {'ESTADO':<14} {'CIUDAD':<12} {'€/kWh':>6}  SUMINISTRO"]
    for cp in rows:
        s = cp["supply"]
        live = f"{s['driver_id']} {s['power_kw']} kW {s['energy_kwh']} kWh {s['amount_eur']} €" if s else ""
        lines.append(f"{cp['cp_id']:<8} {cp['caption']:<14} {cp['city']:<12} {cp['price_eur_kwh']:>6}  {live}")
    return "\n".join(lines)


class OperatorConsole:
    """Reads operator commands; unknown input gets a readable answer."""

    def __init__(self, service: CentralService, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout):
        self.service, self.stdin, self.stdout = service, stdin, stdout

    def run(self) -> bool:
        """Serve until EOF or 'quit'; True when the operator asked to quit (EOF leaves CENTRAL running)."""
        self.say(HELP)
        for line in self.stdin:
            if self.handle(line.strip()) == "quit":
                return True
        return False

    def say(self, text: str) -> None:
        """Print to the operator."""
        print(text, file=self.stdout, flush=True)

    def handle(self, line: str) -> str:
        """One command line."""
        words = line.split()
        if not words:
            return ""
        command, args = words[0].lower(), words[1:]
        if command in ("quit", "exit"):
            return "quit"
        if command in ("list", "ls"):
            self.say(render_table(self.service.snapshot()))
        elif command in ("stop", "resume") and len(args) == 1:
            self._command(command, args[0])
        else:
            self.say(HELP)
        return command

    def _command(self, command: str, target: str) -> None:
        ids = self.service.cp_ids() if target.lower() == "all" else [target]
        for cp_id in ids:
            try:
                (self.service.stop_cp if command == "stop" else self.service.resume_cp)(cp_id, actor="console")
                self.say(f"{command} {cp_id}: ok")
            except KeyError:
                self.say(f"CP {cp_id} no existe")
