"""Driver session core: requests, supplies, tickets, reachability and file mode, with a fake clock."""
from __future__ import annotations

import itertools
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from common import messages as m
from EV_Driver.model import CpView, Outcome
from EV_Driver.services import ServicesFileError, parse_services
from EV_Driver.session import BatchDone, DriverSession, Quit, Send, Show

T0 = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """Monotonic and wall time that only move when told."""

    def __init__(self):
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t - 1000.0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make(**kw):
    clock = FakeClock()
    ids = (f"req{n}" for n in itertools.count(1))
    session = DriverSession("d1", clock, new_id=lambda: next(ids), tz=timezone.utc, **kw)
    return session, clock


def texts(effects) -> str:
    return "\n".join(e.text for e in effects if isinstance(e, Show))


def sent(effects) -> list[m.Message]:
    return [e.message for e in effects if isinstance(e, Send)]


def status(*cps) -> m.NetworkStatus:
    return m.NetworkStatus(cps=[{"cp_id": cp, "state": "ACTIVADO", "city": "Alicante", "price_eur_kwh": "0.35"}
                                for cp in cps])


def connected(**kw):
    session, clock = make(**kw)
    session.link_changed(True)
    session.handle(status("ALC1", "MAD2"))
    return session, clock


def authorize(session, request_id="req1", supply_id="s1", cp="ALC1", expires_in=60):
    expires = (T0 + timedelta(seconds=session.clock.monotonic() - 1000.0 + expires_in)).isoformat()
    return session.handle(m.SupplyAuthorized(request_id, supply_id, cp, "d1", "0.35", expires))


def ticket(ticket_id="t1", supply_id="s1", cp="ALC1", reason="UNPLUGGED", kwh="1.500", eur="0.53", driver="d1"):
    return m.TicketIssued(ticket_id, supply_id, cp, driver, "2026-12-03T12:00:05+00:00",
                          "2026-12-03T12:03:05+00:00", 180, kwh, "0.35", eur, reason)


# ---------------------------------------------------------------- services file
def test_services_file_ignores_blank_lines_and_comments():
    text = "\ufeff# demo\n\nALC1\n  MAD2  # second\n#XXX\n\nSEV3\nALC1\n"
    assert parse_services(text) == ["ALC1", "MAD2", "SEV3", "ALC1"]


@pytest.mark.parametrize("text, bad_lines", [
    ("ALC1\nMAD 2\n", [2]),
    ("ALC1\nbad/id\nALC1;x\n", [2, 3]),
    ("A" * 33 + "\n", [1]),
    ("# only comments\n\n", [0]),
    ("", [0]),
])
def test_services_file_rejects_bad_ids_naming_every_line(text, bad_lines):
    with pytest.raises(ServicesFileError) as info:
        parse_services(text)
    assert [n for n, _ in info.value.problems] == bad_lines


def test_demo_services_files_parse_with_ten_or_more_services():
    from pathlib import Path
    folder = Path(__file__).resolve().parents[2] / "demo" / "services"
    files = sorted(folder.glob("driver*.txt"))
    assert len(files) >= 3
    for path in files:
        ids = parse_services(path.read_text(encoding="utf-8"))
        assert len(ids) >= 10, path


# ---------------------------------------------------------------- request -> authorized -> charging -> ticket
def test_full_supply_shows_every_step_and_acks_the_ticket_once():
    session, clock = connected()
    effects = session.command("request ALC1")
    assert "Solicitando suministro en ALC1…" in texts(effects)
    assert sent(effects) == [m.RequestSupply("ALC1", "d1", "req1")]

    effects = authorize(session, expires_in=60)
    assert "AUTORIZADO en ALC1" in texts(effects) and "s1" in texts(effects) and "60 s" in texts(effects)

    effects = session.handle(m.SupplyStarted("s1", "ALC1", "2026-12-03T12:00:05+00:00"))
    assert "INICIADA en ALC1" in texts(effects)

    effects = session.handle(m.Telemetry("s1", "ALC1", "7.2", "0.120", "0.04", 1))
    assert texts(effects) == "ALC1 cargando: 7.2 kW · 0.120 kWh · 0.04 €"

    effects = session.handle(ticket())
    shown = texts(effects)
    for field in ("t1", "s1", "ALC1", "d1", "2026-12-03 12:00:05", "2026-12-03 12:03:05", "0:03:00",
                  "1.500 kWh", "0.35 €/kWh", "0.53 €", "UNPLUGGED — Vehicle unplugged"):
        assert field in shown
    assert sent(effects) == [m.AckTicket("t1")]
    assert session.supply is None

    again = session.handle(ticket())  # CENTRAL re-sends until it sees the ack
    assert texts(again) == "" and sent(again) == [m.AckTicket("t1")]


def test_denied_shows_code_and_readable_text():
    session, _ = connected()
    session.command("request ALC1")
    effects = session.handle(m.SupplyDenied("req1", "ALC1", "BUSY", "busy"))
    assert "DENEGADO en ALC1: BUSY — Charging point is busy" in texts(effects)
    assert session.request is None


def test_replies_to_other_requests_and_tickets_of_other_drivers_are_ignored():
    session, _ = connected()
    session.command("request ALC1")
    assert session.handle(m.SupplyDenied("other", "ALC1", "BUSY", "")) == []
    assert session.handle(ticket(driver="d2")) == []
    assert session.request is not None


def test_no_reply_within_timeout_says_central_unreachable():
    session, clock = connected(reply_timeout_s=10)
    session.command("request ALC1")
    clock.advance(9.9)
    session.handle(status("ALC1"))
    assert session.tick() == []
    clock.advance(0.2)
    session.handle(status("ALC1"))
    assert "Imposible conectar con la CENTRAL" in texts(session.tick())
    assert session.request is None


def test_late_authorization_after_timeout_is_cancelled():
    session, clock = connected(reply_timeout_s=10)
    session.command("request ALC1")
    clock.advance(11)
    session.tick()
    effects = authorize(session)
    assert sent(effects) == [m.StopSupply("s1", "DRIVER_STOP")]
    assert session.supply is None


def test_request_while_link_down_is_sent_when_it_comes_up():
    session, clock = make()
    effects = session.command("request ALC1")
    assert sent(effects) == [] and "Conectando con la CENTRAL" in texts(effects)
    clock.advance(2)
    effects = session.link_changed(True)
    assert sent(effects) == [m.RequestSupply("ALC1", "d1", "req1")]


def test_stop_sends_driver_stop_for_the_current_supply():
    session, _ = connected()
    assert "No hay ningún suministro" in texts(session.command("stop"))
    session.command("request ALC1")
    authorize(session)
    assert sent(session.command("stop")) == [m.StopSupply("s1", "DRIVER_STOP")]


def test_second_request_is_refused_while_one_is_open():
    session, _ = connected()
    session.command("request ALC1")
    effects = session.command("request MAD2")
    assert sent(effects) == [] and "Ya hay una solicitud" in texts(effects)
    authorize(session)
    assert sent(session.command("request MAD2")) == []


def test_ticket_after_restart_is_shown_and_acked():
    session, _ = connected()
    effects = session.handle(ticket("t9", "old"))
    assert "suministro anterior" in texts(effects) and sent(effects) == [m.AckTicket("t9")]
    assert [t.ticket_id for t in session.tickets] == ["t9"]


def test_telemetry_of_a_supply_still_running_after_restart_is_adopted_so_stop_works():
    session, _ = connected()
    effects = session.handle(m.Telemetry("s7", "MAD2", "11", "2.000", "0.70", 40))
    assert "MAD2" in texts(effects)
    assert sent(session.command("stop")) == [m.StopSupply("s7", "DRIVER_STOP")]


def test_auth_expired_ticket_ends_the_supply():
    session, _ = connected()
    session.command("request ALC1")
    authorize(session)
    effects = session.handle(ticket(reason="AUTH_EXPIRED", kwh="0", eur="0"))
    assert "Authorization expired" in texts(effects) and session.supply is None


def test_notice_and_error_are_shown():
    session, _ = connected()
    assert "CP faulted" in texts(session.handle(m.Notice("CP faulted", "warning")))
    assert "BAD" in texts(session.handle(m.Error("BAD", "bad thing")))
    assert session.handle(m.Welcome("d1")) == []


# ---------------------------------------------------------------- reachability
def test_unreachable_when_no_status_for_six_seconds_then_restored():
    session, clock = make()
    session.link_changed(True)
    assert "Conectado con la CENTRAL" in texts(session.handle(status("ALC1")))
    clock.advance(5.9)
    assert session.tick() == []
    clock.advance(0.2)
    assert "Imposible conectar con la CENTRAL" in texts(session.tick())
    assert session.tick() == []  # said once
    assert "restablecida" in texts(session.handle(status("ALC1")))


def test_unreachable_after_grace_when_link_never_comes_up():
    session, clock = make()
    assert session.tick() == []
    clock.advance(6)
    assert "Imposible conectar con la CENTRAL" in texts(session.tick())


def test_request_after_the_link_dropped_says_unreachable_and_is_held():
    session, _ = connected()
    session.link_changed(False)
    effects = session.command("request ALC1")
    assert sent(effects) == [] and "Imposible conectar con la CENTRAL" in texts(effects)
    assert sent(session.link_changed(True)) == [m.RequestSupply("ALC1", "d1", "req1")]


def test_unreachable_at_once_when_link_drops():
    session, _ = connected()
    session.tick()
    assert "Imposible conectar con la CENTRAL" in texts(session.link_changed(False))


# ---------------------------------------------------------------- console
def test_status_lists_every_cp_with_state_price_and_city():
    session, _ = connected()
    session.handle(m.NetworkStatus(cps=[
        {"cp_id": "MAD2", "state": "SUMINISTRANDO", "city": "Madrid", "price_eur_kwh": "0.40",
         "supply": {"driver_id": "d2", "power_kw": "7.2", "energy_kwh": "1.2", "amount_eur": "0.48"}},
        {"cp_id": "SEV3", "state": "PARADO", "caption": "Out of Order (WEATHER)", "city": "Sevilla"},
        {"cp_id": 7}, "junk",
    ]))
    shown = texts(session.command("list"))
    assert "MAD2" in shown and "SUMINISTRANDO" in shown and "0.40 €/kWh" in shown and "Madrid" in shown
    assert "Out of Order (WEATHER)" in shown and "1.200 kWh" in shown
    assert list(session.cps) == ["MAD2", "SEV3"]


@pytest.mark.parametrize("line, expected", [
    ("help", "request <CP>"),
    ("tickets", "Ningún ticket".lower()),
    ("fly away", "Orden desconocida"),
    ("request", "Uso: request"),
    ("request a/b", "Uso: request"),
])
def test_console_lines(line, expected):
    session, _ = connected()
    assert expected.lower() in texts(session.command(line)).lower()


def test_quit_and_blank_line():
    session, _ = connected()
    assert session.command("   ") == []
    assert any(isinstance(e, Quit) for e in session.command("quit"))


# ---------------------------------------------------------------- file mode
def run_item(session, clock, n, outcome):
    effects = session.tick()
    assert f"[{n}/3] Solicitando suministro" in texts(effects)
    request_id = f"req{n}"
    if outcome == "ok":
        authorize(session, request_id, f"s{n}", "ALC1")
        return session.handle(ticket(f"t{n}", f"s{n}", kwh="1.000", eur="0.35"))
    if outcome == "denied":
        return session.handle(m.SupplyDenied(request_id, "XXX9", "CP_NOT_FOUND", ""))
    clock.advance(10)
    session.handle(status("ALC1"))
    return session.tick()


def test_file_mode_runs_items_in_order_waits_between_and_summarises():
    session, clock = connected(wait_s=4, reply_timeout_s=10)
    session.start_batch(["ALC1", "XXX9", "MAD2"])
    run_item(session, clock, 1, "ok")
    clock.advance(3.9)
    assert session.tick() == []  # still waiting the 4 s
    clock.advance(0.1)
    session.handle(status("ALC1"))
    run_item(session, clock, 2, "denied")
    clock.advance(4)
    session.handle(status("ALC1"))
    effects = run_item(session, clock, 3, "timeout")
    done = [e for e in effects if isinstance(e, BatchDone)]
    assert len(done) == 1
    assert [r.outcome for r in done[0].results] == [Outcome.OK, Outcome.DENIED, Outcome.FAILED]
    summary = texts(effects)
    assert "ok: 1 · denied: 1 · failed: 1" in summary and "1.000 kWh, 0.35 €" in summary
    assert session.tick() == [] and session.batch.done


def test_file_mode_refuses_console_requests_while_running():
    session, _ = connected()
    session.start_batch(["ALC1"])
    assert "modo fichero" in texts(session.command("request MAD2")).lower()


def test_cp_view_tolerates_missing_fields():
    assert CpView.from_entry({"cp_id": "ALC1"}).state == "?"
    assert CpView.from_entry({"state": "ACTIVADO"}) is None


def test_core_imports_no_io_modules():
    from pathlib import Path
    folder = Path(__file__).resolve().parents[2] / "EV_Driver"
    for name in ("session.py", "model.py", "screens.py", "services.py"):
        source = (folder / name).read_text(encoding="utf-8")
        for banned in ("import kafka", "import socket", "common.bus", "import threading", "open("):
            assert banned not in source, (name, banned)


def test_decimals_are_exact():
    session, _ = connected()
    session.start_batch(["ALC1"])
    session.tick()
    authorize(session)
    effects = session.handle(ticket(kwh="0.1", eur="0.1"))
    assert [e for e in effects if isinstance(e, BatchDone)][0].results[0].energy_kwh == Decimal("0.100")


def test_file_mode_waits_for_the_channel_at_start_up_but_not_forever():
    session, clock = make()
    session.start_batch(["ALC1"])
    assert session.tick() == []
    clock.advance(1)
    session.link_changed(True)
    assert sent(session.tick()) == [m.RequestSupply("ALC1", "d1", "req1")]

    late, clock2 = make()
    late.start_batch(["ALC1"])
    clock2.advance(6)
    effects = late.tick()
    assert "[1/1] Solicitando suministro en ALC1" in texts(effects) and sent(effects) == []


def test_console_request_during_start_up_says_connecting():
    session, _ = make()
    assert "Conectando con la CENTRAL" in texts(session.command("request ALC1"))
