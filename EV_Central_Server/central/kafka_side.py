"""CENTRAL's Kafka edge: channel negotiation, routing of client messages, reliable sends (SPEC §7).

One consumer (group ``evc-central``, so several CENTRALs share the load) reads
every zone's ``select`` and ``ch<N>.req`` topics by pattern. Leases (which
channel and partition a client reads) are kept in memory and in the DB, so a
restarted CENTRAL still reaches its clients. Reliable messages to clients wait
in an Outbox until the client's Ack.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from kafka.errors import KafkaError

from common import messages as m
from common.bus import ensure_topics, make_consumer, make_producer, zone_topic_partitions
from common.reliable import Outbox

logger = logging.getLogger(__name__)
SENDER = "CENTRAL"
TOPIC_RE = re.compile(r"^evc\.(?P<zone>[A-Za-z0-9_-]+)\.(?:select|ch(?P<channel>[0-9])\.req)$")


@dataclass
class Lease:
    """Where a client reads CENTRAL's messages."""

    client_id: str
    kind: str
    zone: str
    channel: int
    partition: int
    expires_at: datetime


class CentralBus:
    """Kafka side of CENTRAL; implements the service's Outlet."""

    def __init__(self, bootstrap: str, repo, lease_s: int = 600, resend_s: float = 2.0, group: str = "evc-central"):
        self.bootstrap, self.repo, self.lease_s, self.group = bootstrap, repo, lease_s, group
        self.outbox = Outbox(resend_s, max_sends=300)  # ~10 minutes of re-sends to a client that never answers
        self.leases: dict[tuple[str, str], Lease] = {}
        self.zones_ready: set[str] = set()
        self.handler: Callable[[str, str, m.Envelope], None] = lambda kind, zone, env: None
        self._producer = None
        self._status_version = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()

    # ---- start-up ----
    def start(self, zones: set[str], handler: Callable[[str, str, m.Envelope], None]) -> None:
        """Connect, create the zones' topics, load leases and start the consumer and resend threads."""
        self.handler = handler
        for row in self.repo.load_leases():
            self.leases[(row["kind"], row["client_id"])] = Lease(**row)
        self._producer = self._retry(lambda: make_producer(self.bootstrap), "producer")
        for zone in zones:
            self.ensure_zone(zone)
        threading.Thread(target=self._consume, name="central-kafka", daemon=True).start()
        threading.Thread(target=self._resend_loop, name="central-resend", daemon=True).start()

    def stop(self) -> None:
        """Stop the threads and flush the producer."""
        self._stop.set()
        if self._producer is not None:
            self._producer.close(timeout=3)

    def ensure_zone(self, zone: str) -> None:
        """Create a zone's topics once."""
        if zone in self.zones_ready:
            return
        self._retry(lambda: ensure_topics(self.bootstrap, zone_topic_partitions(zone)), f"topics of zone {zone}")
        self.zones_ready.add(zone)

    def _retry(self, action, what: str):
        delay = 0.5
        while not self._stop.is_set():
            try:
                return action()
            except KafkaError as exc:
                logger.warning("Kafka not ready for %s (%s); retrying", what, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RuntimeError("stopped")

    # ---- Outlet ----
    def to_client(self, kind: str, client_id: str, message: m.Message, msg_id: Optional[str] = None) -> None:
        """Send a message to a client on its leased channel and partition."""
        lease = self.leases.get((kind, client_id))
        if lease is None:
            logger.info("no channel for %s %s; %s not sent", kind, client_id, message.type_name())
            return
        value = m.encode(message, SENDER, msg_id)
        try:
            self._producer.send(m.topic_resp(lease.zone, lease.channel), key=client_id.encode(),
                                value=value, partition=lease.partition)
        except KafkaError as exc:
            logger.warning("could not send %s to %s: %s", message.type_name(), client_id, exc)

    def to_client_reliable(self, kind: str, client_id: str, message: m.Message) -> None:
        """Queue a message re-sent until the client acknowledges it."""
        msg_id = self.outbox.add(message, f"{kind}:{client_id}", next_send=time.monotonic() + self.outbox.resend_s)
        self.to_client(kind, client_id, message, msg_id)  # sent now; the resend loop only repeats it

    def forget_supply(self, supply_id: str) -> None:
        """A finished supply needs no more authorizations or stop commands re-sent."""
        self.outbox.discard(lambda msg: isinstance(msg, (m.AuthorizeSupply, m.StopSupply))
                            and msg.supply_id == supply_id)

    def publish_status(self, cps: list[dict]) -> None:
        """Network status on every ready zone's status topic."""
        self._status_version += 1
        values = [m.encode(msg, SENDER) for msg in m.status_messages(cps, self._status_version)]
        for zone in list(self.zones_ready):
            try:
                for value in values:
                    self._producer.send(m.topic_status(zone), value=value)
            except KafkaError as exc:
                logger.warning("could not publish status on %s: %s", zone, exc)

    # ---- negotiation ----
    def assign(self, zone: str, req: m.SelectChannel) -> Lease:
        """Give a client the least-loaded channel of its zone and a partition of it."""
        with self._lock:
            now = datetime.now(timezone.utc)
            load = [0] * m.CHANNELS
            for lease in self.leases.values():
                if lease.zone == zone and lease.expires_at > now and lease.client_id != req.client_id:
                    load[lease.channel] += 1
            channel = min(range(m.CHANNELS), key=lambda n: (load[n], n))
            lease = Lease(req.client_id, req.kind, zone, channel, load[channel] % m.RESP_PARTITIONS,
                          now + timedelta(seconds=self.lease_s))
            self.leases[(req.kind, req.client_id)] = lease
        self.repo.save_lease(lease.__dict__)
        return lease

    def answer_select(self, zone: str, lease: Lease) -> None:
        """Tell a client its channel on the zone's select.reply topic."""
        assigned = m.ChannelAssigned(lease.client_id, lease.channel, lease.partition, self.lease_s)
        self._producer.send(m.topic_select_reply(zone), key=lease.client_id.encode(), value=m.encode(assigned, SENDER))

    # ---- threads ----
    def _consume(self) -> None:
        while not self._stop.is_set():
            consumer = None
            try:
                # "latest": a new group does not replay history; clients re-send what was not answered
                consumer = make_consumer(self.bootstrap, group_id=self.group,
                                         auto_offset_reset="latest", enable_auto_commit=True,
                                         auto_commit_interval_ms=1000,
                                         session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                         # also the rebalance timeout: after a broker restart the group
                                         # waits at most this long for members that are gone
                                         max_poll_interval_ms=10000)
                consumer.subscribe(pattern=m.CENTRAL_TOPIC_PATTERN)
                while not self._stop.is_set():
                    for records in consumer.poll(timeout_ms=200).values():
                        for record in records:
                            self._route(record.topic, record.value)
            except KafkaError as exc:
                logger.warning("Kafka consumer lost (%s); reconnecting", exc)
                time.sleep(1)
            except Exception:
                logger.exception("Kafka consumer failed; restarting it")
                time.sleep(1)
            finally:
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:
                        pass

    def _route(self, topic: str, value: bytes) -> None:
        match = TOPIC_RE.match(topic)
        if not match:
            return
        try:
            env = m.decode(value)
        except m.MessageError as exc:
            logger.warning("dropped bad message on %s: %s", topic, exc)
            return
        zone = match.group("zone")
        kind = "select" if match.group("channel") is None else "channel"
        try:
            self.handler(kind, zone, env)
        except m.MessageError as exc:
            logger.warning("rejected %s from %s: %s", env.message.type_name(), env.sender, exc)
        except Exception:
            logger.exception("handler failed for %r from %s", env.message, env.sender)

    def _resend_loop(self) -> None:
        while not self._stop.wait(0.5):
            for pending in self.outbox.due(time.monotonic()):
                kind, _, client_id = pending.target.partition(":")
                self.to_client(kind, client_id, pending.message, pending.msg_id)
