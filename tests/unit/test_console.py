"""CENTRAL's operator console with StringIO for stdin/stdout (SPEC §4 step 12, §11)."""
from __future__ import annotations

import io

import pytest

from common import messages as m
from EV_Central_Server.central.console import HELP, OperatorConsole, render_table
from EV_Central_Server.central.service import CentralService
from fakes import T0, FakeClock, FakeRepository, RecordingOutlet, cp_row


def make(lines: str = ""):
    clock = FakeClock()
    repo = FakeRepository([cp_row("CP1"), cp_row("CP2", city="Madrid")], ["alice"], clock)
    outlet = RecordingOutlet()
    service = CentralService(repo, outlet, clock=clock)
    service.load()
    out = io.StringIO()
    return OperatorConsole(service, io.StringIO(lines), out), service, out, outlet


def run(lines: str):
    console, service, out, outlet = make(lines)
    quit_asked = console.run()
    return quit_asked, service, out.getvalue(), outlet


def test_list_shows_every_cp_with_its_state():
    _, _, text, _ = run("list\n")
    rows = text.splitlines()
    assert rows[0] == HELP
    assert rows[1].split()[:2] == ["CP", "ESTADO"]
    assert rows[2].split()[:3] == ["CP1", "DESCONECTADO", "Alicante"]
    assert rows[3].split()[:3] == ["CP2", "DESCONECTADO", "Madrid"]


def test_list_shows_a_live_supply():
    console, service, out, _ = make()
    service.authenticate("CP1", "", token := object())
    service.monitor_status("CP1", True, token)
    answer = service.request_supply("driver", "alice", m.RequestSupply("CP1", "alice", "r1"), None)
    service.supply_started(m.SupplyStarted(answer.supply_id, "CP1", T0.isoformat()))
    service.telemetry(m.Telemetry(answer.supply_id, "CP1", "22", "1.5", "0.53", 1))
    console.handle("ls")
    line = next(row for row in out.getvalue().splitlines() if row.startswith("CP1"))
    assert "SUMINISTRANDO" in line and "alice 22 kW 1.500 kWh 0.53 €" in line


def test_render_table_shows_out_of_order_reasons():
    console, service, _, _ = make()
    service.stop_cp("CP2")
    table = render_table(service.snapshot())
    assert "DESCONECTADO" in table  # link down wins over the operator stop (SPEC §3 order)
    service.authenticate("CP2", "", token := object())
    service.monitor_status("CP2", True, token)
    assert "Out of Order (OPERATOR)" in render_table(service.snapshot())


@pytest.mark.parametrize("command, expected", [("stop", ["OPERATOR"]), ("resume", [])])
def test_stop_and_resume_one(command, expected):
    console, service, out, _ = make()
    service.stop_cp("CP1")
    console.handle(f"{command} CP1")
    assert service.get("CP1")["out_of_service"] == expected
    assert out.getvalue().strip() == f"{command} CP1: ok"


def test_stop_all_then_resume_all():
    _, service, text, _ = run("stop all\n")
    assert [cp["out_of_service"] for cp in service.snapshot()] == [["OPERATOR"], ["OPERATOR"]]
    assert "stop CP1: ok" in text and "stop CP2: ok" in text
    console, service, out, _ = make()
    console.handle("STOP ALL")
    console.handle("resume all")
    assert [cp["out_of_service"] for cp in service.snapshot()] == [[], []]


def test_stop_ends_a_supply_with_an_operator_ticket():
    console, service, _, outlet = make()
    service.authenticate("CP1", "", token := object())
    service.monitor_status("CP1", True, token)
    service.request_supply("driver", "alice", m.RequestSupply("CP1", "alice", "r1"), None)
    console.handle("stop CP1")
    assert [t.reason for t in outlet.messages(m.TicketIssued, "driver", "alice")] == ["STOPPED_BY_OPERATOR"]


@pytest.mark.parametrize("command", ["stop", "resume"])
def test_unknown_id_is_reported_not_created(command):
    console, service, out, _ = make()
    console.handle(f"{command} CP9")
    assert out.getvalue().strip() == "CP CP9 no existe"
    assert "CP9" not in service.cps


@pytest.mark.parametrize("line", ["help", "?", "frobnicate", "stop", "stop CP1 CP2", "resume"])
def test_help_and_bad_input_show_the_help(line):
    console, service, out, _ = make()
    console.handle(line)
    assert out.getvalue().strip() == HELP
    assert all(not cp["out_of_service"] for cp in service.snapshot())


def test_blank_lines_are_ignored():
    console, _, out, _ = make()
    assert console.handle("") == ""
    assert out.getvalue() == ""


@pytest.mark.parametrize("lines, quit_asked", [("list\nquit\nstop all\n", True), ("exit\n", True), ("list\n", False),
                                               ("", False)])
def test_run_until_quit_or_eof(lines, quit_asked):
    asked, service, _, _ = run(lines)
    assert asked is quit_asked
    assert all(not cp["out_of_service"] for cp in service.snapshot())  # nothing after quit runs
