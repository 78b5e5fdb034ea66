"""Bad input on every interface gets a clear error or is dropped and logged; the process keeps serving."""
from __future__ import annotations

import os
import socket
import time

from kafka import KafkaProducer

from common import messages as m
from common import protocol as p
from common.bus import ZoneClient
from tests.e2e.harness import uid, wait_until


def _read_until(sock: socket.socket, want: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while want not in data and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _read_frame(sock: socket.socket, timeout: float = 5.0) -> p.Frame:
    reader = p.FrameReader()
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader.feed(sock.recv(4096))
        for item in reader:
            if isinstance(item, p.Frame):
                return item
    raise AssertionError("no frame received")


def test_garbage_on_central_socket_gets_nack_and_the_connection_keeps_serving(stack):
    stack.start_central()
    cp_id = uid("G")
    stack.register_cp(cp_id)
    with socket.create_connection(("127.0.0.1", stack.central_port), timeout=5) as sock:
        sock.sendall(p.control(p.ENQ))
        assert _read_until(sock, bytes([p.ACK])) == bytes([p.ACK])
        bad_lrc = p.encode(p.frame("STATUS", cp_id, "OK"))[:-1] + b"\x00"
        for garbage in (b"\xff\xfe hello", bad_lrc, b"\x02NOPE#1\x03" + bytes([p.lrc(b"NOPE#1")]),
                        b"\x02" + os.urandom(5000).replace(bytes([p.EOT]), b"x")):
            sock.sendall(garbage)
            assert bytes([p.NACK]) in _read_until(sock, bytes([p.NACK])), garbage[:20]
        sock.sendall(p.encode(p.frame("AUTH", cp_id, "")))
        reply = _read_frame(sock)
        assert reply.opcode == "AUTH_OK", reply
        sock.sendall(p.encode(p.frame("STATUS", cp_id, "OK")))
        stack.wait_state(cp_id, "ACTIVADO", 5)
    assert stack.central.alive()


def test_malformed_kafka_messages_are_dropped_and_central_keeps_serving(stack, broker):
    stack.start_central()
    producer = KafkaProducer(bootstrap_servers=broker)
    bad_values = [b"not json", b"[1,2]", b'{"v":1,"type":"Nope","id":"x","ts":"t","sender":"s","payload":{}}',
                  m.encode(m.NetworkStatus([]), "attacker"), b'{"v":1,"type":"RequestSupply","id":"x","ts":"t","sender":"s","payload":{"cp_id":7}}',
                  b"\x00" * 70000]
    for topic in (m.topic_select("default"), m.topic_req("default", 0), m.topic_req("default", 3)):
        for value in bad_values:
            producer.send(topic, value=value)
    producer.flush()
    producer.close()
    driver_id = uid("D")
    stack.register_driver(driver_id)
    answers = []
    client = ZoneClient(broker, "default", driver_id, "driver", lambda env: answers.append(env.message))
    client.start()
    try:
        wait_until(lambda: client.connected, 20, "driver handshake with CENTRAL")
        client.send(m.RequestSupply("NO_SUCH_CP", driver_id, uid("r")))
        denial = wait_until(lambda: [a for a in answers if isinstance(a, m.SupplyDenied)], 10, "an answer")
        assert denial[0].reason == "CP_NOT_FOUND"
    finally:
        client.stop()
    assert stack.central.alive()
    assert stack.central.matching(r"dropped bad message|rejected|not handled")


def test_garbage_on_the_topics_clients_read_is_dropped_and_a_supply_still_completes(stack, broker):
    from tests.e2e.test_supply_flows import CONNECTED, authorized, request, ticket

    stack.start_central()
    cp_id, driver_id = uid("T"), uid("D")
    engine, _ = stack.start_cp(cp_id, "--auto-plug", "0.3", "--auto-unplug", "2")
    driver = stack.start_driver(driver_id)
    driver.wait_line(CONNECTED, 20)
    producer = KafkaProducer(bootstrap_servers=broker)
    garbage = [b"{", b"null", b'{"v":1,"type":"Nope","id":"x","ts":"t","sender":"s","payload":{}}',
               b'{"v":1,"type":"TicketIssued","id":"x","ts":"t","sender":"s","payload":{"ticket_id":5}}',
               m.encode(m.AuthorizeSupply("fake", "OTHER", "x", "0.1", "2030-01-01T00:00:00+00:00"), "mallory")]
    for channel in range(m.CHANNELS):
        for partition in range(m.RESP_PARTITIONS):
            for value in garbage:
                producer.send(m.topic_resp("default", channel), value=value, partition=partition)
    for value in garbage:
        producer.send(m.topic_status("default"), value=value)
    producer.flush()
    producer.close()
    mark = request(driver, cp_id)
    authorized(driver, cp_id, mark)
    kwh, reason = ticket(driver, mark, 20)
    assert reason == "UNPLUGGED" and kwh > 0
    for proc in stack.procs:
        assert proc.alive(), proc.name
    stack.assert_every_supply_ticketed([cp_id])


def test_garbage_on_the_engine_socket_gets_nack_and_a_stray_connection_cannot_displace_the_monitor(stack):
    stack.start_central()
    cp_id = uid("N")
    stack.register_cp(cp_id)
    engine = stack.start_engine(cp_id)
    engine.wait_line(r"Engine listening", 20)
    port = stack.engine_ports[cp_id]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # no Monitor yet: it is served
        sock.sendall(b"\xff\x00garbage" + p.encode(p.frame("HEALTH", "1"))[:-1] + b"\x00")
        assert bytes([p.NACK]) in _read_until(sock, bytes([p.NACK]))
    assert engine.alive()
    stack.start_monitor(cp_id)
    stack.wait_state(cp_id, "ACTIVADO", 15)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # the Monitor is live: refused
        sock.sendall(p.control(p.ENQ) + b"garbage")
        assert _read_until(sock, bytes([p.EOT])).endswith(bytes([p.EOT]))
    assert engine.alive()
    assert stack.cp(cp_id)["state"] == "ACTIVADO"
