"""The Engine's supply state machine, driven with exact times and no I/O (EV_CP/engine_core.py)."""
from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest

from common import messages as m
from EV_CP.engine_core import (ConnectKafka, CpInfo, EngineCore, Publish, ReplyHealth, Say, iso)
from EV_CP.monitor_core import Backoff, HealthTracker

T0 = 1_800_000_000.0  # a fixed epoch second
INFO = CpInfo("CP1", "default", "0.50", "22", "Calle Mayor 1, Madrid", "1", "secret-key")


def published(effects, kind=m.Message):
    """Messages the core asked to publish, of one type."""
    return [e.message for e in effects if isinstance(e, Publish) and isinstance(e.message, kind)]


def said(effects):
    """All console text of some effects, as one string."""
    return "\n".join(e.text for e in effects if isinstance(e, Say))


def ready_core(**kwargs) -> EngineCore:
    """A core with its Monitor, CP_INFO, CENTRAL up and Kafka up, at T0."""
    ids = count(1)
    core = EngineCore(new_id=lambda: f"id{next(ids)}", **kwargs)
    core.monitor_connected(T0)
    core.cp_info(INFO, None, T0)
    core.central_link(True)
    core.kafka_link(True)
    return core


def authorize(core: EngineCore, supply_id="S1", driver="D1", now=T0, expires_at=None):
    """CENTRAL authorizes a supply."""
    msg = m.AuthorizeSupply(supply_id, "CP1", driver, "0.50", expires_at or iso(now + 60))
    return core.handle(msg, now)


def live_tick(core: EngineCore, now: float):
    """A tick with the Monitor alive (it sent HEALTH just now)."""
    core.monitor_health("0", now)
    return core.tick(now)


def charging_core(**kwargs) -> EngineCore:
    """A ready core charging supply S1 since T0."""
    core = ready_core(**kwargs)
    authorize(core)
    core.plug(T0)
    return core


# ---------------------------------------------------------------- identity and Kafka
def test_first_cp_info_opens_the_zone_channel_and_never_shows_the_key():
    core = EngineCore()
    effects = core.monitor_connected(T0) + core.cp_info(INFO, None, T0)
    assert ConnectKafka("CP1", "default") in effects
    assert "secret-key" not in said(effects) and "secret-key" not in repr(INFO)


def test_repeated_cp_info_does_not_reconnect_but_a_new_zone_does():
    core = ready_core()
    assert not [e for e in core.cp_info(INFO, None, T0 + 1) if isinstance(e, ConnectKafka)]
    moved = CpInfo("CP1", "north", "0.50", "22")
    assert ConnectKafka("CP1", "north") in core.cp_info(moved, None, T0 + 2)


def test_cp_info_for_another_cp_is_ignored():
    core = ready_core()
    effects = core.cp_info(CpInfo("CP2", "default", "0.40", "11"), None, T0 + 1)
    assert core.cp_id == "CP1" and "Ignored" in said(effects)


# ---------------------------------------------------------------- health
@pytest.mark.parametrize("forced, answer", [(False, "OK"), (True, "KO")])
def test_health_is_answered_with_the_engine_status(forced, answer):
    core = ready_core()
    core.forced_ko = forced
    assert ReplyHealth("7", answer) in core.monitor_health("7", T0 + 1)


def test_force_ko_and_recover():
    core = ready_core()
    core.force_ko(T0)
    assert core.engine_status == "KO"
    core.recover(T0)
    assert core.engine_status == "OK"


# ---------------------------------------------------------------- the happy path
def test_authorize_plug_telemetry_unplug():
    core = ready_core()
    assert "authorized" in said(authorize(core))
    started = published(core.plug(T0 + 2), m.SupplyStarted)
    assert started == [m.SupplyStarted("S1", "CP1", iso(T0 + 2))]
    telemetry = published(core.tick(T0 + 3), m.Telemetry)
    # 22 kW for 1 s at time scale 60 = 22 * 60 / 3600 kWh
    assert telemetry == [m.Telemetry("S1", "CP1", "22", "0.367", "0.18", 1)]
    assert published(live_tick(core, T0 + 3.5), m.Telemetry) == []  # at most one per second
    finished = published(core.unplug(T0 + 12), m.SupplyFinished)
    assert finished == [m.SupplyFinished("S1", "CP1", iso(T0 + 2), iso(T0 + 12), "3.667", "1.83", "UNPLUGGED")]
    assert core.supply is None and "S1" in core.finals


def test_telemetry_sequence_numbers_grow():
    core = charging_core()
    seqs = [published(core.tick(T0 + s), m.Telemetry)[0].seq for s in (1, 2, 3)]
    assert seqs == [1, 2, 3]


def test_re_sent_authorization_is_idempotent():
    core = ready_core()
    authorize(core)
    assert authorize(core) == []
    core.plug(T0)
    core.unplug(T0 + 5)
    assert authorize(core) == [] and core.supply is None  # re-sent after it finished


def test_plug_without_authorization_and_unplug_without_charging_only_say_why():
    core = ready_core()
    assert published(core.plug(T0)) == [] and "no authorized supply" in said(core.plug(T0))
    authorize(core)
    assert published(core.unplug(T0)) == [] and "not charging" in said(core.unplug(T0))


# ---------------------------------------------------------------- refusals (SPEC §5)
@pytest.mark.parametrize("breakage, reason", [
    (lambda c: c.monitor_lost("gone", T0), "Sin monitor"),
    (lambda c: c.central_link(False), "Imposible conectar con la CENTRAL"),
    (lambda c: c.force_ko(T0), "KO"),
])
def test_no_new_supply_without_monitor_central_or_health(breakage, reason):
    core = ready_core()
    breakage(core)
    assert reason in said(authorize(core)) and core.supply is None
    effects = core.request_supply(T0)
    assert published(effects) == [] and reason in said(effects)


def test_busy_cp_does_not_take_a_second_authorization():
    core = charging_core()
    assert "busy" in said(authorize(core, "S2")) and core.supply.supply_id == "S1"


def test_central_down_does_not_stop_the_running_supply():
    core = charging_core()
    core.central_link(False)
    assert published(core.tick(T0 + 1), m.Telemetry)
    assert published(core.unplug(T0 + 2), m.SupplyFinished)[0].reason == "UNPLUGGED"


# ---------------------------------------------------------------- ends other than unplugging
@pytest.mark.parametrize("end, reason", [
    (lambda c, t: c.force_ko(t), "ENGINE_FAULT"),
    (lambda c, t: c.monitor_lost("connection closed", t), "MONITOR_LOST"),
    (lambda c, t: c.tick(t + 3.5) and [], "MONITOR_LOST"),  # no HEALTH for more than 3 s
    (lambda c, t: c.handle(m.StopSupply("S1", "STOPPED_BY_OPERATOR"), t), "STOPPED_BY_OPERATOR"),
    (lambda c, t: c.handle(m.StopSupply("S1", "DRIVER_STOP"), t), "DRIVER_STOP"),
])
def test_a_supply_ends_with_its_reason(end, reason):
    core = charging_core()
    end(core, T0 + 1)
    assert core.supply is None
    assert core.finals["S1"].reason == reason


def test_monitor_silence_is_noticed_by_tick():
    core = charging_core()
    core.monitor_health("1", T0 + 2)
    assert not core.tick(T0 + 4.9) or core.monitor_up
    effects = core.tick(T0 + 5.1)
    assert "Sin monitor" in said(effects)
    assert published(effects, m.SupplyFinished)[0].reason == "MONITOR_LOST"


def test_stop_for_another_supply_is_ignored():
    core = charging_core()
    assert core.handle(m.StopSupply("OTHER", "DRIVER_STOP"), T0 + 1) == []
    assert core.supply.supply_id == "S1"


def test_cancel_authorization_forgets_it_without_a_record():
    core = ready_core()
    authorize(core)
    effects = core.handle(m.CancelAuthorization("S1", "AUTH_EXPIRED"), T0 + 60)
    assert core.supply is None and published(effects) == [] and not core.finals


def test_auto_plug_and_auto_unplug():
    core = ready_core(auto_plug_s=2, auto_unplug_s=5)
    authorize(core)
    assert published(core.tick(T0 + 1.9)) == []
    assert published(core.tick(T0 + 2), m.SupplyStarted)
    effects = live_tick(core, T0 + 7)
    assert published(effects, m.SupplyFinished)[0].reason == "UNPLUGGED"


def test_an_authorization_never_plugged_is_forgotten_after_expiry():
    core = ready_core()
    authorize(core, expires_at=iso(T0 + 10))
    live_tick(core, T0 + 14)
    assert core.supply is not None  # CENTRAL normally cancels; we wait a grace period
    assert "expired" in said(live_tick(core, T0 + 16)) and core.supply is None


# ---------------------------------------------------------------- anonymous supplies and tickets
def test_anonymous_request_and_answers():
    core = ready_core()
    request = published(core.request_supply(T0), m.RequestSupply)
    assert request == [m.RequestSupply("CP1", "ANON-CP1", "id1")]
    assert "already waiting" in said(core.request_supply(T0))
    accepted = core.handle(m.SupplyAuthorized("id1", "S9", "CP1", "ANON-CP1", "0.50", iso(T0 + 60)), T0)
    assert "accepted" in said(accepted)
    denied = m.SupplyDenied("id1", "CP1", "BUSY", "Charging point is busy")
    assert core.handle(denied, T0) == []  # answers to requests no longer waiting are dropped


def test_denied_request_is_shown_and_frees_the_request():
    core = ready_core()
    core.request_supply(T0)
    assert "BUSY" in said(core.handle(m.SupplyDenied("id1", "CP1", "BUSY", "Charging point is busy"), T0))
    assert published(core.request_supply(T0), m.RequestSupply)


def test_unanswered_request_times_out():
    core = ready_core()
    core.request_supply(T0)
    assert "No answer" in said(live_tick(core, T0 + 11))
    assert published(core.request_supply(T0 + 11), m.RequestSupply)


def test_ticket_is_shown_once_and_always_acknowledged():
    core = ready_core()
    ticket = m.TicketIssued("T1", "S9", "CP1", "ANON-CP1", iso(T0), iso(T0 + 60), 60, "1.000", "0.50", "0.50",
                            "UNPLUGGED")
    first, again = core.handle(ticket, T0), core.handle(ticket, T0 + 5)
    assert "TICKET T1" in said(first) and said(again) == ""
    assert published(first, m.AckTicket) == published(again, m.AckTicket) == [m.AckTicket("T1")]


def test_unknown_message_type_is_ignored_without_crashing():
    core = ready_core()
    assert core.handle(m.SelectChannel("x", "driver"), T0) == []


# ---------------------------------------------------------------- persistence and recovery
def test_snapshot_holds_the_running_supply_and_unacknowledged_records():
    core = charging_core()
    core.tick(T0 + 1)
    snap = core.snapshot()
    assert snap["supply"]["phase"] == "CHARGING" and snap["supply"]["energy_kwh"] == "0.367"
    core.unplug(T0 + 2)
    snap = core.snapshot()
    assert snap["supply"] is None and snap["finals"][0]["supply_id"] == "S1"


def test_final_record_is_forgotten_only_once_acknowledged():
    core = charging_core()
    core.unplug(T0 + 2)
    assert core.finals_acked({"S1"}) == [] and core.has_state()
    assert "acknowledged" in said(core.finals_acked(set()))
    assert not core.has_state()


def test_restart_closes_a_charging_supply_with_engine_lost_and_re_sends_records():
    old = charging_core()
    old.tick(T0 + 1)
    old.tick(T0 + 2)
    snap = old.snapshot()
    snap["finals"] = [{"supply_id": "S0", "cp_id": "CP1", "started_at": iso(T0 - 100), "ended_at": iso(T0 - 50),
                       "energy_kwh": "1.000", "amount_eur": "0.50", "reason": "UNPLUGGED"}]
    new = EngineCore()
    new.monitor_connected(T0 + 30)
    effects = new.cp_info(INFO, snap, T0 + 30)
    finals = published(effects, m.SupplyFinished)
    assert [f.supply_id for f in finals] == ["S0", "S1"]
    lost = finals[1]
    assert (lost.reason, lost.started_at, lost.ended_at, lost.energy_kwh, lost.amount_eur) == \
        ("ENGINE_LOST", iso(T0), iso(T0 + 2), "0.733", "0.37")
    assert new.supply is None and new.has_state()
    assert new.finals_acked(set()) and not new.has_state()


def test_restart_drops_an_authorization_never_plugged():
    old = ready_core()
    authorize(old)
    new = EngineCore()
    effects = new.cp_info(INFO, old.snapshot(), T0 + 30)
    assert published(effects) == [] and not new.has_state()


def test_restart_survives_garbage_on_disk():
    new = EngineCore()
    effects = new.cp_info(INFO, {"supply": {"phase": "CHARGING"}, "finals": [{"nope": 1}]}, T0)
    assert "unreadable" in said(effects) and not new.has_state()


def test_energy_figures_use_exact_decimals():
    core = charging_core(time_scale=1.0)
    live_tick(core, T0 + 3600)
    assert core.supply.energy_kwh == Decimal("22.000") and core.supply.amount_eur == Decimal("11.00")


# ---------------------------------------------------------------- the Monitor's health verdict
def test_health_tracker_ok_then_two_missed_is_ko_and_recovers():
    tracker = HealthTracker()
    assert tracker.status == "KO"  # no link yet
    tracker.link(True)
    seq = tracker.next_check(0.0)
    tracker.reply(str(seq), "OK")
    assert tracker.status == "OK"
    tracker.next_check(1.0)
    tracker.next_check(2.0)
    assert tracker.status == "OK"  # one missed answer is tolerated
    tracker.next_check(3.0)
    assert tracker.status == "KO"  # two in a row are a fault
    tracker.reply(str(seq), "OK")  # even a late answer proves the engine is back
    assert tracker.status == "OK"


def test_health_tracker_counts_an_overdue_answer_as_missed():
    tracker = HealthTracker(reply_timeout_s=0.5)
    tracker.link(True)
    tracker.reply(str(tracker.next_check(0.0)), "OK")
    tracker.next_check(1.0)
    assert tracker.expire(1.4) is False
    assert tracker.expire(1.5) is True and tracker.status == "OK"
    assert tracker.expire(1.6) is False  # counted once
    tracker.next_check(1.6)
    assert tracker.expire(2.1) is True and tracker.status == "KO"


def test_health_tracker_ko_answer_and_lost_link():
    tracker = HealthTracker()
    tracker.link(True)
    tracker.reply(str(tracker.next_check(0.0)), "KO")
    assert tracker.status == "KO"
    tracker.reply(str(tracker.next_check(1.0)), "OK")
    assert tracker.status == "OK"
    tracker.link(False)
    assert tracker.status == "KO" and "not reachable" in tracker.reason()


def test_backoff_doubles_up_to_two_seconds_and_resets():
    backoff = Backoff()
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_stop_before_the_plug_sends_an_empty_final_record():
    core = ready_core()
    authorize(core)
    finished = published(core.handle(m.StopSupply("S1", "STOPPED_BY_OPERATOR"), T0 + 1), m.SupplyFinished)
    assert finished == [m.SupplyFinished("S1", "CP1", None, iso(T0 + 1), "0.000", "0.00", "STOPPED_BY_OPERATOR")]


def test_cancel_after_the_plug_ends_the_supply_instead_of_charging_for_free():
    core = charging_core()
    effects = core.handle(m.CancelAuthorization("S1", "AUTH_EXPIRED"), T0 + 1)
    assert published(effects, m.SupplyFinished)[0].reason == "AUTH_EXPIRED" and core.supply is None


def test_every_message_type_the_engine_can_receive_has_a_handler():
    from EV_CP.engine_core import MESSAGE_HANDLERS
    to_engine = {m.AuthorizeSupply, m.CancelAuthorization, m.StopSupply, m.SupplyAuthorized, m.SupplyDenied,
                 m.TicketIssued, m.Notice, m.Error, m.SupplyStarted, m.Telemetry, m.CpStatus}
    assert to_engine <= set(MESSAGE_HANDLERS)


# ---------------------------------------------------------------- CENTRAL's out-of-service reasons (CpStatus)
def stopped(reasons=("OPERATOR",), cp_id="CP1"):
    """CENTRAL's CpStatus for a CP out of service for some reasons (none: back in service)."""
    state = "PARADO" if reasons else "ACTIVADO"
    caption = f"Out of Order ({', '.join(sorted(reasons))})" if reasons else state
    return m.CpStatus(cp_id, state, caption, list(reasons))


def test_cp_status_keeps_centrals_reasons_and_says_only_changes():
    core = ready_core()
    effects = core.handle(stopped(), T0)
    assert core.out_of_service == ("OPERATOR",)
    assert said(effects) == "Parado por CENTRAL: Out of Order (OPERATOR)"
    assert core.handle(stopped(), T0 + 1) == []  # the same reasons again (after a Hello): nothing new
    assert "Service: Parado por CENTRAL: Out of Order (OPERATOR)" in core.status_text(T0 + 1)
    effects = core.handle(stopped(("WEATHER", "OPERATOR")), T0 + 2)
    assert said(effects) == "Parado por CENTRAL: Out of Order (OPERATOR, WEATHER)"
    effects = core.handle(stopped(()), T0 + 3)
    assert core.out_of_service == () and "back in service" in said(effects)
    assert "Service: in service" in core.status_text(T0 + 3)


def test_a_manual_request_while_out_of_service_is_refused_locally_with_the_reason():
    core = ready_core()
    core.handle(stopped(("WEATHER",)), T0)
    effects = core.request_supply(T0)
    assert not published(effects) and not core.request_pending
    assert said(effects) == "Cannot request a supply: Parado por CENTRAL: Out of Order (WEATHER)"
    core.handle(stopped(()), T0 + 1)
    assert published(core.request_supply(T0 + 1), m.RequestSupply)


def test_authorizations_stay_centrals_call_while_a_stop_is_known():
    core = ready_core()
    core.handle(stopped(), T0)
    authorize(core)  # CENTRAL decides: had it resumed the CP, its CpStatus would come first on the same channel
    assert core.supply is not None and core.refusal() is None


def test_cp_status_for_another_cp_is_ignored():
    core = ready_core()
    effects = core.handle(stopped(cp_id="CP2"), T0)
    assert core.out_of_service == () and "another CP" in said(effects)


def test_a_new_connection_may_replace_the_monitor_only_when_it_is_gone_or_silent():
    core = EngineCore()
    assert core.monitor_replaceable(T0)  # no Monitor yet
    core.monitor_connected(T0)
    core.monitor_health("1", T0 + 1)
    assert not core.monitor_replaceable(T0 + 3.9)  # live: HEALTH 2.9 s ago
    assert core.monitor_replaceable(T0 + 4.0)       # silent for the monitor timeout
    core.monitor_health("2", T0 + 4.5)
    core.monitor_lost("connection closed", T0 + 5)
    assert core.monitor_replaceable(T0 + 5)
