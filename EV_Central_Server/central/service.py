"""CENTRAL's service layer: CPs, supplies and tickets, driven by the Monitor, Kafka, API and console edges.

Every edge calls one of the public methods below; each takes the service lock,
changes the in-memory view, persists through the repository and tells the
parties through the outlet. State rules come from ``common.domain`` only.

Persist before telling: a ticket is stored (one per supply, enforced by the
database) before it is sent, and re-sent until the driver acknowledges it.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Optional, Protocol

from common import domain as d
from common import messages as m
from common import passwords

logger = logging.getLogger(__name__)
COMPONENT = "EV_Central"
ANON_PREFIX = d.ANON_PREFIX
STALE_REQUEST_S = 30.0
REPORTS_GRACE_S = 30.0  # how long engines get to deliver buffered reports (after a restart, after a Hello)


class Outlet(Protocol):
    """Where the service sends things: Kafka clients, status topic, live screens."""

    def to_client(self, kind: str, client_id: str, message: m.Message) -> None: ...
    def to_client_reliable(self, kind: str, client_id: str, message: m.Message) -> None: ...
    def publish_status(self, cps: list[dict]) -> None: ...
    def forget_supply(self, supply_id: str) -> None: ...


class Denied(Exception):
    """A request refused for a reason in messages.DENY_REASONS."""

    def __init__(self, code: str, text: Optional[str] = None):
        super().__init__(text or m.DENY_REASONS.get(code, code))
        self.code = code


class AuthDenied(Exception):
    """A Monitor authentication refused (reason code + readable text)."""

    def __init__(self, code: str, text: str):
        super().__init__(text)
        self.code = code


def recipient_of(driver_id: str, cp_id: str) -> tuple[str, str]:
    """(kind, client id) a supply's messages and ticket go to: its driver, or the CP's engine when anonymous."""
    return ("engine", cp_id) if driver_id.startswith(ANON_PREFIX) else ("driver", driver_id)


@dataclass
class SupplyView:
    """A supply CENTRAL is tracking (not finished yet)."""

    supply_id: str
    request_id: str
    cp_id: str
    driver_id: str
    phase: d.Phase
    price_eur_kwh: Decimal
    power_kw: Decimal
    authorized_at: datetime
    expires_at: datetime
    started_at: Optional[datetime] = None
    energy_kwh: Decimal = Decimal("0")
    amount_eur: Decimal = Decimal("0")
    live_power_kw: Decimal = Decimal("0")

    @property
    def recipient(self) -> tuple[str, str]:
        """(kind, client id) that receives this supply's messages and ticket."""
        return recipient_of(self.driver_id, self.cp_id)


@dataclass
class CpView:
    """CENTRAL's runtime view of one CP."""

    cp_id: str
    address: str
    city: str
    country: str
    price_eur_kwh: Decimal
    power_kw: Decimal
    zone: str
    out_of_service: set[str] = field(default_factory=set)
    engine_ok: bool = True
    link_up: bool = False
    last_status: float = 0.0
    link_token: Optional[object] = None
    supply: Optional[SupplyView] = None
    pending_reasons: set[str] = field(default_factory=set)  # applied once the running supply ends

    @property
    def state(self) -> d.CpState:
        """Derived state (SPEC §3)."""
        return d.derive_cp_state(self.link_up, self.engine_ok, self.out_of_service, self.supply is not None
                                 and self.supply.phase is d.Phase.CHARGING)


def _cp_from_row(row: dict) -> CpView:
    return CpView(row["cp_id"], row["address"], row["city"], row["country"], Decimal(row["price_eur_kwh"]),
                  Decimal(row["power_kw"]), row["zone"], set(row["out_of_service"] or ()), bool(row["engine_ok"]))


def place_key(city: str, country: str) -> tuple[str, str]:
    """A location as the weather office matches it: city case- and space-insensitive, country code upper-case."""
    return " ".join(city.split()).casefold(), (country or "").strip().upper()


def _parse_ts(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise m.InvalidPayload(f"bad timestamp {text[:40]!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat(timespec="seconds") if value else None


def _jsonable(row: dict) -> dict:
    """A DB row with timestamps and decimals as text."""
    return {k: (v.isoformat(timespec="seconds") if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v)
            for k, v in row.items()}


def ticket_message(row: dict) -> m.TicketIssued:
    """A stored ticket row as the message sent to its driver."""
    return m.TicketIssued(row["ticket_id"], row["supply_id"], row["cp_id"], row["driver_id"], _iso(row["started_at"]),
                          _iso(row["ended_at"]), int(row["duration_s"]), str(d.energy(row["energy_kwh"])),
                          d.plain(row["price_eur_kwh"]), str(d.money(row["amount_eur"])), row["reason"])


class CentralService:
    """The network as CENTRAL sees it. Thread-safe: every public method holds the lock."""

    def __init__(self, repo, outlet: Outlet, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 auth_timeout_s: float = 60.0, silent_link_s: float = 3.0, on_change: Callable[[], None] = lambda: None,
                 journal=None):
        self.repo, self.outlet, self.clock = repo, outlet, clock
        self.journal = journal or repo  # where audit records and app messages go (a BackgroundJournal in production)
        self.auth_timeout_s, self.silent_link_s = auth_timeout_s, silent_link_s
        self.on_change = on_change
        self.cps: dict[str, CpView] = {}
        self.supplies: dict[str, SupplyView] = {}
        self.unacked: dict[str, m.TicketIssued] = {}
        self._answers: dict[str, m.Message] = {}
        self._known_drivers: set[str] = set()
        self.temperatures: dict[tuple[str, str], float] = {}  # place_key -> latest °C (weather office)
        self._lock = threading.RLock()
        self.version = 0
        self._version_cond = threading.Condition()
        self._reports_grace_until = 0.0
        self._loaded: set[str] = set()  # supplies open when CENTRAL started (their engines may have news)
        self._orphans: dict[str, float] = {}  # supply id -> when to close it if its engine still does not know it

    # ------------------------------------------------------------ start-up
    def load(self) -> None:
        """Load CPs (all DESCONECTADO), open supplies and unacknowledged tickets from the DB."""
        with self._lock:
            self.cps = {row["cp_id"]: _cp_from_row(row) for row in self.repo.load_cps()}
            for row in self.repo.open_supplies():
                cp = self.cps.get(row["cp_id"])
                supply = SupplyView(row["supply_id"], row["request_id"] or "", row["cp_id"], row["driver_id"],
                                    d.Phase(row["phase"]), Decimal(row["price_eur_kwh"]), Decimal(row["power_kw"]),
                                    row["authorized_at"], row["expires_at"], row["started_at"],
                                    Decimal(row["energy_kwh"]), Decimal(row["amount_eur"]))
                self.supplies[supply.supply_id] = supply
                if cp:
                    cp.supply = supply
            self.unacked = {row["ticket_id"]: ticket_message(row) for row in self.repo.unacked_tickets()}
            self._reports_grace_until = time.monotonic() + REPORTS_GRACE_S
            self._loaded = set(self.supplies)
        logger.info("loaded %d CPs, %d open supplies, %d unacknowledged tickets",
                    len(self.cps), len(self.supplies), len(self.unacked))
        self._changed()

    def _registered(self, cp_id: str) -> Optional[CpView]:
        """A CP by id, looking in the DB for one registered since CENTRAL started."""
        cp = self.cps.get(cp_id)
        if cp is None:
            row = self.repo.get_cp(cp_id)
            if row is not None:
                cp = self.cps[cp_id] = _cp_from_row(row)
                self._changed()
        return cp

    def sync_registered(self) -> None:
        """Pick up CPs registered or removed by the Registry/admin while CENTRAL runs."""
        rows = {row["cp_id"]: row for row in self.repo.load_cps()}
        with self._lock:
            added = [cp_id for cp_id in rows if cp_id not in self.cps]
            for cp_id in added:
                self.cps[cp_id] = _cp_from_row(rows[cp_id])
            removed = [cp_id for cp_id, cp in self.cps.items()
                       if cp_id not in rows and not cp.link_up and cp.supply is None]
            for cp_id in removed:
                del self.cps[cp_id]
            if added or removed:
                self._changed()

    # ------------------------------------------------------------ monitors (sockets)
    def authenticate(self, cp_id: str, secret: str, token: object, verify_secret=None) -> CpView:
        """A Monitor authenticates its CP; raises AuthDenied. Only registered CPs are accepted."""
        with self._lock:
            cp = self._registered(cp_id)
            if cp is None:
                self._audit("AUTH", "cp_auth", cp_id, False, "unknown CP")
                raise AuthDenied("CP_NOT_FOUND", f"CP {cp_id} is not registered")
            if verify_secret is not None and not verify_secret(cp_id, secret):
                self._audit("AUTH", "cp_auth", cp_id, False, "bad credentials")
                raise AuthDenied("BAD_CREDENTIALS", "unknown CP or wrong secret")
            if cp.link_up and cp.link_token is not token and time.monotonic() - cp.last_status < self.silent_link_s:
                self._audit("SECURITY", "cp_auth", cp_id, False, "second Monitor while the first one reports")
                raise AuthDenied("ALREADY_CONNECTED", f"CP {cp_id} already has a Monitor reporting")
            cp.link_token, cp.link_up, cp.last_status = token, True, time.monotonic()
            self._audit("AUTH", "cp_auth", cp_id, True, "monitor authenticated")
            self._changed()
            return cp

    def monitor_status(self, cp_id: str, engine_ok: bool, token: object) -> None:
        """A Monitor's one-second status: liveness plus engine health."""
        with self._lock:
            cp = self.cps.get(cp_id)
            if cp is None or (cp.link_token is not token and cp.link_up):
                return
            cp.link_token = token  # a Monitor that authenticated earlier takes over a link that went down
            cp.last_status = time.monotonic()
            relinked, engine_changed = not cp.link_up, engine_ok != cp.engine_ok
            cp.link_up = True
            if engine_changed:
                cp.engine_ok = engine_ok
                self._on_engine_change(cp)
                self._save_flags(cp)
            if relinked or engine_changed:
                self._changed()

    def monitor_lost(self, cp_id: str, token: object, why: str) -> None:
        """The Monitor's socket closed (EOF) or went silent."""
        with self._lock:
            cp = self.cps.get(cp_id)
            if cp is None or cp.link_token is not token or not cp.link_up:
                return
            cp.link_up = False
            self._incident(cp, f"CP {cp_id} desconectado ({why})")
            self._changed()

    def check_links(self) -> None:
        """Mark silent Monitors DESCONECTADO (SPEC §5: within 3 s)."""
        now = time.monotonic()
        with self._lock:
            for cp in self.cps.values():
                if cp.link_up and now - cp.last_status > self.silent_link_s:
                    self.monitor_lost(cp.cp_id, cp.link_token, "silent link")

    def _on_engine_change(self, cp: CpView) -> None:
        if cp.engine_ok:
            self._note("info", f"CP {cp.cp_id} recuperado")
            return
        self._incident(cp, f"CP {cp.cp_id} averiado")
        supply = cp.supply
        if supply is None:
            return
        if supply.phase is d.Phase.AUTHORIZED:
            self._cancel(supply, "ENGINE_FAULT")
        else:
            self._end(supply, "ENGINE_FAULT")

    # ------------------------------------------------------------ requests (Kafka)
    def request_supply(self, sender_kind: str, sender: str, req: m.RequestSupply, sent_at: Optional[str]) -> Optional[m.Message]:
        """Authorize or deny a supply request; answers the requester (idempotent by request_id)."""
        with self._lock:
            if req.request_id in self._answers:
                answer = self._answers[req.request_id]
            else:
                if sent_at and (self.clock() - _parse_ts(sent_at)).total_seconds() > STALE_REQUEST_S:
                    logger.info("dropped stale request %s from %s", req.request_id, sender)
                    return None
                answer = self._decide(sender_kind, sender, req)
                self._answers[req.request_id] = answer
                if len(self._answers) > 10_000:
                    self._answers.pop(next(iter(self._answers)))
            self.outlet.to_client(sender_kind, sender, answer)
            return answer

    def _decide(self, sender_kind: str, sender: str, req: m.RequestSupply) -> m.Message:
        try:
            self._check_requester(sender_kind, sender, req)
            cp = self._registered(req.cp_id)
            if cp is None:
                raise Denied("CP_NOT_FOUND")
            reason = d.deny_reason(cp.state, cp.out_of_service, cp.supply is not None)
            if reason:
                raise Denied(reason)
            if any(s.driver_id == req.driver_id for s in self.supplies.values()):
                raise Denied("DRIVER_BUSY")
        except Denied as exc:
            self._audit("CHARGE", "supply_denied", req.driver_id, False, f"{req.cp_id}: {exc.code}")
            return m.SupplyDenied(req.request_id, req.cp_id, exc.code, str(exc))
        return self._authorize(cp, req)

    def _check_requester(self, sender_kind: str, sender: str, req: m.RequestSupply) -> None:
        if sender_kind == "engine":
            if req.driver_id != f"{ANON_PREFIX}{sender}" or req.cp_id != sender:
                raise Denied("UNKNOWN_DRIVER", "a CP may only request anonymous supplies for itself")
            return
        if req.driver_id != sender or req.driver_id.startswith(ANON_PREFIX):
            raise Denied("UNKNOWN_DRIVER")
        if req.driver_id not in self._known_drivers:
            if not self.repo.driver_exists(req.driver_id):
                raise Denied("UNKNOWN_DRIVER")
            self._known_drivers.add(req.driver_id)

    def _authorize(self, cp: CpView, req: m.RequestSupply) -> m.SupplyAuthorized:
        now = self.clock()
        supply = SupplyView(m.new_id(), req.request_id, cp.cp_id, req.driver_id, d.Phase.AUTHORIZED,
                            cp.price_eur_kwh, cp.power_kw, now, now + timedelta(seconds=self.auth_timeout_s))
        self.repo.insert_supply({"supply_id": supply.supply_id, "request_id": req.request_id, "cp_id": cp.cp_id,
                                 "driver_id": req.driver_id, "price_eur_kwh": cp.price_eur_kwh,
                                 "authorized_at": now, "expires_at": supply.expires_at, "power_kw": cp.power_kw})
        self.supplies[supply.supply_id] = supply
        cp.supply = supply
        expires = _iso(supply.expires_at)
        self.outlet.to_client_reliable("engine", cp.cp_id, m.AuthorizeSupply(
            supply.supply_id, cp.cp_id, req.driver_id, d.plain(cp.price_eur_kwh), expires))
        self._audit("CHARGE", "supply_authorized", req.driver_id, True, f"{cp.cp_id} supply {supply.supply_id}")
        self._changed()
        return m.SupplyAuthorized(req.request_id, supply.supply_id, cp.cp_id, req.driver_id,
                                  d.plain(cp.price_eur_kwh), expires)

    # ------------------------------------------------------------ engine reports (Kafka)
    def _reported(self, msg: m.Message, supply_id: str, cp_id: str) -> Optional[SupplyView]:
        """The open supply an engine reports on, or None; a report from another CP is dropped and audited."""
        supply = self.supplies.get(supply_id)
        if supply is not None and supply.cp_id != cp_id:
            logger.warning("dropped %s for supply %s of %s sent as %s", msg.type_name(), supply_id, supply.cp_id, cp_id)
            self._audit("SECURITY", "foreign_report", cp_id, False,
                        f"{msg.type_name()} for supply {supply_id} of {supply.cp_id}")
            raise m.InvalidPayload(f"supply {supply_id} is not at {cp_id}")
        return supply

    def supply_started(self, msg: m.SupplyStarted) -> None:
        """The vehicle was plugged in: AUTHORIZED -> CHARGING."""
        with self._lock:
            supply = self._reported(msg, msg.supply_id, msg.cp_id)
            if supply is None or supply.phase is not d.Phase.AUTHORIZED:
                if supply is None and self.repo.ticket_for(msg.supply_id) is None:
                    logger.warning("SupplyStarted for unknown supply %s", msg.supply_id)
                return
            supply.phase = d.next_phase(supply.phase, d.SupplyEvent.PLUG)
            supply.started_at = _parse_ts(msg.started_at) or self.clock()
            self.repo.mark_started(supply.supply_id, supply.started_at)
            kind, client = supply.recipient
            self.outlet.to_client(kind, client, msg)
            self._audit("CHARGE", "supply_started", supply.driver_id, True, f"{supply.cp_id} supply {supply.supply_id}")
            self._changed()

    def telemetry(self, msg: m.Telemetry) -> None:
        """Live figures of a running supply (kept in memory, persisted in batches)."""
        with self._lock:
            supply = self._reported(msg, msg.supply_id, msg.cp_id)
            if supply is None or supply.phase is not d.Phase.CHARGING:
                return
            try:
                energy = d.reported_energy(msg.energy_kwh)
                d.reported_energy(msg.power_kw)  # same bounds for the power figure
            except ValueError as exc:
                raise m.InvalidPayload(f"telemetry: {exc}") from None
            supply.energy_kwh, supply.live_power_kw = max(supply.energy_kwh, energy), Decimal(msg.power_kw)
            supply.amount_eur = d.amount_for(supply.energy_kwh, supply.price_eur_kwh)
            kind, client = supply.recipient
            self.outlet.to_client(kind, client, msg)
            self._changed()

    def supply_finished(self, msg: m.SupplyFinished) -> None:
        """The engine's final record: close the supply and issue its one ticket (idempotent)."""
        with self._lock:
            supply = self._reported(msg, msg.supply_id, msg.cp_id)
            if supply is None:
                row = self.repo.ticket_for(msg.supply_id)
                if row is not None and row["cp_id"] == msg.cp_id:
                    self._send_ticket(ticket_message(row))
                elif row is None:
                    logger.warning("final record for unknown supply %s dropped", msg.supply_id)
                return
            try:
                energy = max(d.reported_energy(msg.energy_kwh), supply.energy_kwh)
            except ValueError as exc:  # close with the figures CENTRAL saw, so the supply never hangs open
                self.security_event("bad_final_record", msg.cp_id, f"supply {msg.supply_id}: {exc}")
                energy = supply.energy_kwh
            reason = msg.reason if msg.reason in m.END_REASONS else "UNPLUGGED"  # never block the ticket on it
            started = _parse_ts(msg.started_at) or supply.started_at
            ended = _parse_ts(msg.ended_at) or self.clock()
            self._finish(supply, max(ended, started) if started else ended, started, energy, reason)

    def _finish(self, supply: SupplyView, ended_at: datetime, started_at: Optional[datetime],
                energy: Decimal, reason: str) -> None:
        finished = d.next_phase(supply.phase, d.SupplyEvent.FINISH if supply.phase is d.Phase.CHARGING
                                else d.SupplyEvent.CANCEL)
        amount = d.amount_for(energy, supply.price_eur_kwh)
        duration = int((ended_at - started_at).total_seconds()) if started_at else 0
        row = self.repo.finish_supply(supply.supply_id, ended_at, started_at, energy, amount, reason, {
            "ticket_id": m.new_id(), "supply_id": supply.supply_id, "cp_id": supply.cp_id,
            "driver_id": supply.driver_id, "started_at": started_at, "ended_at": ended_at,
            "duration_s": max(duration, 0), "energy_kwh": energy, "price_eur_kwh": supply.price_eur_kwh,
            "amount_eur": amount, "reason": reason})
        supply.phase = finished  # only once the ticket is stored: a failed write leaves the supply open
        self.supplies.pop(supply.supply_id, None)
        self.outlet.forget_supply(supply.supply_id)
        cp = self.cps.get(supply.cp_id)
        if cp is not None and cp.supply is supply:
            cp.supply = None
            if cp.pending_reasons:
                cp.out_of_service |= cp.pending_reasons
                cp.pending_reasons.clear()
                self.repo.save_cp_flags(cp.cp_id, list(cp.out_of_service), cp.engine_ok)
                self._tell_engine(cp)
        self._audit("CHARGE", "supply_finished", supply.driver_id, True,
                    f"{supply.cp_id} supply {supply.supply_id}: {energy} kWh, {amount} EUR, {reason}")
        self._send_ticket(ticket_message(row))
        self._changed()

    def _send_ticket(self, ticket: m.TicketIssued) -> None:
        self.unacked[ticket.ticket_id] = ticket
        self.outlet.to_client(*recipient_of(ticket.driver_id, ticket.cp_id), ticket)

    def ack_ticket(self, sender: str, msg: m.AckTicket) -> None:
        """The ticket's recipient saw it: stop re-sending (anyone else's ack is ignored)."""
        with self._lock:
            ticket = self.unacked.get(msg.ticket_id)
            if ticket is None or sender != recipient_of(ticket.driver_id, ticket.cp_id)[1]:
                return
            self.repo.ack_ticket(msg.ticket_id)
            del self.unacked[msg.ticket_id]

    def resend_tickets(self, client_id: Optional[str] = None) -> None:
        """Re-send unacknowledged tickets (all, or one client's)."""
        with self._lock:
            for ticket in list(self.unacked.values()):
                if client_id is None or client_id == recipient_of(ticket.driver_id, ticket.cp_id)[1]:
                    self._send_ticket(ticket)

    def driver_stop(self, sender: str, msg: m.StopSupply) -> None:
        """A driver stops its own supply."""
        with self._lock:
            supply = self.supplies.get(msg.supply_id)
            if supply is None or supply.driver_id != sender:
                self.outlet.to_client("driver", sender, m.Error("NO_SUPPLY", "no such supply of yours", None))
                return
            self._end(supply, "DRIVER_STOP")

    def hello(self, kind: str, client_id: str, msg: m.Hello) -> None:
        """A client finished its handshake: re-send what it may have missed."""
        with self._lock:
            self.resend_tickets(client_id)
            if kind == "engine":
                cp = self.cps.get(client_id)
                if cp is not None:
                    self._tell_engine(cp)
                supply = cp.supply if cp else None
                if supply and supply.phase is d.Phase.AUTHORIZED and msg.supply_id != supply.supply_id:
                    self.outlet.to_client_reliable("engine", client_id, m.AuthorizeSupply(
                        supply.supply_id, supply.cp_id, supply.driver_id, d.plain(supply.price_eur_kwh),
                        _iso(supply.expires_at)))
                elif supply and supply.phase is d.Phase.CHARGING and msg.supply_id != supply.supply_id:
                    # its final record may still be on its way; if not, close with what we know
                    self._orphans.setdefault(supply.supply_id, time.monotonic() + REPORTS_GRACE_S)
                elif supply:
                    self._orphans.pop(supply.supply_id, None)

    # ------------------------------------------------------------ driver accounts (Kafka)
    def register_driver(self, sender: str, msg: m.RegisterDriver) -> m.AccountResult:
        """Create a driver account; the password is stored only as a slow salted hash."""
        if not d.DRIVER_ID_PATTERN.match(msg.driver_id):
            return m.AccountResult(msg.driver_id, False, "BAD_DRIVER_ID", "Identificador no válido (letras, números, . _ - @)")
        if msg.driver_id in self.cps or msg.driver_id.startswith(ANON_PREFIX):
            return m.AccountResult(msg.driver_id, False, "DRIVER_EXISTS", "Ese identificador no está disponible")
        if len(msg.password) < passwords.MIN_PASSWORD_LENGTH:
            return m.AccountResult(msg.driver_id, False, "WEAK_PASSWORD",
                                   f"La contraseña necesita al menos {passwords.MIN_PASSWORD_LENGTH} caracteres")
        created = self.repo.add_driver(msg.driver_id, passwords.hash_secret(msg.password))
        self._audit("AUTH", "driver_register", msg.driver_id, created, "registered" if created else "id taken")
        if not created:
            return m.AccountResult(msg.driver_id, False, "DRIVER_EXISTS", "Ese conductor ya existe")
        with self._lock:
            self._known_drivers.add(msg.driver_id)
        return m.AccountResult(msg.driver_id, True, "OK", "Cuenta creada")

    def login_driver(self, sender: str, msg: m.LoginDriver) -> m.AccountResult:
        """Check a driver's password (the same answer for an unknown id and a wrong password)."""
        ok = passwords.verify_secret(msg.password, self.repo.driver_password_hash(msg.driver_id))
        self._audit("AUTH", "driver_login", msg.driver_id, ok, "login" if ok else "bad credentials")
        if not ok:
            return m.AccountResult(msg.driver_id, False, "BAD_CREDENTIALS", "Conductor o contraseña incorrectos")
        return m.AccountResult(msg.driver_id, True, "OK", "Sesión iniciada")

    def history(self, driver_id: str, limit: int = 50) -> m.SupplyHistory:
        """A driver's supplies (newest first) and its last ticket."""
        rows = self.repo.list_supplies(None, None, driver_id, limit)
        last = self.repo.last_ticket(driver_id)
        return m.SupplyHistory(driver_id, [_jsonable(r) for r in rows],
                               dataclasses.asdict(ticket_message(last)) if last else None)

    # ------------------------------------------------------------ registration by the operator
    def add_cp(self, record: dict, actor: str = "operator") -> dict:
        """Register (or update) a CP; it shows DESCONECTADO until its Monitor authenticates."""
        self.repo.upsert_cp(record)
        with self._lock:
            row = self.repo.get_cp(record["cp_id"])
            cp = self.cps.get(record["cp_id"])
            fresh = _cp_from_row(row)
            if cp is None:
                self.cps[fresh.cp_id] = fresh
            else:
                cp.address, cp.city, cp.country = fresh.address, fresh.city, fresh.country
                cp.price_eur_kwh, cp.power_kw, cp.zone = fresh.price_eur_kwh, fresh.power_kw, fresh.zone
            self._audit("SYSTEM", "cp_register", actor, True, record["cp_id"])
            self._changed()
            return self.cp_view(self.cps[record["cp_id"]])

    def remove_cp(self, cp_id: str, actor: str = "operator") -> None:
        """Deregister a CP; refused (ValueError) while it has a supply."""
        with self._lock:
            cp = self.cps.get(cp_id)
            if cp is not None and cp.supply is not None:
                raise ValueError(f"CP {cp_id} has a supply in progress; stop it first")
            if not self.repo.delete_cp(cp_id) and cp is None:
                raise KeyError(cp_id)
            self.cps.pop(cp_id, None)
            self._audit("SYSTEM", "cp_deregister", actor, True, cp_id)
            self._note("info", f"CP {cp_id} dado de baja")
            self._changed()

    # ------------------------------------------------------------ timers
    def expire_authorizations(self) -> None:
        """Authorizations not plugged in time expire and free the CP (ticket AUTH_EXPIRED); a supply its
        engine no longer knows is closed with the last figures once the engine had time to report it."""
        now, mono = self.clock(), time.monotonic()
        with self._lock:
            waiting = mono < self._reports_grace_until  # after a restart, engines first deliver what they buffered
            for supply in list(self.supplies.values()):
                if waiting and supply.supply_id in self._loaded:
                    continue
                if supply.phase is d.Phase.AUTHORIZED and supply.expires_at <= now:
                    self._cancel(supply, "AUTH_EXPIRED")
            for supply_id, deadline in list(self._orphans.items()):
                supply = self.supplies.get(supply_id)
                if supply is None:
                    del self._orphans[supply_id]
                elif mono >= deadline:
                    del self._orphans[supply_id]
                    self._note("error", f"Suministro {supply_id} en {supply.cp_id} cerrado con las últimas cifras: "
                                        "el punto de carga ya no lo conoce")
                    self._finish(supply, now, supply.started_at, supply.energy_kwh, "ENGINE_LOST")

    def live_figures(self) -> list[tuple[Decimal, Decimal, str]]:
        """(energy, amount, supply_id) of every charging supply, for batch persistence."""
        with self._lock:
            return [(s.energy_kwh, s.amount_eur, s.supply_id) for s in self.supplies.values()
                    if s.phase is d.Phase.CHARGING]

    # ------------------------------------------------------------ operator commands
    def stop_cp(self, cp_id: str, actor: str = "operator") -> None:
        """Operator stop: ends any supply (STOPPED_BY_OPERATOR) and puts the CP PARADO."""
        self.set_reason(cp_id, d.OutOfService.OPERATOR.value, True, actor, end_reason="STOPPED_BY_OPERATOR")

    def resume_cp(self, cp_id: str, actor: str = "operator") -> None:
        """Operator resume: clears only the operator reason."""
        self.set_reason(cp_id, d.OutOfService.OPERATOR.value, False, actor)

    def engine_ids(self):
        """CP ids, which are also their engines' Kafka client ids (a live view: no copy per message)."""
        return self.cps.keys()

    def cp_ids(self) -> list[str]:
        """Every known CP id."""
        with self._lock:
            return sorted(self.cps)

    def set_reason(self, cp_id: str, reason: str, on: bool, actor: str, end_reason: Optional[str] = None,
                   after_supply: bool = False) -> None:
        """Set or clear one out-of-service reason; the others are untouched (SPEC §3).

        With end_reason a running supply is ended at once; with after_supply it finishes first and the
        reason applies when it ends (weather alerts, SPEC §10).
        """
        with self._lock:
            cp = self.cps.get(cp_id)
            if cp is None:
                raise KeyError(cp_id)
            before = set(cp.out_of_service)
            if on and after_supply and cp.supply is not None and reason not in cp.out_of_service:
                cp.pending_reasons.add(reason)
            elif on:
                cp.out_of_service.add(reason)
            else:
                cp.out_of_service.discard(reason)
                cp.pending_reasons.discard(reason)
            if cp.out_of_service != before:
                self.repo.save_cp_flags(cp_id, list(cp.out_of_service), cp.engine_ok)
                self._tell_engine(cp)
            if on and cp.supply is not None and end_reason:
                self._end(cp.supply, end_reason)
            self._audit("SYSTEM", "stop" if on else "resume", actor, True, f"{cp_id} {reason}")
            self._note("info", f"CP {cp_id} {'parado' if on else 'reanudado'} ({reason})")
            self._changed()

    def _end(self, supply: SupplyView, reason: str) -> None:
        if supply.phase is d.Phase.AUTHORIZED:
            self._cancel(supply, reason)
        else:
            self.outlet.to_client_reliable("engine", supply.cp_id, m.StopSupply(supply.supply_id, reason))

    def _cancel(self, supply: SupplyView, reason: str) -> None:
        self._finish(supply, self.clock(), None, Decimal("0"), reason)  # stored first, then the engine is told
        self.outlet.to_client_reliable("engine", supply.cp_id, m.CancelAuthorization(supply.supply_id, reason))

    # ------------------------------------------------------------ weather (SPEC §10; rules in central/weather.py)
    def set_temperatures(self, values: dict[tuple[str, str], float]) -> None:
        """Latest temperature per place_key, shown in every CP view; screens are told only when one changed."""
        with self._lock:
            changed = {k: v for k, v in values.items() if self.temperatures.get(k) != v}
            self.temperatures.update(changed)
        if changed:
            self._changed()

    def reason_targets(self, places: set[tuple[str, str]], reason: str, on: bool) -> list[str]:
        """CPs at these places (place_key) whose reason (set, or pending after a supply) set_reason would change."""
        with self._lock:
            return sorted(cp.cp_id for cp in self.cps.values() if place_key(cp.city, cp.country) in places
                          and (reason in cp.out_of_service or reason in cp.pending_reasons) != on)

    # ------------------------------------------------------------ views
    def cp_view(self, cp: CpView) -> dict:
        """A CP as every screen shows it."""
        state = cp.state
        supply = cp.supply
        return {
            "cp_id": cp.cp_id, "address": cp.address, "city": cp.city, "country": cp.country,
            "zone": cp.zone, "price_eur_kwh": d.plain(cp.price_eur_kwh), "power_kw": d.plain(cp.power_kw),
            "state": state.value, "colour": d.STATE_COLOURS[state], "caption": d.caption(state, cp.out_of_service),
            "out_of_service": sorted(cp.out_of_service), "link_up": cp.link_up, "engine_ok": cp.engine_ok,
            "supply": self.supply_view(supply) if supply else None,
            "temperature": self.temperatures.get(place_key(cp.city, cp.country)),
        }

    @staticmethod
    def supply_view(s: SupplyView) -> dict:
        """A supply as screens show it."""
        return {"supply_id": s.supply_id, "cp_id": s.cp_id, "driver_id": s.driver_id, "phase": s.phase.value,
                "authorized_at": _iso(s.authorized_at), "started_at": _iso(s.started_at),
                "expires_at": _iso(s.expires_at), "power_kw": str(s.live_power_kw),
                "energy_kwh": str(d.energy(s.energy_kwh)), "amount_eur": str(d.money(s.amount_eur)),
                "price_eur_kwh": d.plain(s.price_eur_kwh)}

    def snapshot(self) -> list[dict]:
        """Every CP view, sorted by id."""
        with self._lock:
            return [self.cp_view(cp) for cp in sorted(self.cps.values(), key=lambda c: c.cp_id)]

    def get(self, cp_id: str) -> Optional[dict]:
        """One CP view, or None."""
        with self._lock:
            cp = self.cps.get(cp_id)
            return self.cp_view(cp) if cp else None

    def zones(self) -> set[str]:
        """Zones of the known CPs plus the default zone."""
        with self._lock:
            return {cp.zone for cp in self.cps.values()} | {m.DEFAULT_ZONE}

    # ------------------------------------------------------------ helpers
    def _changed(self) -> None:
        with self._version_cond:
            self.version += 1
            self._version_cond.notify_all()
        try:
            self.on_change()
        except Exception:
            logger.exception("change listener failed")

    def wait_change(self, since: int, timeout: float) -> int:
        """Block until the network changed after version `since` (or the timeout); returns the version."""
        with self._version_cond:
            self._version_cond.wait_for(lambda: self.version != since, timeout)
            return self.version

    def _incident(self, cp: CpView, text: str) -> None:
        logger.warning(text)
        supply = cp.supply
        if supply is not None:
            kind, client = supply.recipient
            self.outlet.to_client(kind, client, m.Notice(text, "error"))
        self._note("error", text)
        self._audit("INCIDENT", "cp_incident", cp.cp_id, False, text)

    def _note(self, level: str, text: str) -> None:
        try:
            self.journal.app_message(COMPONENT, level, text)
        except Exception:
            logger.exception("could not store app message")

    def _save_flags(self, cp: CpView) -> None:
        """Persist engine health (best effort: the live view already changed and is re-saved on the next change)."""
        try:
            self.repo.save_cp_flags(cp.cp_id, list(cp.out_of_service), cp.engine_ok)
        except Exception:
            logger.exception("could not save the state of %s", cp.cp_id)

    def _tell_engine(self, cp: CpView) -> None:
        state = cp.state
        self.outlet.to_client("engine", cp.cp_id, m.CpStatus(cp.cp_id, state.value, d.caption(state, cp.out_of_service),
                                                             sorted(cp.out_of_service)))

    def security_event(self, action: str, actor: str, text: str) -> None:
        """Record a refused, suspicious input (audit SECURITY and the Front's messages)."""
        self._audit("SECURITY", action, actor, False, text)
        self._note("error", f"Mensaje rechazado: {text}")

    def _audit(self, category: str, action: str, actor: Optional[str], success: bool, text: str) -> None:
        try:
            self.journal.audit(COMPONENT, category, action, actor, success, text)
        except Exception:
            logger.exception("could not store audit record")
