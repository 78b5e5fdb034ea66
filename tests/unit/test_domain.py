"""CP state derivation, supply lifecycle and exact money (SPEC §3, §4; common/domain.py)."""
from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from common import domain as d
from common.domain import CpState, OutOfService, Phase, SupplyEvent
from common.messages import DENY_REASONS

S = CpState
OP, WX, KR = OutOfService.OPERATOR.value, OutOfService.WEATHER.value, OutOfService.KEYS_REVOKED.value
ALL_REASON_SETS = [frozenset(c) for n in range(4) for c in itertools.combinations((OP, WX, KR), n)]
SOME_REASON_SETS = [r for r in ALL_REASON_SETS if r]

# ---------------------------------------------------------------- derive_cp_state
# (monitor link up, engine OK, out-of-service reasons, supplying) -> state
STATE_TABLE = [
    # the Monitor x Engine matrix, nothing else set
    (True, True, (), False, S.ACTIVADO),
    (True, False, (), False, S.AVERIADO),
    (False, True, (), False, S.DESCONECTADO),
    (False, False, (), False, S.DESCONECTADO),
    # supplying
    (True, True, (), True, S.SUMINISTRANDO),
    (True, False, (), True, S.AVERIADO),
    (False, True, (), True, S.DESCONECTADO),
    # each reason alone
    (True, True, (OP,), False, S.PARADO),
    (True, True, (WX,), False, S.PARADO),
    (True, True, (KR,), False, S.PARADO),
    # reasons beat a supply in progress (derivation order, SPEC §3)
    (True, True, (WX,), True, S.PARADO),
    # DESCONECTADO and AVERIADO beat reasons
    (False, True, (OP, WX, KR), False, S.DESCONECTADO),
    (True, False, (OP,), False, S.AVERIADO),
    (True, False, (OP, WX, KR), True, S.AVERIADO),
]


@pytest.mark.parametrize("link_up, engine_ok, reasons, supplying, expected", STATE_TABLE)
def test_derive_cp_state_table(link_up, engine_ok, reasons, supplying, expected):
    assert d.derive_cp_state(link_up, engine_ok, reasons, supplying) is expected


@pytest.mark.parametrize("engine_ok, reasons, supplying",
                         list(itertools.product([True, False], ALL_REASON_SETS, [True, False])))
def test_monitor_down_is_desconectado_regardless(engine_ok, reasons, supplying):
    assert d.derive_cp_state(False, engine_ok, reasons, supplying) is S.DESCONECTADO


@pytest.mark.parametrize("reasons, supplying", list(itertools.product(ALL_REASON_SETS, [True, False])))
def test_engine_ko_with_monitor_up_is_averiado_regardless(reasons, supplying):
    assert d.derive_cp_state(True, False, reasons, supplying) is S.AVERIADO


@pytest.mark.parametrize("reasons, supplying", list(itertools.product(SOME_REASON_SETS, [True, False])))
def test_any_combination_of_reasons_is_parado(reasons, supplying):
    assert d.derive_cp_state(True, True, reasons, supplying) is S.PARADO


@pytest.mark.parametrize("make", [list, tuple, set, frozenset, lambda r: (x for x in r),
                                  lambda r: {OutOfService(x) for x in r}],
                         ids=["list", "tuple", "set", "frozenset", "generator", "enum members"])
def test_reasons_may_be_any_iterable(make):
    assert d.derive_cp_state(True, True, make([WX]), False) is S.PARADO
    assert d.derive_cp_state(True, True, make([]), False) is S.ACTIVADO


def test_reasons_are_independent_flags():
    reasons = {OP, WX}
    reasons.discard(OP)  # operator Resume
    assert d.derive_cp_state(True, True, reasons, False) is S.PARADO
    assert d.caption(S.PARADO, reasons) == "Out of Order (WEATHER)"
    reasons.discard(WX)  # weather CLEAR
    assert d.derive_cp_state(True, True, reasons, False) is S.ACTIVADO


# ---------------------------------------------------------------- colours and captions
@pytest.mark.parametrize("state, colour", [(S.DESCONECTADO, "grey"), (S.ACTIVADO, "green"),
                                           (S.SUMINISTRANDO, "green"), (S.PARADO, "orange"),
                                           (S.AVERIADO, "red")])
def test_state_colours(state, colour):
    assert d.STATE_COLOURS[state] == colour


def test_every_state_has_a_colour():
    assert set(d.STATE_COLOURS) == set(CpState)


@pytest.mark.parametrize("state, reasons, text", [
    (S.ACTIVADO, (), "ACTIVADO"),
    (S.DESCONECTADO, (OP,), "DESCONECTADO"),
    (S.AVERIADO, (), "AVERIADO"),
    (S.SUMINISTRANDO, (), "SUMINISTRANDO"),
    (S.PARADO, (OP,), "Out of Order (OPERATOR)"),
    (S.PARADO, (WX, OP), "Out of Order (OPERATOR, WEATHER)"),
    (S.PARADO, [KR, WX, OP], "Out of Order (KEYS_REVOKED, OPERATOR, WEATHER)"),
    (S.PARADO, {OutOfService.WEATHER, OutOfService.OPERATOR}, "Out of Order (OPERATOR, WEATHER)"),
])
def test_caption(state, reasons, text):
    assert d.caption(state, reasons) == text


# ---------------------------------------------------------------- deny_reason
DENY_TABLE = [
    (S.DESCONECTADO, (), False, "DISCONNECTED"),
    (S.DESCONECTADO, (OP,), True, "DISCONNECTED"),
    (S.AVERIADO, (), False, "FAULTY"),
    (S.AVERIADO, (WX,), True, "FAULTY"),
    (S.PARADO, (WX,), False, "WEATHER"),
    (S.PARADO, {OutOfService.WEATHER}, False, "WEATHER"),
    (S.PARADO, (OP,), False, "OUT_OF_ORDER"),
    (S.PARADO, (KR,), False, "OUT_OF_ORDER"),
    (S.PARADO, (WX, OP), False, "OUT_OF_ORDER"),
    (S.PARADO, (WX,), True, "WEATHER"),
    (S.ACTIVADO, (), True, "BUSY"),  # authorized, not yet plugged
    (S.SUMINISTRANDO, (), True, "BUSY"),
    (S.SUMINISTRANDO, (), False, "BUSY"),  # supplying is busy even if the caller forgot the flag
    (S.ACTIVADO, (), False, None),
]


@pytest.mark.parametrize("state, reasons, busy, expected", DENY_TABLE)
def test_deny_reason(state, reasons, busy, expected):
    assert d.deny_reason(state, reasons, busy) == expected


@pytest.mark.parametrize("state, reasons, busy", list(itertools.product(CpState, ALL_REASON_SETS, [True, False])))
def test_deny_reasons_are_in_the_wire_table(state, reasons, busy):
    reason = d.deny_reason(state, reasons, busy)
    assert reason is None or reason in DENY_REASONS
    assert (reason is None) == (state is S.ACTIVADO and not busy)


# ---------------------------------------------------------------- supply lifecycle
LEGAL = {
    (Phase.AUTHORIZED, SupplyEvent.PLUG): Phase.CHARGING,
    (Phase.AUTHORIZED, SupplyEvent.EXPIRE): Phase.FINISHED,
    (Phase.AUTHORIZED, SupplyEvent.CANCEL): Phase.FINISHED,
    (Phase.AUTHORIZED, SupplyEvent.FINISH): Phase.FINISHED,
    (Phase.CHARGING, SupplyEvent.FINISH): Phase.FINISHED,
}
ILLEGAL = [pair for pair in itertools.product(Phase, SupplyEvent) if pair not in LEGAL]


def test_transition_table_is_exactly_the_legal_one():
    assert d.TRANSITIONS == LEGAL


@pytest.mark.parametrize("phase, event", list(LEGAL), ids=lambda x: x.value)
def test_legal_transitions(phase, event):
    assert d.next_phase(phase, event) is LEGAL[(phase, event)]


@pytest.mark.parametrize("phase, event", ILLEGAL, ids=lambda x: x.value)
def test_illegal_transitions_raise_and_leave_the_phase(phase, event):
    current = phase
    with pytest.raises(d.IllegalTransition, match=f"{event.value}.*{phase.value}"):
        current = d.next_phase(current, event)
    assert current is phase


def test_finished_is_terminal_and_every_phase_is_reachable():
    assert not [e for e in SupplyEvent if (Phase.FINISHED, e) in d.TRANSITIONS]
    reached, frontier = {Phase.AUTHORIZED}, [Phase.AUTHORIZED]
    while frontier:
        phase = frontier.pop()
        for (src, _), dst in d.TRANSITIONS.items():
            if src is phase and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(Phase)


def test_a_normal_supply():
    phase = Phase.AUTHORIZED
    for event in (SupplyEvent.PLUG, SupplyEvent.FINISH):
        phase = d.next_phase(phase, event)
    assert phase is Phase.FINISHED


# ---------------------------------------------------------------- money and energy
@pytest.mark.parametrize("kwh, price, eur", [
    ("10", "0.35", "3.50"),
    ("12.345", "0.30", "3.70"),   # 3.7035
    ("0.005", "1", "0.01"),       # half up
    ("0.004", "1", "0.00"),
    ("1.115", "1", "1.12"),       # a float would give 1.11
    (Decimal("7.4"), "0.42", "3.11"),  # 3.108
    (0.1, 3, "0.30"),             # floats go through str(), not binary
    ("0", "0.35", "0.00"),
    ("100.000", "0.599", "59.90"),
])
def test_amount_for(kwh, price, eur):
    amount = d.amount_for(kwh, price)
    assert isinstance(amount, Decimal)
    assert amount == Decimal(eur) and str(amount) == eur


@pytest.mark.parametrize("seconds, power, scale, kwh", [
    (3600, "7.4", 1.0, "7.400"),
    (1800, 50, 1.0, "25.000"),
    (1, 22, 1.0, "0.006"),        # 0.00611
    (1, "11", 1.0, "0.003"),      # 0.003055 half up -> 0.003
    (0, 50, 1.0, "0.000"),
    (60, "7.4", 60.0, "7.400"),   # a minute at 60x is an hour
    (0.5, 36, 1.0, "0.005"),      # exactly 0.005
])
def test_energy_after(seconds, power, scale, kwh):
    energy = d.energy_after(seconds, power, time_scale=scale)
    assert isinstance(energy, Decimal)
    assert str(energy) == kwh


@pytest.mark.parametrize("fn, value, text", [
    (d.money, "2.675", "2.68"), (d.money, 2.675, "2.68"), (d.money, 0.1 + 0.2, "0.30"), (d.money, 3, "3.00"),
    (d.energy, "1.0005", "1.001"), (d.energy, "1.0004", "1.000"), (d.energy, 2, "2.000"),
])
def test_exact_rounding(fn, value, text):
    assert str(fn(value)) == text


def test_amount_of_the_energy_telemetry_reports_adds_up():
    kwh = sum((d.energy_after(1, 22) for _ in range(3600)), Decimal(0))
    assert kwh == Decimal("21.600")  # 3600 x 0.006: rounding per second is visible but exact
    assert d.amount_for(kwh, "0.35") == Decimal("7.56")


def test_domain_module_does_no_io():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(d.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"socket", "kafka", "psycopg2", "flask", "threading", "time"}
