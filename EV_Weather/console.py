"""The weather office's console: commands as lines on stdin, with or without a terminal."""
from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

from common.console import LineConsole
from EV_Weather.office import WeatherOffice

HELP = "comandos: list | add <Ciudad[,CC]> | remove <Ciudad[,CC]> | sync | help | quit"


def render(rows: list[dict]) -> str:
    """The watched places as a fixed-width table."""
    lines = [f"{'CIUDAD':<18} {'PAÍS':<4} {'ORIGEN':<8} {'°C':>6}  {'LEÍDA':<8}  ESTADO"]
    for r in rows:
        temp = f"{r['temperature']:.1f}" if r["temperature"] is not None else "—"
        when = datetime.fromtimestamp(r["observed_at"]).strftime("%H:%M:%S") if r["observed_at"] else "—"
        state = "ALERTA" if r["alert"] else (f"sin datos: {r['error']}" if r["error"] else "ok")
        lines.append(f"{r['city']:<18} {r['country']:<4} {r['source']:<8} {temp:>6}  {when:<8}  {state}")
    return "\n".join(lines)


class WeatherConsole(LineConsole):
    """Reads operator commands; unknown input gets the help line."""

    HELP = HELP

    def __init__(self, office: WeatherOffice, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout):
        super().__init__(stdin, stdout)
        self.office = office

    def command(self, command: str, rest: str) -> bool:
        """list, add <Ciudad[,CC]>, remove <Ciudad[,CC]>, sync."""
        if command in ("list", "ls"):
            self.say(render(self.office.status()))
        elif command in ("add", "remove") and rest.strip():
            try:
                self.say((self.office.add_city if command == "add" else self.office.remove_city)(rest))
            except ValueError as exc:
                self.say(f"No válido: {exc}")
        elif command == "sync":
            self.say("Sincronizado con la CENTRAL" if self.office.sync() else "No se pudo sincronizar")
        else:
            return False
        return True
