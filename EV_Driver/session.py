"""The driver's session: everything the driver app decides, with no I/O (SPEC §4 steps 5-11, §5).

Theory of operation
-------------------
The edge (``EV_Driver.py``) feeds this object four kinds of input, one at a time
from one thread: console lines (:meth:`command`), messages from CENTRAL
(:meth:`handle`), link changes of the zone channel (:meth:`link_changed`) and
clock ticks (:meth:`tick`, a few times a second). Each call returns a list of
effects for the edge to carry out: :class:`Show` (a text for the driver),
:class:`Send` (a message to CENTRAL), :class:`BatchDone` (file mode finished) and
:class:`Quit`. Time comes from an injected :class:`Clock` and request ids from an
injected id source, so tests are exact.

A request waits for CENTRAL's answer (SupplyAuthorized / SupplyDenied with the same
request_id) for at most ``reply_timeout_s``; if the zone link is down it is held
and sent when the link comes up, within the same deadline. An authorized supply
has no timeout of its own: it ends with its ticket (CENTRAL sends one with reason
AUTH_EXPIRED if the vehicle is never plugged in). Tickets are acknowledged every
time they arrive (the ack may have been lost) and shown once per ticket_id.

CENTRAL counts as unreachable when the zone link is down, or no NetworkStatus has
arrived for ``status_stale_s`` (both with a grace period after start).

File mode (a :class:`Batch`) requests its CP ids one after another: the next one
starts ``wait_s`` after the previous ended (ticket, denial or timeout) and only when
no other request or supply of this driver is open.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Callable, Optional, Protocol, Union

from common import domain
from common import messages as m
from EV_Driver import screens
from EV_Driver.model import NORMAL_ENDS, CpView, Outcome, ServiceResult, decimal_or_zero
from EV_Driver.services import is_cp_id

logger = logging.getLogger(__name__)

STATUS_STALE_S = 6.0
DEFAULT_REPLY_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 4.0
MAX_SEEN_TICKETS = 10_000


# ---------------------------------------------------------------- ports and effects
class Clock(Protocol):
    """Monotonic seconds for timeouts, wall-clock UTC for expiry times."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Show:
    """A text for the driver; level is info | ok | warn | error | live | block."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class Send:
    """A message for CENTRAL."""

    message: m.Message


@dataclass(frozen=True)
class BatchDone:
    """File mode has finished; the summary has been shown."""

    results: tuple[ServiceResult, ...]


@dataclass(frozen=True)
class Quit:
    """The driver asked to leave."""


Effect = Union[Show, Send, BatchDone, Quit]


# ---------------------------------------------------------------- state
@dataclass
class PendingRequest:
    """A RequestSupply waiting for CENTRAL's answer."""

    request_id: str
    cp_id: str
    deadline: float
    sent: bool = False
    from_file: bool = False


@dataclass
class CurrentSupply:
    """The driver's open supply: authorized, then charging, until its ticket."""

    supply_id: str
    cp_id: str
    price_eur_kwh: str = ""
    charging: bool = False
    from_file: bool = False
    stop_sent: bool = False
    last: Optional[m.Telemetry] = None
    started_at: Optional[str] = None  # from SupplyStarted (the CP's clock), for the elapsed time


@dataclass
class Batch:
    """File mode: the CP ids, the results so far, and when the next request may start."""

    items: list[str]
    results: list[ServiceResult] = field(default_factory=list)
    resume_at: Optional[float] = 0.0  # None while an item is running

    @property
    def done(self) -> bool:
        return len(self.results) >= len(self.items)

    def progress(self, offset: int = 0) -> str:
        """'[i/N]' for the item being run (offset 1 before it is counted)."""
        return f"[{len(self.results) + offset}/{len(self.items)}]"


class DriverSession:
    """One driver's view of the network and of its own requests, supplies and tickets."""

    def __init__(self, driver_id: str, clock: Clock, new_id: Callable[[], str] = m.new_id,
                 reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S, wait_s: float = DEFAULT_WAIT_S,
                 status_stale_s: float = STATUS_STALE_S, tz: Optional[tzinfo] = None):
        self.driver_id = driver_id
        self.clock, self.new_id, self.tz = clock, new_id, tz
        self.reply_timeout_s, self.wait_s, self.status_stale_s = reply_timeout_s, wait_s, status_stale_s
        self.started_at = clock.monotonic()
        self.link_up = False
        self.link_was_up = False
        self.reachable: Optional[bool] = None  # None until decided once
        self.last_status_at: Optional[float] = None
        self.cps: dict[str, CpView] = {}
        self._status_parts = m.StatusAssembler()
        self.request: Optional[PendingRequest] = None
        self.supply: Optional[CurrentSupply] = None
        self.batch: Optional[Batch] = None
        self.tickets: list[m.TicketIssued] = []
        self._seen_tickets: dict[str, None] = {}
        self._abandoned_requests: dict[str, str] = {}  # request_id -> cp_id, given up on after the timeout

    # ---------------------------------------------------------------- console
    def command(self, line: str) -> list[Effect]:
        """One console line -> effects (COMMANDS is the table of what a line may say)."""
        words = line.split()
        if not words:
            return []
        name, args = words[0].lower(), words[1:]
        handler = COMMANDS.get(name)
        if handler is None:
            return [Show(f"Orden desconocida: {words[0][:40]!r}. Escribe 'help' para ver las órdenes.", "warn")]
        return handler(self, args)

    def _cmd_request(self, args: list[str]) -> list[Effect]:
        if len(args) != 1 or not is_cp_id(args[0]):
            return [Show("Uso: request <CP>   (p. ej. request ALC1)", "warn")]
        if self.batch is not None and not self.batch.done:
            return [Show("El modo fichero está en curso; espera a que termine.", "warn")]
        return self.request_supply(args[0])

    def _cmd_stop(self, args: list[str]) -> list[Effect]:
        if self.supply is None:
            if self.request is not None:
                return [Show(f"La solicitud en {self.request.cp_id} aún no tiene respuesta; no hay suministro "
                             "que parar.", "warn")]
            return [Show("No hay ningún suministro en curso.", "warn")]
        self.supply.stop_sent = True
        effects: list[Effect] = [Show(f"Solicitando la parada del suministro {self.supply.supply_id} en "
                                      f"{self.supply.cp_id}…"),
                                 Send(m.StopSupply(self.supply.supply_id, "DRIVER_STOP"))]
        if not self.link_up:
            effects.append(Show(f"{screens.UNAVAILABLE}: la parada se enviará en cuanto vuelva la conexión.", "error"))
        return effects

    def _cmd_status(self, args: list[str]) -> list[Effect]:
        age = None if self.last_status_at is None else self.clock.monotonic() - self.last_status_at
        effects: list[Effect] = [Show(screens.status_table(self.cps.values(), age), "block")]
        if self.reachable is False:
            effects.append(Show(f"{screens.UNAVAILABLE}: los datos pueden no estar al día.", "error"))
        effects += self._own_state()
        return effects

    def _own_state(self) -> list[Effect]:
        if self.supply is not None:
            phase = "cargando" if self.supply.charging else "autorizado, esperando a que se enchufe"
            return [Show(f"Tu suministro {self.supply.supply_id} en {self.supply.cp_id}: {phase}.")]
        if self.request is not None:
            return [Show(f"Tu solicitud en {self.request.cp_id} espera respuesta de la CENTRAL.")]
        return []

    def _cmd_tickets(self, args: list[str]) -> list[Effect]:
        return [Show(screens.tickets_text(self.tickets, self.tz), "block")]

    def _cmd_help(self, args: list[str]) -> list[Effect]:
        return [Show(screens.HELP, "block")]

    def _cmd_quit(self, args: list[str]) -> list[Effect]:
        effects: list[Effect] = []
        if self.supply is not None:
            effects.append(Show(f"El suministro en {self.supply.cp_id} continúa; su ticket se mostrará "
                                "cuando vuelvas con el mismo id.", "warn"))
        return effects + [Show("Hasta luego."), Quit()]

    # ---------------------------------------------------------------- requests
    def request_supply(self, cp_id: str, from_file: bool = False, prefix: str = "") -> list[Effect]:
        """Ask CENTRAL for a supply at a CP (held until the link is up, within the reply timeout)."""
        if self.request is not None:
            return [Show(f"Ya hay una solicitud en curso en {self.request.cp_id}; espera su respuesta.", "warn")]
        if self.supply is not None:
            return [Show(f"Ya tienes un suministro en curso en {self.supply.cp_id}; usa 'stop' para pararlo.", "warn")]
        self.request = PendingRequest(self.new_id(), cp_id, self.clock.monotonic() + self.reply_timeout_s,
                                      from_file=from_file)
        effects: list[Effect] = [Show(f"{prefix}Solicitando suministro en {cp_id}…")]
        if self.link_up:
            return effects + self._send_request()
        if self._starting_up():
            return effects + [Show("Conectando con la CENTRAL; la solicitud sale en cuanto haya canal.")]
        return effects + [Show(f"{screens.UNAVAILABLE}: la solicitud se enviará si vuelve la conexión en "
                               f"{self.reply_timeout_s:g} s.", "error")]

    def _starting_up(self) -> bool:
        """The link has never been up and the start-up grace period is not over."""
        return not self.link_was_up and self.clock.monotonic() - self.started_at < self.status_stale_s

    def _send_request(self) -> list[Effect]:
        assert self.request is not None
        self.request.sent = True
        return [Send(m.RequestSupply(self.request.cp_id, self.driver_id, self.request.request_id))]

    def _check_reply_timeout(self) -> list[Effect]:
        req = self.request
        if req is None or self.clock.monotonic() < req.deadline:
            return []
        self.request = None
        self._abandoned_requests[req.request_id] = req.cp_id
        why = (f"sin respuesta a la solicitud en {req.cp_id}" if req.sent
               else f"la solicitud en {req.cp_id} no se pudo enviar")
        effects: list[Effect] = [Show(f"{screens.UNAVAILABLE} ({why} en {self.reply_timeout_s:g} s).", "error")]
        reason = "NO_REPLY" if req.sent else "CENTRAL_UNAVAILABLE"
        return effects + self._item_ended(req.from_file, ServiceResult(req.cp_id, Outcome.FAILED, reason))

    # ---------------------------------------------------------------- messages from CENTRAL
    def handle(self, msg: m.Message) -> list[Effect]:
        """One message from CENTRAL -> effects (MESSAGE_HANDLERS is the table)."""
        handler = MESSAGE_HANDLERS.get(type(msg))
        if handler is None:
            logger.info("type %s not handled by the driver; ignored", msg.type_name())
            return []
        return handler(self, msg)

    def _on_status(self, msg: m.NetworkStatus) -> list[Effect]:
        self.last_status_at = self.clock.monotonic()
        entries = self._status_parts.add(msg)
        if entries is not None:
            views = (CpView.from_entry(entry) for entry in entries)
            self.cps = {cp.cp_id: cp for cp in views if cp is not None}
        return self._check_reachable()

    def _on_authorized(self, msg: m.SupplyAuthorized) -> list[Effect]:
        if msg.driver_id != self.driver_id:
            return []
        req = self.request
        if req is None or req.request_id != msg.request_id:
            if msg.request_id in self._abandoned_requests:  # we gave up on it: release the CP at once
                self._abandoned_requests.pop(msg.request_id)
                return [Show(f"Llegó tarde la autorización en {msg.cp_id} (suministro {msg.supply_id}); "
                             "se cancela porque la solicitud ya había expirado.", "warn"),
                        Send(m.StopSupply(msg.supply_id, "DRIVER_STOP"))]
            return []
        self.request = None
        self.supply = CurrentSupply(msg.supply_id, msg.cp_id, msg.price_eur_kwh, from_file=req.from_file)
        return [Show(screens.authorized_text(msg, self._seconds_until(msg.expires_at), self.tz), "ok")]

    def _seconds_until(self, iso: str) -> Optional[int]:
        when = screens.parse_time(iso)
        if when is None or when.tzinfo is None:
            return None
        return max(0, round((when - self.clock.now()).total_seconds()))

    def _on_denied(self, msg: m.SupplyDenied) -> list[Effect]:
        req = self.request
        if req is None or req.request_id != msg.request_id:
            self._abandoned_requests.pop(msg.request_id, None)
            return []
        self.request = None
        effects: list[Effect] = [Show(f"Suministro DENEGADO en {msg.cp_id}: {screens.deny_text(msg.reason, msg.message)}",
                                      "error")]
        return effects + self._item_ended(req.from_file, ServiceResult(msg.cp_id, Outcome.DENIED, msg.reason))

    def _adopt(self, supply_id: str, cp_id: str) -> Optional[CurrentSupply]:
        """The open supply a message is about; adopts an unknown one when idle (e.g. after a restart)."""
        if self.supply is not None:
            return self.supply if self.supply.supply_id == supply_id else None
        if self.request is not None:
            return None
        self.supply = CurrentSupply(supply_id, cp_id, charging=True)
        return self.supply

    def _on_started(self, msg: m.SupplyStarted) -> list[Effect]:
        adopted = self.supply is None
        supply = self._adopt(msg.supply_id, msg.cp_id)
        if supply is None:
            return []
        supply.charging = True
        supply.started_at = supply.started_at or msg.started_at
        note = " (suministro que ya estaba en curso)" if adopted else ""
        return [Show(f"Carga INICIADA en {msg.cp_id} a las {screens.fmt_time(msg.started_at, self.tz, False)}"
                     f"{note} (suministro {msg.supply_id}).", "ok")]

    def _on_telemetry(self, msg: m.Telemetry) -> list[Effect]:
        adopted = self.supply is None
        supply = self._adopt(msg.supply_id, msg.cp_id)
        if supply is None:
            return []
        supply.charging, supply.last = True, msg
        effects: list[Effect] = []
        if adopted:
            effects.append(Show(f"Tienes un suministro en curso en {msg.cp_id} (suministro {msg.supply_id}).", "ok"))
        return effects + [Show(screens.telemetry_line(msg), "live")]

    def _on_ticket(self, msg: m.TicketIssued) -> list[Effect]:
        if msg.driver_id != self.driver_id:
            logger.warning("ticket %s for driver %s ignored (we are %s)", msg.ticket_id, msg.driver_id, self.driver_id)
            return []
        effects: list[Effect] = [Send(m.AckTicket(msg.ticket_id))]
        if msg.ticket_id in self._seen_tickets:
            return effects
        self._remember_ticket(msg)
        ours = self.supply is not None and self.supply.supply_id == msg.supply_id
        title = "TICKET" if ours else "TICKET (suministro anterior)"
        effects.insert(0, Show(screens.ticket_block(msg, self.tz, title), "block"))
        if not ours:
            return effects
        from_file, self.supply = self.supply.from_file, None
        outcome = Outcome.OK if msg.reason in NORMAL_ENDS else Outcome.FAILED
        result = ServiceResult(msg.cp_id, outcome, msg.reason, decimal_or_zero(msg.energy_kwh),
                               decimal_or_zero(msg.amount_eur, domain.money))
        return effects + self._item_ended(from_file, result)

    def _remember_ticket(self, msg: m.TicketIssued) -> None:
        self._seen_tickets[msg.ticket_id] = None
        if len(self._seen_tickets) > MAX_SEEN_TICKETS:
            del self._seen_tickets[next(iter(self._seen_tickets))]
        self.tickets.append(msg)

    def _on_notice(self, msg: m.Notice) -> list[Effect]:
        level = {"warning": "warn", "warn": "warn", "error": "error"}.get(msg.level, "info")
        return [Show(f"[AVISO de la CENTRAL] {msg.text}", level)]

    def _on_error(self, msg: m.Error) -> list[Effect]:
        return [Show(f"[ERROR de la CENTRAL] {msg.code}: {msg.message}", "error")]

    # ---------------------------------------------------------------- link and clock
    def link_changed(self, up: bool) -> list[Effect]:
        """The zone channel to CENTRAL came up or went down."""
        self.link_up = up
        effects: list[Effect] = []
        if up:
            self.link_was_up = True
            if self.request is not None and not self.request.sent:
                effects += self._send_request()
        return effects + self._check_reachable()

    def tick(self) -> list[Effect]:
        """Time passes: timeouts, reachability, and the next file-mode request."""
        return self._check_reachable() + self._check_reply_timeout() + self._advance_batch()

    def _unreachable_reason(self) -> Optional[str]:
        now = self.clock.monotonic()
        in_grace = now - self.started_at < self.status_stale_s
        if not self.link_up and not self._starting_up():
            return "sin canal con la CENTRAL"
        last = self.last_status_at if self.last_status_at is not None else self.started_at
        if now - last >= self.status_stale_s:
            return f"sin estado de la red desde hace {now - last:.0f} s"
        if self.link_up and self.last_status_at is not None:
            return None
        return "" if in_grace else "conectando"

    def _check_reachable(self) -> list[Effect]:
        reason = self._unreachable_reason()
        if reason == "":  # still starting up: nothing to say yet
            return []
        reachable = reason is None
        if reachable == self.reachable:
            return []
        first = self.reachable is None
        self.reachable = reachable
        if not reachable:
            return [Show(f"{screens.UNAVAILABLE} ({reason}).", "error")]
        return [Show("Conectado con la CENTRAL." if first else "Conexión con la CENTRAL restablecida.", "ok")]

    # ---------------------------------------------------------------- file mode
    def start_batch(self, cp_ids: list[str]) -> list[Effect]:
        """Start file mode with these CP ids (requests go out from tick())."""
        if self.batch is not None and not self.batch.done:
            return [Show("Ya hay un fichero en curso.", "warn")]
        self.batch = Batch(list(cp_ids))
        return [Show(f"Modo fichero: {len(cp_ids)} servicios; {self.wait_s:g} s de espera entre uno y otro.")]

    def _advance_batch(self) -> list[Effect]:
        batch = self.batch
        if batch is None or batch.done or batch.resume_at is None:
            return []
        if self.clock.monotonic() < batch.resume_at or self.request is not None or self.supply is not None:
            return []
        if not self.link_up and self._starting_up():  # first request waits for the channel (bounded by the grace)
            return []
        batch.resume_at = None
        cp_id = batch.items[len(batch.results)]
        return self.request_supply(cp_id, from_file=True, prefix=f"{batch.progress(1)} ")

    def _item_ended(self, from_file: bool, result: ServiceResult) -> list[Effect]:
        batch = self.batch
        if not from_file or batch is None or batch.done:
            return []
        batch.results.append(result)
        line = screens.result_line(len(batch.results), len(batch.items), result)
        if not batch.done:
            batch.resume_at = self.clock.monotonic() + self.wait_s
            return [Show(f"{line}  · siguiente en {self.wait_s:g} s")]
        summary = screens.summary_block(batch.results, len(batch.items))
        return [Show(line), Show(summary, "block"), BatchDone(tuple(batch.results))]

    # ---------------------------------------------------------------- for other screens (web app later)
    def snapshot(self) -> dict:
        """A plain view of the session for other front-ends (the driver web app, SPEC §11)."""
        return {
            "driver_id": self.driver_id,
            "reachable": bool(self.reachable),
            "cps": [cp for _, cp in sorted(self.cps.items())],
            "request": self.request,
            "supply": self.supply,
            "last_ticket": self.tickets[-1] if self.tickets else None,
            "batch": self.batch,
        }


COMMANDS: dict[str, Callable[[DriverSession, list[str]], list[Effect]]] = {
    "request": DriverSession._cmd_request,
    "stop": DriverSession._cmd_stop,
    "status": DriverSession._cmd_status,
    "list": DriverSession._cmd_status,
    "tickets": DriverSession._cmd_tickets,
    "help": DriverSession._cmd_help,
    "quit": DriverSession._cmd_quit,
}

MESSAGE_HANDLERS: dict[type, Callable[[DriverSession, m.Message], list[Effect]]] = {
    m.NetworkStatus: DriverSession._on_status,
    m.SupplyAuthorized: DriverSession._on_authorized,
    m.SupplyDenied: DriverSession._on_denied,
    m.SupplyStarted: DriverSession._on_started,
    m.Telemetry: DriverSession._on_telemetry,
    m.TicketIssued: DriverSession._on_ticket,
    m.Notice: DriverSession._on_notice,
    m.Error: DriverSession._on_error,
}
