"""The Engine's supply simulation as a pure state machine (SPEC §4 steps 3-9, §5).

Theory of operation
-------------------
No sockets, no Kafka, no clock: the shell (``EV_CP_E.py``) feeds events in --
Monitor frames, Kafka messages, operator keys and a ``tick`` several times a
second -- always passing ``now`` (epoch seconds), and carries out the effects
that come back: :class:`Publish` a message to CENTRAL, :class:`Say` a line to
the operator, :class:`ReplyHealth` to the Monitor, :class:`ConnectKafka` once
the CP's identity and zone are known. Tests drive it with exact times.

A supply goes AUTHORIZED -> CHARGING -> FINISHED (``common.domain.next_phase``).
Every end yields exactly one ``SupplyFinished``, kept in ``finals`` until the
shell reports that CENTRAL acknowledged it. ``snapshot()`` is what the shell
persists every second; ``cp_info(..., persisted)`` turns the snapshot of a
killed engine into final records: a CHARGING supply ends with ENGINE_LOST and
its last persisted figures, so nothing supplied is lost.

New supplies need the Monitor, CENTRAL (as the Monitor sees it) and a healthy
engine. CENTRAL also tells the Engine its out-of-service reasons (``CpStatus``:
operator stop, weather): while there are any, a manual request is refused here
with CENTRAL's reason (CENTRAL would deny it anyway); authorizations are still
CENTRAL's call. A running supply survives CENTRAL being away (its records wait in the
Kafka outbox) but not a fault or a lost Monitor (SPEC §5).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Optional, Union

from common import domain as d
from common import messages as m
from common.protocol import ENGINE_KO, ENGINE_OK

logger = logging.getLogger(__name__)

MONITOR_TIMEOUT_S = 3.0   # no HEALTH for this long: the Monitor is gone (SPEC §5)
TELEMETRY_EVERY_S = 1.0
EXPIRY_GRACE_S = 5.0      # CENTRAL cancels expired authorizations; we only forget them if it cannot
REQUEST_TIMEOUT_S = 10.0  # an anonymous request with no answer is forgotten
SEEN_TICKETS_LIMIT = 1000


# ---------------------------------------------------------------- effects
@dataclass(frozen=True)
class Say:
    """A line for the operator's console."""

    text: str


@dataclass(frozen=True)
class Publish:
    """A message for CENTRAL over the zone channel (reliable ones go through the outbox)."""

    message: m.Message


@dataclass(frozen=True)
class ReplyHealth:
    """HEALTH_REPLY for the Monitor."""

    seq: str
    engine: str


@dataclass(frozen=True)
class ConnectKafka:
    """Open (or move) the zone channel for this CP."""

    cp_id: str
    zone: str


Effect = Union[Say, Publish, ReplyHealth, ConnectKafka]


# ---------------------------------------------------------------- state
@dataclass(frozen=True)
class CpInfo:
    """What the Monitor hands over after CENTRAL authenticated the CP (CP_INFO)."""

    cp_id: str
    zone: str
    price_eur_kwh: str
    power_kw: str
    address: str = ""
    key_version: str = ""
    key: str = field(default="", repr=False)  # never printed or logged


@dataclass
class Supply:
    """The one supply this CP is running (authorized, or charging)."""

    supply_id: str
    driver_id: str
    price_eur_kwh: str
    expires_at: Optional[str]
    authorized_at: float
    phase: d.Phase = d.Phase.AUTHORIZED
    started_at: Optional[str] = None
    plugged_at: Optional[float] = None
    updated_at: Optional[str] = None
    energy_kwh: Decimal = Decimal("0.000")
    amount_eur: Decimal = Decimal("0.00")
    seq: int = 0


def iso(now: float) -> str:
    """Epoch seconds -> ISO-8601 UTC text, as ``common.messages.now_iso`` writes it."""
    return datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")


def epoch(text: Optional[str]) -> Optional[float]:
    """ISO-8601 text -> epoch seconds, or None when missing or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class EngineCore:
    """Everything that changes the Engine's state; returns effects, performs none."""

    def __init__(self, time_scale: float = 60.0, auto_plug_s: Optional[float] = None,
                 auto_unplug_s: Optional[float] = None, monitor_timeout_s: float = MONITOR_TIMEOUT_S,
                 new_id: Callable[[], str] = m.new_id):
        self.time_scale, self.auto_plug_s, self.auto_unplug_s = time_scale, auto_plug_s, auto_unplug_s
        self.monitor_timeout_s, self.new_id = monitor_timeout_s, new_id
        self.info: Optional[CpInfo] = None
        self.forced_ko = False
        self.monitor_up = False
        self.central_up: Optional[bool] = None  # None: not told yet by this Monitor
        self.kafka_up = False
        self.supply: Optional[Supply] = None
        self.finals: dict[str, m.SupplyFinished] = {}  # by supply_id, until CENTRAL acknowledges
        self._published: set[str] = set()              # finals already handed to the outbox
        self._last_health: Optional[float] = None
        self._next_telemetry = 0.0
        self._request: Optional[tuple[str, float]] = None  # (request_id, sent at)
        self._tickets_seen: dict[str, None] = {}
        self.last_finished: Optional[m.SupplyFinished] = None  # for the owner panel
        self.last_finished_driver = ""
        self.last_ticket: Optional[m.TicketIssued] = None      # anonymous supplies: CENTRAL's ticket
        self.out_of_service: tuple[str, ...] = ()               # CENTRAL's reasons (CpStatus), sorted

    # ------------------------------------------------------------ queries
    @property
    def engine_status(self) -> str:
        """OK or KO, as answered to HEALTH."""
        return ENGINE_KO if self.forced_ko else ENGINE_OK

    @property
    def cp_id(self) -> Optional[str]:
        """The CP id learnt from CP_INFO, if any."""
        return self.info.cp_id if self.info else None

    def hello_supply(self) -> Optional[str]:
        """The supply to name in the Kafka Hello (so CENTRAL can reconcile after a restart)."""
        return self.supply.supply_id if self.supply else None

    def refusal(self) -> Optional[str]:
        """Why no new supply can start now, or None."""
        if self.info is None:
            return "CP not identified yet (no CP_INFO from the Monitor)"
        if not self.monitor_up:
            return "Sin monitor"
        if self.forced_ko:
            return "Engine is KO"
        if self.central_up is not True:
            return "Imposible conectar con la CENTRAL"
        return None

    def out_of_service_text(self) -> str:
        """'Parado por CENTRAL: Out of Order (OPERATOR)' while CENTRAL keeps the CP out of service, else ''."""
        if not self.out_of_service:
            return ""
        return f"Parado por CENTRAL: {d.caption(d.CpState.PARADO, self.out_of_service)}"

    def request_refusal(self) -> Optional[str]:
        """Why a manual (anonymous) request cannot be sent now, or None."""
        if why := self.refusal() or self.out_of_service_text():
            return why
        if not self.kafka_up:
            return "no Kafka channel to CENTRAL yet"
        if self.supply is not None:
            return f"busy with supply {self.supply.supply_id}"
        if self._request is not None:
            return "a request is already waiting for CENTRAL's answer"
        return None

    def status_text(self, now: float) -> str:
        """A multi-line status report for the console."""
        info = self.info
        lines = [
            f"CP: {info.cp_id} zone={info.zone} price={info.price_eur_kwh} EUR/kWh power={info.power_kw} kW"
            if info else "CP: not identified yet (waiting for CP_INFO)",
            f"Engine: {self.engine_status}{' (forced)' if self.forced_ko else ''}",
            f"Monitor: {'connected' if self.monitor_up else 'Sin monitor'}",
            f"CENTRAL (per Monitor): {_link_text(self.central_up)}; Kafka channel: {'up' if self.kafka_up else 'down'}",
            f"Service: {self.out_of_service_text() or 'in service (per CENTRAL)'}",
            f"Supply: {self._supply_text(now)}",
            f"Final records awaiting CENTRAL's ack: {len(self.finals)}",
        ]
        return "\n".join(lines)

    def _supply_text(self, now: float) -> str:
        s = self.supply
        if s is None:
            return "none"
        if s.phase is d.Phase.AUTHORIZED:
            return f"{s.supply_id} AUTHORIZED for {s.driver_id}, waiting for the plug"
        return (f"{s.supply_id} CHARGING for {s.driver_id}: {s.energy_kwh} kWh, {s.amount_eur} EUR, "
                f"{int(now - (s.plugged_at or now))} s")

    # ------------------------------------------------------------ Monitor link
    def monitor_connected(self, now: float) -> list[Effect]:
        """A (new) Monitor opened a session; until it says otherwise, CENTRAL's link is unknown."""
        self._last_health = now
        self.central_up = None
        return self._monitor_back()

    def monitor_replaceable(self, now: float) -> bool:
        """Whether a new connection may take the Monitor's place: none is up, or it sent no HEALTH for the timeout."""
        return (not self.monitor_up or self._last_health is None
                or now - self._last_health >= self.monitor_timeout_s)

    def monitor_health(self, seq: str, now: float) -> list[Effect]:
        """HEALTH from the Monitor: answer with our status."""
        self._last_health = now
        return self._monitor_back() + [ReplyHealth(seq, self.engine_status)]

    def _monitor_back(self) -> list[Effect]:
        if self.monitor_up:
            return []
        self.monitor_up = True
        return [Say("Monitor connected")]

    def monitor_lost(self, why: str, now: float) -> list[Effect]:
        """The Monitor went away (EOF or silence): no new supplies, and the running one ends."""
        if not self.monitor_up:
            return []
        self.monitor_up = False
        effects: list[Effect] = [Say(f"Sin monitor ({why})")]
        if self.supply is not None:
            effects += self._finish("MONITOR_LOST", now)
        return effects

    def central_link(self, up: bool) -> list[Effect]:
        """CENTRAL#UP|DOWN from the Monitor."""
        if self.central_up is up:
            return []
        self.central_up = up
        return [Say("CENTRAL reachable (per the Monitor)" if up else "Imposible conectar con la CENTRAL")]

    def cp_info(self, info: CpInfo, persisted: Optional[dict], now: float) -> list[Effect]:
        """CP_INFO: learn who we are; the first time, recover what a previous run left on disk."""
        self._last_health = now
        if self.info is not None and info.cp_id != self.info.cp_id:
            return [Say(f"Ignored CP_INFO for {info.cp_id}: this engine is {self.info.cp_id} (restart it to change)")]
        first, old = self.info is None, self.info
        self.info = info
        effects: list[Effect] = []
        if info != old:  # the Monitor repeats CP_INFO after every reconnect; show only news
            effects.append(Say(f"CP {info.cp_id}: zone {info.zone}, {info.price_eur_kwh} EUR/kWh, "
                               f"{info.power_kw} kW, {info.address or 'no address'}"))
        if first:
            return effects + [ConnectKafka(info.cp_id, info.zone)] + self._restore(persisted or {})
        if old is not None and old.zone != info.zone:
            self._published.clear()
            return effects + [ConnectKafka(info.cp_id, info.zone)] + self._publish_finals()
        return effects

    # ------------------------------------------------------------ Kafka
    def kafka_link(self, up: bool) -> list[Effect]:
        """The zone channel to CENTRAL came up or went down."""
        if self.kafka_up == up:
            return []
        self.kafka_up = up
        return [Say("Kafka channel to CENTRAL ready" if up else "Kafka channel to CENTRAL lost; retrying")]

    def handle(self, message: m.Message, now: float) -> list[Effect]:
        """A message from CENTRAL, dispatched by type."""
        handler = MESSAGE_HANDLERS.get(type(message))
        if handler is None:
            logger.warning("type %s not handled by the engine: %r", message.type_name(), message)
            return []
        return handler(self, message, now)

    def finals_acked(self, pending_supply_ids: set[str]) -> list[Effect]:
        """Forget final records CENTRAL acknowledged (published, and no longer pending in the outbox)."""
        effects: list[Effect] = []
        for supply_id in list(self.finals):
            if supply_id in self._published and supply_id not in pending_supply_ids:
                del self.finals[supply_id]
                self._published.discard(supply_id)
                effects.append(Say(f"CENTRAL acknowledged the final record of supply {supply_id}"))
        return effects

    def _on_authorize(self, msg: m.AuthorizeSupply, now: float) -> list[Effect]:
        if self.supply is not None and self.supply.supply_id == msg.supply_id or msg.supply_id in self.finals:
            return []  # re-sent: already running or finished
        if self.info is not None and msg.cp_id != self.info.cp_id:
            return [Say(f"Ignored authorization {msg.supply_id} for another CP ({msg.cp_id})")]
        why = self.refusal() or (f"busy with supply {self.supply.supply_id}" if self.supply else None)
        if why:
            return [Say(f"Authorization {msg.supply_id} for {msg.driver_id} not started: {why}")]
        self.supply = Supply(msg.supply_id, msg.driver_id, msg.price_eur_kwh, msg.expires_at, now)
        plug_hint = f"auto-plug in {self.auto_plug_s:g} s" if self.auto_plug_s is not None else "press p to plug in"
        return [Say(f"Supply {msg.supply_id} authorized for {msg.driver_id} at {msg.price_eur_kwh} EUR/kWh; "
                    f"{plug_hint}")]

    def _on_cancel(self, msg: m.CancelAuthorization, now: float) -> list[Effect]:
        s = self.supply
        if s is None or s.supply_id != msg.supply_id:
            return []
        if s.phase is d.Phase.CHARGING:  # CENTRAL gave up on it while we plugged: end it, do not charge for free
            return self._finish(msg.reason if msg.reason in m.END_REASONS else "AUTH_EXPIRED", now)
        self.supply = None
        return [Say(f"Authorization {msg.supply_id} cancelled by CENTRAL ({msg.reason})")]

    def _on_stop(self, msg: m.StopSupply, now: float) -> list[Effect]:
        if self.supply is None or self.supply.supply_id != msg.supply_id:
            return []  # already finished (its record is in the outbox) or unknown
        return self._finish(msg.reason, now)

    def _on_supply_authorized(self, msg: m.SupplyAuthorized, now: float) -> list[Effect]:
        if self._request is None or self._request[0] != msg.request_id:
            return []
        self._request = None
        return [Say(f"Request accepted: supply {msg.supply_id} at {msg.price_eur_kwh} EUR/kWh "
                    f"(expires {msg.expires_at})")]

    def _on_supply_denied(self, msg: m.SupplyDenied, now: float) -> list[Effect]:
        if self._request is None or self._request[0] != msg.request_id:
            return []
        self._request = None
        return [Say(f"Request denied: {msg.reason} - {msg.message or m.DENY_REASONS.get(msg.reason, '')}")]

    def _on_ticket(self, msg: m.TicketIssued, now: float) -> list[Effect]:
        effects: list[Effect] = [Publish(m.AckTicket(msg.ticket_id))]
        if msg.ticket_id in self._tickets_seen:
            return effects
        self._tickets_seen[msg.ticket_id] = None
        self.last_ticket = msg
        if len(self._tickets_seen) > SEEN_TICKETS_LIMIT:
            del self._tickets_seen[next(iter(self._tickets_seen))]
        return [Say(ticket_text(msg))] + effects

    def _on_cp_status(self, msg: m.CpStatus, now: float) -> list[Effect]:
        """CENTRAL's out-of-service reasons for this CP: keep them, say only changes."""
        if self.info is not None and msg.cp_id != self.info.cp_id:
            return [Say(f"Ignored the status of another CP ({msg.cp_id})")]
        reasons = tuple(sorted({str(r) for r in msg.out_of_service or ()}))
        if reasons == self.out_of_service:
            return []  # repeated after every Hello
        self.out_of_service = reasons
        if reasons:
            return [Say(self.out_of_service_text())]
        return [Say("CENTRAL put the CP back in service")]

    def _on_notice(self, msg: m.Notice, now: float) -> list[Effect]:
        return [Say(f"CENTRAL says ({msg.level}): {msg.text}")]

    def _on_error(self, msg: m.Error, now: float) -> list[Effect]:
        return [Say(f"CENTRAL error {msg.code}: {msg.message}")]

    def _ignore(self, msg: m.Message, now: float) -> list[Effect]:
        return []  # echoes of our own supply (SupplyStarted, Telemetry) and network status

    # ------------------------------------------------------------ operator
    def force_ko(self, now: float) -> list[Effect]:
        """Operator forces KO: HEALTH answers KO, and a running supply ends (ENGINE_FAULT)."""
        if self.forced_ko:
            return [Say("Engine already KO")]
        self.forced_ko = True
        effects: list[Effect] = [Say("Engine forced KO")]
        if self.supply is not None:
            effects += self._finish("ENGINE_FAULT", now)
        return effects

    def recover(self, now: float) -> list[Effect]:
        """Operator clears the forced KO."""
        if not self.forced_ko:
            return [Say("Engine already OK")]
        self.forced_ko = False
        return [Say("Engine recovered: OK")]

    def plug(self, now: float) -> list[Effect]:
        """The vehicle is plugged in: an authorized supply starts charging."""
        s = self.supply
        if s is None:
            return [Say("Nothing to plug in: no authorized supply")]
        if s.phase is d.Phase.CHARGING:
            return [Say(f"Already charging supply {s.supply_id}")]
        if self.forced_ko:
            return [Say("Cannot start charging: engine is KO")]
        s.phase = d.next_phase(s.phase, d.SupplyEvent.PLUG)
        s.plugged_at, s.started_at, s.updated_at = now, iso(now), iso(now)
        self._next_telemetry = now + TELEMETRY_EVERY_S
        return [Publish(m.SupplyStarted(s.supply_id, self.info.cp_id, s.started_at)),
                Say(f"Plugged in: supply {s.supply_id} charging for {s.driver_id}")]

    def unplug(self, now: float) -> list[Effect]:
        """The vehicle is unplugged: a charging supply ends (UNPLUGGED)."""
        s = self.supply
        if s is None or s.phase is not d.Phase.CHARGING:
            return [Say("Nothing to unplug: not charging")]
        return self._finish("UNPLUGGED", now)

    @property
    def request_pending(self) -> bool:
        """An anonymous request is waiting for CENTRAL's answer."""
        return self._request is not None

    def request_supply(self, now: float) -> list[Effect]:
        """A person at the CP asks for an anonymous supply; says why when it cannot."""
        why = self.request_refusal()
        if why:
            return [Say(f"Cannot request a supply: {why}")]
        request_id = self.new_id()
        self._request = (request_id, now)
        cp_id = self.info.cp_id
        return [Publish(m.RequestSupply(cp_id, d.anonymous_driver(cp_id), request_id)),
                Say(f"Anonymous supply requested (request {request_id})")]

    # ------------------------------------------------------------ time
    def tick(self, now: float) -> list[Effect]:
        """Time passes: Monitor silence, request and authorization expiry, auto plug/unplug, telemetry."""
        effects: list[Effect] = []
        if self.monitor_up and self._last_health is not None and now - self._last_health > self.monitor_timeout_s:
            effects += self.monitor_lost(f"no HEALTH for {self.monitor_timeout_s:g} s", now)
        if self._request is not None and now - self._request[1] > REQUEST_TIMEOUT_S:
            effects.append(Say(f"No answer from CENTRAL to request {self._request[0]}; try again"))
            self._request = None
        s = self.supply
        if s is not None and s.phase is d.Phase.AUTHORIZED:
            effects += self._tick_authorized(s, now)
        elif s is not None and s.phase is d.Phase.CHARGING:
            effects += self._tick_charging(s, now)
        return effects

    def _tick_authorized(self, s: Supply, now: float) -> list[Effect]:
        expires = epoch(s.expires_at)
        if expires is not None and now > expires + EXPIRY_GRACE_S:
            self.supply = None
            return [Say(f"Authorization {s.supply_id} expired before the plug")]
        if self.auto_plug_s is not None and now >= s.authorized_at + self.auto_plug_s:
            return self.plug(now)
        return []

    def _tick_charging(self, s: Supply, now: float) -> list[Effect]:
        if self.auto_unplug_s is not None and now >= (s.plugged_at or now) + self.auto_unplug_s:
            return self._finish("UNPLUGGED", now)
        if now < self._next_telemetry:
            return []
        self._next_telemetry = max(self._next_telemetry + TELEMETRY_EVERY_S, now)
        self._update_figures(s, now)
        s.seq += 1
        power = self.info.power_kw
        return [Publish(m.Telemetry(s.supply_id, self.info.cp_id, power, str(s.energy_kwh), str(s.amount_eur), s.seq)),
                Say(f"Charging {s.supply_id}: {power} kW, {s.energy_kwh} kWh, {s.amount_eur} EUR "
                    f"({int(now - (s.plugged_at or now))} s, {s.driver_id})")]

    def _update_figures(self, s: Supply, now: float) -> None:
        s.energy_kwh = d.energy_after(now - (s.plugged_at or now), self.info.power_kw, self.time_scale)
        s.amount_eur = d.amount_for(s.energy_kwh, s.price_eur_kwh)
        s.updated_at = iso(now)

    # ------------------------------------------------------------ ending
    def _finish(self, reason: str, now: float) -> list[Effect]:
        """End the current supply for a reason: one SupplyFinished, kept until acknowledged."""
        s = self.supply
        s.phase = d.next_phase(s.phase, d.SupplyEvent.FINISH)
        if s.plugged_at is not None:
            self._update_figures(s, now)
        self.supply = None
        final = m.SupplyFinished(s.supply_id, self.info.cp_id, s.started_at, iso(now),
                                 str(s.energy_kwh), str(s.amount_eur), reason)
        self.finals[s.supply_id] = final
        self.last_finished, self.last_finished_driver = final, s.driver_id
        self._published.add(s.supply_id)
        return [Publish(final),
                Say(f"Supply {s.supply_id} finished: {m.END_REASONS.get(reason, reason)}; "
                    f"{s.energy_kwh} kWh, {s.amount_eur} EUR")]

    def _publish_finals(self) -> list[Effect]:
        effects: list[Effect] = []
        for supply_id, final in self.finals.items():
            self._published.add(supply_id)
            effects += [Publish(final), Say(f"Sending the final record of supply {supply_id} ({final.reason})")]
        return effects

    # ------------------------------------------------------------ persistence
    def has_state(self) -> bool:
        """True while there is something a crash must not lose (a supply or an unacknowledged record)."""
        return self.supply is not None or bool(self.finals)

    def snapshot(self) -> dict:
        """Plain data to persist: the running supply and the unacknowledged final records."""
        s = self.supply
        supply = None
        if s is not None:
            supply = {"supply_id": s.supply_id, "driver_id": s.driver_id, "price_eur_kwh": s.price_eur_kwh,
                      "expires_at": s.expires_at, "phase": s.phase.value, "started_at": s.started_at,
                      "updated_at": s.updated_at, "energy_kwh": str(s.energy_kwh), "amount_eur": str(s.amount_eur)}
        return {"cp_id": self.cp_id, "supply": supply,
                "finals": [dataclasses.asdict(f) for f in self.finals.values()]}

    def _restore(self, persisted: dict) -> list[Effect]:
        """Turn what a previous run left on disk into final records to send."""
        effects: list[Effect] = []
        for raw in persisted.get("finals") or []:
            try:
                final = m.SupplyFinished(**raw)
            except TypeError:
                effects.append(Say(f"Ignored an unreadable final record on disk: {raw!r:.80}"))
                continue
            self.finals[final.supply_id] = final
        effects += self._recover_supply(persisted.get("supply"))
        return effects + self._publish_finals()

    def _recover_supply(self, raw: Optional[dict]) -> list[Effect]:
        if not raw:
            return []
        try:
            supply_id, phase = raw["supply_id"], raw["phase"]
            if phase != d.Phase.CHARGING.value:
                return [Say(f"Authorization {supply_id} from before the restart dropped (never plugged)")]
            self.finals[supply_id] = m.SupplyFinished(
                supply_id, self.info.cp_id, raw.get("started_at"), raw.get("updated_at") or raw.get("started_at"),
                str(d.energy(raw["energy_kwh"])), str(d.money(raw["amount_eur"])), "ENGINE_LOST")
        except (KeyError, TypeError, ArithmeticError, ValueError):
            return [Say(f"Ignored an unreadable supply on disk: {raw!r:.80}")]
        return [Say(f"Supply {supply_id} was charging when the engine stopped: closing it (ENGINE_LOST)")]


def ticket_text(t: m.TicketIssued) -> str:
    """The ticket as the console prints it."""
    return (f"TICKET {t.ticket_id}: supply {t.supply_id} at {t.cp_id} for {t.driver_id}; "
            f"{t.started_at or '-'} -> {t.ended_at} ({t.duration_s} s); {t.energy_kwh} kWh x "
            f"{t.price_eur_kwh} EUR/kWh = {t.amount_eur} EUR; {m.END_REASONS.get(t.reason, t.reason)}")


def _link_text(up: Optional[bool]) -> str:
    return "unknown" if up is None else ("up" if up else "DOWN")


MESSAGE_HANDLERS: dict[type, Callable[[EngineCore, m.Message, float], list[Effect]]] = {
    m.AuthorizeSupply: EngineCore._on_authorize,
    m.CancelAuthorization: EngineCore._on_cancel,
    m.StopSupply: EngineCore._on_stop,
    m.SupplyAuthorized: EngineCore._on_supply_authorized,
    m.SupplyDenied: EngineCore._on_supply_denied,
    m.TicketIssued: EngineCore._on_ticket,
    m.CpStatus: EngineCore._on_cp_status,
    m.Notice: EngineCore._on_notice,
    m.Error: EngineCore._on_error,
    m.SupplyStarted: EngineCore._ignore,
    m.Telemetry: EngineCore._ignore,
    m.NetworkStatus: EngineCore._ignore,
}
