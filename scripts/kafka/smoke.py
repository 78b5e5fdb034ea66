#!/usr/bin/env python3
"""Smoke test of a running broker with kafka-python (run with the .venv python).

Usage: .venv/bin/python scripts/kafka/smoke.py [HOST:PORT]   (default 127.0.0.1:$EVC_KAFKA_PORT)

1. KafkaAdminClient creates a 4-partition topic (wait_for_metadata=True).
2. KafkaProducer sends one message to each partition (acks=all).
3. A KafkaConsumer with manual assignment (assign + seek_to_beginning, no group)
   reads the four back.
4. A group consumer (subscribe, group_id) reads one message from an
   auto-created topic.
Leaves no topics behind. Exit 0 on success. Prints timings.
"""
import os
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.serializer import DefaultSerializer  # str <-> utf-8; plain lambdas are deprecated in 3.x


def main():
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else f"127.0.0.1:{os.environ.get('EVC_KAFKA_PORT', '9092')}"
    suffix = uuid.uuid4().hex[:8]
    topic = f"evc-smoke-{suffix}"
    auto_topic = f"evc-smoke-auto-{suffix}"
    t0 = time.monotonic()

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="evc-smoke-admin")
    print("broker version seen by kafka-python:", admin._manager.broker_version)
    admin.create_topics({topic: {"num_partitions": 4, "replication_factor": 1}},
                        wait_for_metadata=True)
    parts = admin.describe_topics([topic])[0]["partitions"]
    assert len(parts) == 4, parts
    print(f"created {topic} with 4 partitions in {time.monotonic() - t0:.2f}s")

    t1 = time.monotonic()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                             value_serializer=DefaultSerializer(), key_serializer=DefaultSerializer())
    futures = [producer.send(topic, key=f"k{p}", value=f"hello-{p}", partition=p) for p in range(4)]
    metas = [f.get(timeout=10) for f in futures]
    producer.flush()
    assert sorted(m.partition for m in metas) == [0, 1, 2, 3], metas
    print(f"produced 4 messages in {time.monotonic() - t1:.2f}s")

    t2 = time.monotonic()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             value_deserializer=DefaultSerializer())
    tps = [TopicPartition(topic, p) for p in range(4)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = {}
    deadline = time.monotonic() + 20
    while len(got) < 4 and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                got[tp.partition] = r.value
    consumer.close()
    assert got == {p: f"hello-{p}" for p in range(4)}, got
    print(f"manual-assignment consumer read 4 messages in {time.monotonic() - t2:.2f}s")

    t3 = time.monotonic()
    group_consumer = KafkaConsumer(auto_topic, bootstrap_servers=bootstrap,
                                   group_id=f"evc-smoke-{suffix}", auto_offset_reset="earliest",
                                   value_deserializer=DefaultSerializer())
    producer.send(auto_topic, key="auto", value="auto-created").get(timeout=15)
    value = None
    deadline = time.monotonic() + 30
    while value is None and time.monotonic() < deadline:
        for records in group_consumer.poll(timeout_ms=500).values():
            for r in records:
                value = r.value
    group_consumer.close()
    producer.close()
    assert value == "auto-created", value
    print(f"group consumer on auto-created topic read 1 message in {time.monotonic() - t3:.2f}s")

    admin.delete_topics([topic, auto_topic])
    admin.close()
    print(f"kafka smoke OK in {time.monotonic() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
