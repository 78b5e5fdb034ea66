"""End-to-end harness: real programs as subprocesses against the real broker and database.

``Proc`` runs one program, keeps its output lines and lets a test wait for a
line (bounded); ``Stack`` starts CENTRAL, CPs and drivers on free ports with
unique ids, and talks to API_Central and PostgreSQL to check what a user sees.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
LOG_DIR = Path(os.environ.get("EVC_VAR", ROOT / "var" / "test")).resolve() / "log" / "e2e"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uid(prefix: str) -> str:
    """A unique id for this test run (CP and driver ids must not clash between tests)."""
    return f"{prefix}{uuid.uuid4().hex[:6].upper()}"


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll a condition until it is truthy; fail with a readable message after the timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing we wait for may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class Proc:
    """A program under test: output captured line by line, stdin open for commands."""

    def __init__(self, name: str, args: list[str], env: dict):
        self.name, self.env = name, env
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"
        self.lines: list[str] = []
        self._times: list[float] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen([PY, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._times.append(time.monotonic())
                    self._cond.notify_all()
        self.popen.stdout.close()

    def wait_line(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match:
        """The first output line from index `start` matching a regex; fails after the timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    if match:
                        return match
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(self.lines[-15:])
                    raise AssertionError(f"{self.name}: no line matching {pattern!r} within {timeout} s; last lines:\n{tail}")
                self._cond.wait(remaining)

    def mark(self) -> int:
        """Index of the next line (to wait only for output after this point)."""
        with self._cond:
            return len(self.lines)

    def matching(self, pattern: str) -> list[re.Match]:
        """Every output line matching a regex so far."""
        regex = re.compile(pattern)
        with self._cond:
            return [m for m in (regex.search(line) for line in self.lines) if m]

    def timed_lines(self) -> list[tuple[float, str]]:
        """(monotonic arrival time, line) of every output line so far."""
        with self._cond:
            return list(zip(self._times, self.lines))

    def send(self, line: str) -> None:
        """Type a command line on the program's stdin."""
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def restart(self) -> "Proc":
        """The same program started again with the same arguments (after a kill)."""
        return Proc(self.name, self.popen.args[1:], self.env)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def kill9(self) -> None:
        """kill -9, as a failure test does."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)
        self._close_stdin()

    def _close_stdin(self) -> None:
        try:
            self.popen.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a bound."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._close_stdin()


class Stack:
    """CENTRAL, CPs and drivers of one test, with unique ids and free ports."""

    def __init__(self, broker: str, repo, env: dict):
        self.broker, self.repo = broker, repo
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.procs: list[Proc] = []
        self.central: Optional[Proc] = None
        self.central_port = free_port()
        self.api_port = free_port()
        self.group = uid("evc-test-")
        self.engine_ports: dict[str, int] = {}

    # ---- programs ----
    def start(self, name: str, args: list[str], env: Optional[dict] = None) -> Proc:
        """Start a program and remember it for teardown."""
        proc = Proc(name, args, {**self.env, **(env or {})})
        self.procs.append(proc)
        return proc

    def start_central(self, auth_timeout: float = 60.0) -> Proc:
        """CENTRAL on this stack's ports; waits until API_Central answers."""
        self.central = self.start(f"central-{self.group}", [
            "EV_Central_Server/EV_Central.py", str(self.central_port), self.broker,
            "--api-port", str(self.api_port), "--api-host", "127.0.0.1", "--listen-host", "127.0.0.1",
            "--group", self.group, "--auth-timeout", str(auth_timeout), "--no-console"])
        self.central.wait_line(r"CENTRAL listo", timeout=60)
        wait_until(lambda: self.api("/api/health"), 20, "API_Central")
        return self.central

    def register_cp(self, cp_id: str, price: str = "0.40", power: str = "22", city: str = "Alicante") -> None:
        """Register a CP in the database, as the admin command does."""
        self.repo.upsert_cp({"cp_id": cp_id, "address": f"Calle de prueba {cp_id}", "city": city, "country": "ES",
                             "price_eur_kwh": price, "power_kw": power, "zone": "default"})

    def register_driver(self, driver_id: str) -> None:
        """Register a driver."""
        self.repo.add_driver(driver_id)

    def start_engine(self, cp_id: str, *flags: str) -> Proc:
        """The Engine of a CP (its listen port is remembered for the Monitor)."""
        port = self.engine_ports.setdefault(cp_id, free_port())
        return self.start(f"engine-{cp_id}", ["EV_CP/EV_CP_E.py", self.broker, "--listen-port", str(port),
                                             "--state-dir", str(LOG_DIR.parent / "engine-state"), *flags])

    def start_monitor(self, cp_id: str) -> Proc:
        """The Monitor of a CP."""
        port = self.engine_ports[cp_id]
        return self.start(f"monitor-{cp_id}", ["EV_CP/EV_CP_M.py", f"127.0.0.1:{port}",
                                              f"127.0.0.1:{self.central_port}", cp_id])

    def start_cp(self, cp_id: str, *engine_flags: str, register: bool = True, wait_state: str = "ACTIVADO"):
        """Register a CP, start its Engine and Monitor and wait until CENTRAL shows it."""
        if register:
            self.register_cp(cp_id)
        engine = self.start_engine(cp_id, *engine_flags)
        engine.wait_line(r"Engine listening", 20)
        monitor = self.start_monitor(cp_id)
        monitor.wait_line(r"Engine status OK|Connected to the Engine", 20)
        if wait_state:
            self.wait_state(cp_id, wait_state, 30)
        return engine, monitor

    def start_driver(self, driver_id: str, *flags: str, register: bool = True) -> Proc:
        """A driver app (console or file mode)."""
        if register:
            self.register_driver(driver_id)
        return self.start(f"driver-{driver_id}", ["EV_Driver/EV_Driver.py", self.broker, driver_id, *flags])

    def restart(self, proc: Proc) -> Proc:
        """Start a killed program again with the same arguments."""
        new = proc.restart()
        self.procs.append(new)
        if proc is self.central:
            self.central = new
        return new

    def stop_all(self) -> None:
        """Stop every program of the test."""
        for proc in reversed(self.procs):
            proc.stop()

    # ---- what users see ----
    def api(self, path: str, method: str = "GET", body: Optional[dict] = None):
        """Call API_Central; returns (status, JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def cp(self, cp_id: str) -> dict:
        """One CP as API_Central shows it."""
        status, body = self.api(f"/api/charging_points/{cp_id}")
        assert status == 200, body
        return body

    def wait_state(self, cp_id: str, state: str, timeout: float = 10.0) -> dict:
        """Wait until API_Central shows a CP in a state."""
        return wait_until(lambda: (cp := self.cp(cp_id))["state"] == state and cp, timeout, f"{cp_id} {state}")

    # ---- invariants ----
    def supplies_of(self, cp_ids: list[str]) -> list[dict]:
        """Every supply at these CPs with its tickets (from PostgreSQL)."""
        with self.repo.db.transaction() as cur:
            cur.execute("SELECT s.supply_id, s.cp_id, s.driver_id, s.phase, s.energy_kwh, s.end_reason, "
                        "count(t.ticket_id) AS tickets, max(t.energy_kwh) AS ticket_kwh, max(t.reason) AS ticket_reason "
                        "FROM supplies s LEFT JOIN tickets t USING (supply_id) WHERE s.cp_id = ANY(%s) "
                        "GROUP BY s.supply_id ORDER BY s.authorized_at", (cp_ids,))
            return list(cur.fetchall())

    def assert_every_supply_ticketed(self, cp_ids: list[str], timeout: float = 30.0) -> list[dict]:
        """Every supply at these CPs ends with exactly one ticket (waits for open ones to close)."""
        rows = wait_until(lambda: (rows := self.supplies_of(cp_ids)) and all(r["phase"] == "FINISHED" for r in rows) and rows,
                          timeout, f"every supply at {cp_ids} to finish")
        for row in rows:
            assert row["tickets"] == 1, row
        return rows
