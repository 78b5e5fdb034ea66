"""Kafka adapters: the zone-channel client (drivers, engines) and CENTRAL's side (SPEC §7).

Theory of operation
-------------------
A client asks for a channel on ``evc.<zone>.select`` and reads CENTRAL's answer
on ``select.reply`` (it reads every partition, from the end, and keeps the
answer addressed to its id). It then reads its assigned partition of
``ch<N>.resp`` directly (no consumer group: ready in well under a second),
sends ``Hello`` on ``ch<N>.req`` and waits for ``Welcome`` before any critical
message. The lease is renewed before it runs out.

Reliable messages (``Message.RELIABLE``) wait in an outbox and are re-sent
every ``resend_s`` until an ``Ack`` naming their envelope id comes back;
receivers acknowledge them and drop duplicates they have already seen.
Everything here is I/O glue: the message format lives in ``common.messages``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from common import messages as m
from common.reliable import Outbox, SeenIds

logger = logging.getLogger(__name__)

Handler = Callable[[m.Envelope], None]


def make_producer(bootstrap: str) -> KafkaProducer:
    """A producer that keeps retrying while the broker is away."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        enable_idempotence=False,  # acks=1 is our choice; receivers de-duplicate by envelope id
        linger_ms=0,
        retries=2**31 - 1,
        retry_backoff_ms=200,
        delivery_timeout_ms=120_000,
        request_timeout_ms=5_000,
        max_block_ms=5_000,
        reconnect_backoff_max_ms=1_000,
    )


def make_consumer(bootstrap: str, **settings) -> KafkaConsumer:
    """A consumer that reconnects within a second when the broker comes back."""
    return KafkaConsumer(bootstrap_servers=bootstrap, reconnect_backoff_max_ms=1_000, metadata_max_age_ms=2_000,
                         **settings)


def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics (name -> partitions) that do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, parts, 1) for name, parts in topics.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def zone_topic_partitions(zone: str) -> dict[str, int]:
    """Every topic of a zone with its partition count."""
    return {t: (m.RESP_PARTITIONS if t.endswith(".resp") else 1) for t in m.zone_topics(zone)}


class ZoneClient:
    """A driver's or engine's link to CENTRAL over its negotiated zone channel."""

    def __init__(self, bootstrap: str, zone: str, client_id: str, kind: str, on_message: Handler,
                 on_link: Callable[[bool], None] = lambda up: None, hello_supply: Callable[[], Optional[str]] = lambda: None,
                 select_timeout_s: float = 3.0, resend_s: float = 2.0):
        self.bootstrap, self.zone, self.client_id, self.kind = bootstrap, zone, client_id, kind
        self.on_message, self.on_link, self.hello_supply = on_message, on_link, hello_supply
        self.select_timeout_s = select_timeout_s
        self.outbox = Outbox(resend_s)
        self.connected = False
        self.channel: Optional[int] = None
        self.partition: Optional[int] = None
        self._lease_until = 0.0
        self._stop = threading.Event()
        self._seen = SeenIds()
        self._producer: Optional[KafkaProducer] = None
        self._reply_consumer: Optional[KafkaConsumer] = None
        self._resp_consumer: Optional[KafkaConsumer] = None
        self._thread = threading.Thread(target=self._run, name=f"zone-{client_id}", daemon=True)

    # ---- public API ----
    def start(self) -> None:
        """Start negotiating and serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close Kafka clients."""
        self._stop.set()
        self._thread.join(timeout=5)

    def send(self, message: m.Message) -> Optional[str]:
        """Send a message to CENTRAL; reliable ones wait in the outbox until acknowledged."""
        if message.RELIABLE:
            msg_id = self.outbox.add(message)
            if self.connected:
                self._flush_outbox()
            return msg_id
        if not self.connected:
            logger.info("not connected to CENTRAL; dropped %s", message.type_name())
            return None
        return self._produce(message)

    # ---- internals ----
    def _produce(self, message: m.Message, msg_id: Optional[str] = None, topic: Optional[str] = None) -> Optional[str]:
        if self._producer is None:
            return None
        msg_id = msg_id or m.new_id()
        topic = topic or m.topic_req(self.zone, self.channel or 0)
        try:
            self._producer.send(topic, key=self.client_id.encode(), value=m.encode(message, self.client_id, msg_id))
        except KafkaError as exc:
            logger.warning("Kafka send of %s failed: %s", message.type_name(), exc)
            return None
        return msg_id

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._open()
                self._serve()
            except Exception as exc:  # broker away or our bug: log, drop the link, retry
                logger.warning("zone link to CENTRAL lost (%s); retrying", exc, exc_info=not isinstance(exc, KafkaError))
                self._set_connected(False)
                self._close_clients()
                self._stop.wait(1.0)
        self._close_clients()

    def _open(self) -> None:
        if self._producer is None:
            self._producer = make_producer(self.bootstrap)
        if self._reply_consumer is None:
            self._reply_consumer = make_consumer(self.bootstrap, group_id=None, enable_auto_commit=False,
                                                 request_timeout_ms=11_000)
        self._negotiate()

    def _negotiate(self) -> None:
        while not self._stop.is_set():
            if self._assign_to_end(self._reply_consumer, m.topic_select_reply(self.zone)):
                self._produce(m.SelectChannel(self.client_id, self.kind), topic=m.topic_select(self.zone))
                assigned = self._wait_assignment()
                if assigned and self._handshake(assigned):
                    return
            else:  # the zone's topics do not exist yet: asking creates the select topic, CENTRAL the rest
                self._produce(m.SelectChannel(self.client_id, self.kind), topic=m.topic_select(self.zone))
            self._set_connected(False)
            self._stop.wait(1.0)

    def _assign_to_end(self, consumer: KafkaConsumer, topic: str, partition: Optional[int] = None) -> bool:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            return False
        tps = [TopicPartition(topic, p) for p in sorted(parts) if partition is None or p == partition]
        if not tps:
            return False
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)
        return True

    def _wait_assignment(self) -> Optional[m.ChannelAssigned]:
        deadline = time.monotonic() + self.select_timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            for env in self._poll(self._reply_consumer):
                msg = env.message
                if isinstance(msg, m.ChannelAssigned) and msg.client_id == self.client_id:
                    return msg
        return None

    def _handshake(self, assigned: m.ChannelAssigned) -> bool:
        if self._resp_consumer is None:
            self._resp_consumer = make_consumer(self.bootstrap, group_id=None, enable_auto_commit=False,
                                                request_timeout_ms=11_000)
        topic = m.topic_resp(self.zone, assigned.channel)
        if not self._assign_to_end(self._resp_consumer, topic, assigned.partition):
            return False
        self.channel, self.partition = assigned.channel, assigned.partition
        self._produce(m.Hello(self.client_id, self.kind, self.hello_supply()))
        deadline = time.monotonic() + self.select_timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            for env in self._poll(self._resp_consumer):
                if isinstance(env.message, m.Welcome) and env.message.client_id == self.client_id:
                    self._lease_until = time.monotonic() + assigned.lease_s * 0.9
                    self._set_connected(True)
                    self.outbox.retry_now()
                    return True
                self._deliver(env)
        return False

    def _serve(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() >= self._lease_until:
                logger.info("%s: channel lease ending, negotiating again", self.client_id)
                self._negotiate()
                continue
            for env in self._poll(self._resp_consumer):
                self._deliver(env)
            self._flush_outbox()

    def _poll(self, consumer: KafkaConsumer) -> list[m.Envelope]:
        batches = consumer.poll(timeout_ms=100)
        found = []
        for records in batches.values():
            for record in records:
                if record.key is not None and record.key != self.client_id.encode():
                    continue  # another client's message on a shared channel partition: not ours to see or Ack
                try:
                    found.append(m.decode(record.value))
                except m.MessageError as exc:
                    logger.warning("dropped bad message on %s: %s", record.topic, exc)
        return found

    def _deliver(self, env: m.Envelope) -> None:
        msg = env.message
        if isinstance(msg, m.Ack):
            self.outbox.ack(msg.ref)
            return
        if isinstance(msg, (m.Welcome, m.ChannelAssigned)):
            return
        if msg.RELIABLE and env.id in self._seen:
            self._produce(m.Ack(env.id))  # a duplicate: handled already, acknowledge again
            return
        try:
            self.on_message(env)
        except Exception:
            logger.exception("handler failed for %r", msg)
            return  # not acknowledged: the sender re-sends it
        if msg.RELIABLE:
            self._seen.check_and_add(env.id)
            self._produce(m.Ack(env.id))

    def _flush_outbox(self) -> None:
        for pending in self.outbox.due(time.monotonic()):
            self._produce(pending.message, pending.msg_id)

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            try:
                self.on_link(up)
            except Exception:
                logger.exception("link callback failed")

    def _close_clients(self) -> None:
        for consumer in (self._reply_consumer, self._resp_consumer):
            if consumer is not None:
                try:
                    consumer.close()
                except Exception:
                    pass
        self._reply_consumer = self._resp_consumer = None
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            except Exception:
                pass
            self._producer = None


class StatusReader:
    """Reads ``evc.<zone>.status`` (every partition, from the end) for drivers."""

    def __init__(self, bootstrap: str, zone: str):
        self.topic = m.topic_status(zone)
        self.consumer = make_consumer(bootstrap, group_id=None, enable_auto_commit=False)
        self._assigned = False

    def poll(self, timeout_ms: int = 200) -> list[m.Envelope]:
        """New status messages, if any."""
        if not self._assigned:
            parts = self.consumer.partitions_for_topic(self.topic)
            if not parts:
                time.sleep(timeout_ms / 1000)
                return []
            tps = [TopicPartition(self.topic, p) for p in parts]
            self.consumer.assign(tps)
            self.consumer.seek_to_end(*tps)
            self._assigned = True
        found = []
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                try:
                    found.append(m.decode(record.value))
                except m.MessageError as exc:
                    logger.warning("dropped bad status message: %s", exc)
        return found

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
