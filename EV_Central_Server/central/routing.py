"""Routing of Kafka messages from clients to the service: one handler per message type, in a table."""
from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Callable, Optional

from common import messages as m
from EV_Central_Server.central.service import ANON_PREFIX, CentralService

if TYPE_CHECKING:  # only for annotations: importing kafka_side loads kafka-python
    from EV_Central_Server.central.kafka_side import CentralBus

logger = logging.getLogger(__name__)
ENGINE_ONLY = (m.SupplyStarted, m.Telemetry, m.SupplyFinished)


def sender_kind(env: m.Envelope, engine_ids: set[str]) -> str:
    """Whether a channel message comes from an engine or a driver."""
    msg = env.message
    if isinstance(msg, m.Hello):
        return "engine" if msg.kind == "engine" else "driver"
    if isinstance(msg, ENGINE_ONLY):
        return "engine"
    if isinstance(msg, m.RequestSupply):
        return "engine" if msg.driver_id.startswith(ANON_PREFIX) else "driver"
    if isinstance(msg, m.StopSupply):
        return "driver"
    return "engine" if env.sender in engine_ids else "driver"


class _Inline:
    """Runs submitted work at once (tests); production passes a small thread pool."""

    def submit(self, work: Callable[[], None]) -> None:
        work()


class KafkaRouter:
    """Turns decoded envelopes into service calls; unknown types get a readable Error reply."""

    def __init__(self, service: CentralService, bus: CentralBus, accounts: Optional[Executor] = None):
        self.service, self.bus = service, bus
        self.accounts = accounts or _Inline()
        self.handlers: dict[type, Callable[[str, m.Envelope], None]] = {
            m.Hello: self.on_hello,
            m.RequestSupply: self.on_request,
            m.SupplyStarted: lambda kind, env: self.service.supply_started(env.message),
            m.Telemetry: lambda kind, env: self.service.telemetry(env.message),
            m.SupplyFinished: lambda kind, env: self.service.supply_finished(env.message),
            m.StopSupply: lambda kind, env: self.service.driver_stop(env.sender, env.message),
            m.AckTicket: lambda kind, env: self.service.ack_ticket(env.sender, env.message),
            m.Ack: lambda kind, env: self.bus.outbox.ack(env.message.ref),
            m.RegisterDriver: self.on_account,
            m.LoginDriver: self.on_account,
            m.QueryHistory: self.on_history,
        }

    def reply(self, kind: str, env: m.Envelope, answer: m.Message) -> None:
        """Answer the sender of a message."""
        self.bus.to_client(kind, env.sender, answer)

    def on_account(self, kind: str, env: m.Envelope) -> None:
        """Register or log in, in the accounts pool: a slow password hash never holds up supplies."""
        def answer():
            msg = env.message
            handle = self.service.register_driver if isinstance(msg, m.RegisterDriver) else self.service.login_driver
            try:
                result = handle(env.sender, msg)
            except Exception:
                logger.exception("account operation for %s failed", msg.driver_id)
                result = m.AccountResult(msg.driver_id, False, "INTERNAL", "No se pudo completar; inténtalo de nuevo")
            result.request_id = msg.request_id
            self.reply(kind, env, result)
        self.accounts.submit(answer)

    def on_history(self, kind: str, env: m.Envelope) -> None:
        """A driver's history, only for itself."""
        msg = env.message
        if msg.driver_id != env.sender:
            self.reply(kind, env, m.Error("NOT_YOURS", "a driver may only see its own history", env.id))
            return
        self.reply(kind, env, self.service.history(msg.driver_id))

    def __call__(self, topic_kind: str, zone: str, env: m.Envelope) -> None:
        """Entry point for every message CENTRAL consumes."""
        if topic_kind == "select":
            self.on_select(zone, env)
            return
        if isinstance(env.message, ENGINE_ONLY) and env.message.cp_id != env.sender:
            logger.warning("dropped %s for %s sent by %s", env.message.type_name(), env.message.cp_id, env.sender)
            self.service.security_event("foreign_report", env.sender,
                                        f"{env.message.type_name()} for {env.message.cp_id} sent by {env.sender}")
            return
        kind = sender_kind(env, self.service.engine_ids())
        handler = self.handlers.get(type(env.message))
        if handler is None:
            logger.warning("type %s is not handled by CENTRAL (from %s)", env.message.type_name(), env.sender)
            self.bus.to_client(kind, env.sender, m.Error("NOT_HANDLED", f"type {env.message.type_name()} not handled here", env.id))
            return
        try:
            handler(kind, env)
        except m.MessageError as exc:  # refused for good: say why, and stop the sender re-sending it forever
            logger.warning("refused %s from %s: %s", env.message.type_name(), env.sender, exc)
            self.bus.to_client(kind, env.sender, m.Error(exc.code, str(exc), env.id))
        if env.message.RELIABLE:
            self.bus.to_client(kind, env.sender, m.Ack(env.id))

    def on_select(self, zone: str, env: m.Envelope) -> None:
        """A client asks for a channel."""
        msg = env.message
        if not isinstance(msg, m.SelectChannel) or msg.kind not in ("driver", "engine") or msg.client_id != env.sender:
            logger.warning("ignored %s on %s select topic", msg.type_name(), zone)
            return
        if zone not in self.service.zones():  # topics only for zones that have CPs (or the default one)
            logger.warning("ignored a channel request for unknown zone %s from %s", zone, env.sender)
            return
        self.bus.ensure_zone(zone)
        self.bus.answer_select(zone, self.bus.assign(zone, msg))

    def on_hello(self, kind: str, env: m.Envelope) -> None:
        """Handshake: answer Welcome, then re-send what the client may have missed."""
        self.bus.to_client(kind, env.sender, m.Welcome(env.sender))
        self.service.hello(kind, env.sender, env.message)

    def on_request(self, kind: str, env: m.Envelope) -> None:
        """A supply request from a driver or (anonymous) from an engine."""
        self.service.request_supply(kind, env.sender, env.message, env.ts)
