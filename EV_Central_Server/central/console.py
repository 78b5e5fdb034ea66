"""CENTRAL's operator console: commands as lines on stdin, with or without a terminal."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

from common.console import LineConsole
from EV_Central_Server.central.service import CentralService

logger = logging.getLogger(__name__)
HELP = "comandos: list | stop <id|all> | resume <id|all> | help | quit"


def render_table(rows: list[dict]) -> str:
    """The CP list as a fixed-width table."""
    width = max([len(cp["caption"]) for cp in rows] + [len("ESTADO")])
    lines = [f"{'CP':<8} {'ESTADO':<{width}} {'CIUDAD':<12} {'€/kWh':>6}  SUMINISTRO"]
    for cp in rows:
        s = cp["supply"]
        live = f"{s['driver_id']} {s['power_kw']} kW {s['energy_kwh']} kWh {s['amount_eur']} €" if s else ""
        lines.append(f"{cp['cp_id']:<8} {cp['caption']:<{width}} {cp['city'][:12]:<12} {cp['price_eur_kwh']:>6}  {live}")
    return "\n".join(lines)


class OperatorConsole(LineConsole):
    """Reads operator commands; unknown input gets a readable answer."""

    HELP = HELP

    def __init__(self, service: CentralService, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout):
        super().__init__(stdin, stdout)
        self.service = service

    def command(self, command: str, rest: str) -> bool:
        """list, stop <id|all>, resume <id|all>."""
        args = rest.split()
        if command in ("list", "ls"):
            self.say(render_table(self.service.snapshot()))
        elif command in ("stop", "resume") and len(args) == 1:
            self._command(command, args[0])
        else:
            return False
        return True

    def _command(self, command: str, target: str) -> None:
        ids = self.service.cp_ids() if target.lower() == "all" else [target]
        for cp_id in ids:
            try:
                (self.service.stop_cp if command == "stop" else self.service.resume_cp)(cp_id, actor="console")
                self.say(f"{command} {cp_id}: ok")
            except KeyError:
                self.say(f"CP {cp_id} no existe")
