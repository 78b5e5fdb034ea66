"""An operator console read as lines on stdin, with or without a terminal (SPEC §11 "Consoles").

``LineConsole`` owns the loop shared by CENTRAL's and the weather office's consoles: print the help
line, read commands until end of input or ``quit``/``exit``, answer anything unknown with the help
line. End of input only stops reading (the program keeps running); ``run`` returns True when the
operator asked to quit. A subclass sets ``HELP`` and carries out its own commands in ``command``.
"""
from __future__ import annotations

import sys
from typing import TextIO


class LineConsole:
    """Reads operator commands; unknown input gets the help line."""

    HELP = ""

    def __init__(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout):
        self.stdin, self.stdout = stdin, stdout

    def run(self) -> bool:
        """Serve until EOF or 'quit'; True when the operator asked to quit (EOF leaves the program running)."""
        self.say(self.HELP)
        for line in self.stdin:
            if self.handle(line.strip()) == "quit":
                return True
        return False

    def say(self, text: str) -> None:
        """Print to the operator."""
        print(text, file=self.stdout, flush=True)

    def handle(self, line: str) -> str:
        """One command line; returns the command word ("quit" for quit or exit)."""
        words = line.split(None, 1)
        if not words:
            return ""
        command, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
        if command in ("quit", "exit"):
            return "quit"
        if not self.command(command, rest):
            self.say(self.HELP)
        return command

    def command(self, command: str, rest: str) -> bool:
        """Carry out one command (its lower-case word and the rest of the line); False when it is not one."""
        raise NotImplementedError
