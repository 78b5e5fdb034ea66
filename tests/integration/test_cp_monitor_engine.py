"""Monitor and Engine as real processes over real sockets (SPEC §4 steps 2-4, §5, §6).

CENTRAL's socket side is played by ``CentralPeer``, a few lines over
``common.framed`` that answer AUTH as the contract says, so these tests need no
database; the Engine is given a broker address nobody listens on (its Kafka
side is covered by tests/e2e). Waits are bounded polls, never fixed sleeps for
correctness.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from common import protocol as p
from common.framed import FramedConnection, LinkClosed

ROOT = Path(__file__).resolve().parents[2]
KNOWN_CP = "CPIT1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str):
    """Poll until truthy; fail with a readable message after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class CentralPeer:
    """CENTRAL's socket side per docs/CONTRACT-central.md: AUTH_OK for KNOWN_CP, AUTH_DENIED otherwise."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.frames: list[tuple[float, p.Frame]] = []
        self.links: list[FramedConnection] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            link = FramedConnection(sock, "monitor")
            self.links.append(link)
            threading.Thread(target=self._serve, args=(link,), daemon=True).start()

    def _serve(self, link: FramedConnection) -> None:
        try:
            while True:
                frame = link.recv(0.5)
                if frame is None:
                    continue
                self.frames.append((time.monotonic(), frame))
                if frame.opcode == "AUTH" and frame.fields[0] == KNOWN_CP:
                    link.send(p.frame("AUTH_OK", KNOWN_CP, "default", "0.45", "22", "Calle Mayor 1", "", ""))
                elif frame.opcode == "AUTH":
                    link.send(p.frame("AUTH_DENIED", frame.fields[0], "CP_NOT_FOUND", "Charging point not found"))
        except LinkClosed:
            pass

    def seen(self, opcode: str, since: float = 0.0) -> list[tuple[float, p.Frame]]:
        """Frames of one opcode received after a moment."""
        return [(t, f) for t, f in list(self.frames) if f.opcode == opcode and t >= since]

    def statuses(self, since: float) -> list[str]:
        """engine field of every STATUS received after a moment."""
        return [f.fields[1] for _, f in self.seen("STATUS", since)]

    def close(self) -> None:
        """Stop listening and drop every link."""
        self.server.close()
        for link in self.links:
            link.close()


class Program:
    """A CP program with its output collected and its stdin open."""

    def __init__(self, args: list[str], var: Path):
        env = {**os.environ, "EVC_VAR": str(var), "PYTHONUNBUFFERED": "1"}
        env.pop("EVC_CP_SECRET", None)
        self.lines: list[str] = []
        self.popen = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True, bufsize=1,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        """Whether some output line contains a text."""
        return any(text in line for line in list(self.lines))

    def send(self, line: str) -> None:
        """Type a command."""
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(8)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass


@pytest.fixture
def cp(tmp_path):
    """A CENTRAL peer, an Engine and a Monitor for KNOWN_CP; returns a small namespace to drive them."""
    central, engine_port = CentralPeer(), free_port()
    programs: list[Program] = []

    def engine() -> Program:
        programs.append(Program(["EV_CP/EV_CP_E.py", f"127.0.0.1:{free_port()}", "--listen-port", str(engine_port),
                                 "--state-dir", str(tmp_path / "engine")], tmp_path))
        return programs[-1]

    def monitor(cp_id: str = KNOWN_CP) -> Program:
        programs.append(Program(["EV_CP/EV_CP_M.py", f"127.0.0.1:{engine_port}", f"127.0.0.1:{central.port}", cp_id],
                                tmp_path))
        return programs[-1]

    class Cp:
        pass

    ns = Cp()
    ns.central, ns.engine, ns.monitor = central, engine, monitor
    yield ns
    for program in programs:
        program.stop()
    central.close()


def test_monitor_authenticates_and_reports_ok_every_second(cp):
    engine, monitor = cp.engine(), cp.monitor()
    wait_for(lambda: cp.central.seen("AUTH"), 15, "AUTH")
    assert cp.central.seen("AUTH")[0][1].fields == (KNOWN_CP, "")
    wait_for(lambda: "OK" in cp.central.statuses(0), 10, "first STATUS OK")
    start = time.monotonic()
    wait_for(lambda: len(cp.central.statuses(start)) >= 3, 6, "three STATUS frames")
    assert set(cp.central.statuses(start)) == {"OK"}
    wait_for(lambda: engine.said("CP CPIT1: zone default"), 5, "CP_INFO at the Engine")
    assert engine.said("CENTRAL reachable") and monitor.said("Authenticated with CENTRAL")


def test_forced_ko_is_reported_and_recovered(cp):
    engine, _ = cp.engine(), cp.monitor()
    wait_for(lambda: "OK" in cp.central.statuses(0), 15, "first STATUS OK")
    start = time.monotonic()
    engine.send("k")
    at = wait_for(lambda: [t for t, f in cp.central.seen("STATUS", start) if f.fields[1] == "KO"], 5, "STATUS KO")
    assert at[0] - start <= 2.0
    start = time.monotonic()
    engine.send("o")
    wait_for(lambda: "OK" in cp.central.statuses(start), 5, "STATUS OK again")


def test_killed_engine_is_ko_and_a_new_one_gets_cp_info(cp):
    engine, monitor = cp.engine(), cp.monitor()
    wait_for(lambda: "OK" in cp.central.statuses(0), 15, "first STATUS OK")
    start = time.monotonic()
    engine.popen.kill()
    at = wait_for(lambda: [t for t, f in cp.central.seen("STATUS", start) if f.fields[1] == "KO"], 5, "STATUS KO")
    assert at[0] - start <= 2.0
    engine = cp.engine()
    wait_for(lambda: engine.said("CP CPIT1: zone default"), 10, "CP_INFO at the new Engine")
    start = time.monotonic()
    wait_for(lambda: "OK" in cp.central.statuses(start), 5, "STATUS OK again")


def test_central_link_drop_is_announced_and_healed(cp):
    engine, monitor = cp.engine(), cp.monitor()
    wait_for(lambda: "OK" in cp.central.statuses(0), 15, "first STATUS OK")
    start = time.monotonic()
    cp.central.links[-1].close()
    wait_for(lambda: cp.central.seen("AUTH", start), 5, "re-authentication")
    assert monitor.said("Imposible conectar con la CENTRAL")
    wait_for(lambda: engine.said("Imposible conectar con la CENTRAL"), 5, "the Engine told CENTRAL#DOWN")
    wait_for(lambda: "OK" in cp.central.statuses(start), 5, "STATUS after re-authentication")


def test_unknown_cp_is_refused_and_retried_slowly_and_stdin_eof_does_not_stop_it(cp):
    monitor = cp.monitor("CPIT-UNKNOWN")
    monitor.popen.stdin.close()
    wait_for(lambda: len(cp.central.seen("AUTH")) >= 2, 10, "a second AUTH attempt")
    first, second = (t for t, _ in cp.central.seen("AUTH")[:2])
    assert 4.0 <= second - first <= 7.0
    assert monitor.said("CP_NOT_FOUND") and monitor.popen.poll() is None


def test_engine_without_monitor_refuses_a_manual_request(cp):
    engine, monitor = cp.engine(), cp.monitor()
    wait_for(lambda: engine.said("CENTRAL reachable"), 15, "the Engine ready")
    monitor.popen.kill()
    wait_for(lambda: engine.said("Sin monitor"), 5, "Sin monitor")
    engine.send("r")
    wait_for(lambda: engine.said("Cannot request a supply: Sin monitor"), 5, "the refusal")


def test_a_second_connection_cannot_knock_the_live_monitor_off_but_a_restarted_monitor_is_accepted(cp):
    engine, monitor = cp.engine(), cp.monitor()
    wait_for(lambda: engine.said("CENTRAL reachable"), 15, "the Engine ready")
    wait_for(lambda: "OK" in cp.central.statuses(0), 10, "first STATUS OK")
    port = int(engine.popen.args[engine.popen.args.index("--listen-port") + 1])
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as stray:
        stray.sendall(p.control(p.ENQ))  # a session attempt, as a Monitor opens one
        received = b""
        while chunk := stray.recv(64):  # the Engine says EOT and closes: no ACK, no NACK
            received += chunk
    assert received == p.control(p.EOT) and time.monotonic() - start < 3.0
    wait_for(lambda: engine.said("Refused a connection from 127.0.0.1:"), 5, "the refusal logged")
    time.sleep(2.5)  # the real Monitor keeps its session: STATUS stays OK and the Engine never lost it
    assert set(cp.central.statuses(start)) == {"OK"} and len(cp.central.statuses(start)) >= 2
    assert not engine.said("Sin monitor") and not monitor.said("Lost the Engine")
    assert sum("Monitor connected" in line for line in engine.lines) == 1

    monitor.popen.kill()  # its connection gets EOF; a restarted Monitor is accepted at once
    wait_for(lambda: engine.said("Sin monitor (connection closed)"), 5, "the old session's EOF")
    restarted = cp.monitor()
    wait_for(lambda: restarted.said("Connected to the Engine"), 10, "the restarted Monitor accepted")
    start = time.monotonic()
    wait_for(lambda: "OK" in cp.central.statuses(start), 10, "STATUS OK from the restarted Monitor")
    assert sum("Refused a connection" in line for line in engine.lines) == 1  # only the stray was refused
