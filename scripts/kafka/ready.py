#!/usr/bin/env python3
"""One readiness probe of a Kafka broker: exit 0 when it serves requests.

Usage: ready.py HOST:PORT [--verbose]

"Ready" means the broker answers a Metadata request listing at least one
(unfenced) broker and a controller id, i.e. clients can produce, consume and
auto-create topics. Uses kafka-python when importable (the project's .venv),
otherwise a dependency-free raw ApiVersions + Metadata v4 exchange, so
scripts/kafka.sh works before the virtualenv exists. One attempt, a few seconds
at most; scripts/lib.sh's wait_for does the polling.
"""
import socket
import struct
import sys

TIMEOUT_S = 3.0


def probe_kafka_python(bootstrap):
    from kafka import KafkaAdminClient  # noqa: import inside: optional dependency

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="evc-ready-probe",
        request_timeout_ms=int(TIMEOUT_S * 1000),
        bootstrap_timeout_ms=int(TIMEOUT_S * 1000),
    )
    try:
        cluster = admin.describe_cluster()
        admin.list_topics()
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    controller = cluster.get("controller_id", -1)
    return len(brokers) >= 1 and controller is not None and controller >= 0, cluster


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _request(sock, api_key, api_version, corr, body):
    header = struct.pack(">hhi", api_key, api_version, corr) + _str("evc-ready-probe")
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    data = _recv(sock, size)
    (rcorr,) = struct.unpack(">i", data[:4])
    if rcorr != corr:
        raise RuntimeError("correlation id mismatch")
    return data[4:]


def _recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def probe_raw(bootstrap):
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        sock.settimeout(TIMEOUT_S)
        # ApiVersions v0 (api key 18): error code must be 0.
        resp = _request(sock, 18, 0, 1, b"")
        (err,) = struct.unpack(">h", resp[:2])
        if err != 0:
            return False, {"api_versions_error": err}
        # Metadata v4 (api key 3): topics = [] (none), allow_auto_topic_creation = false.
        resp = _request(sock, 3, 4, 2, struct.pack(">i", 0) + b"\x00")
        pos = 4  # throttle_time_ms
        (nbrokers,) = struct.unpack(">i", resp[pos:pos + 4])
        pos += 4
        for _ in range(max(nbrokers, 0)):
            pos += 4  # node_id
            (hl,) = struct.unpack(">h", resp[pos:pos + 2])
            pos += 2 + hl + 4  # host, port
            (rl,) = struct.unpack(">h", resp[pos:pos + 2])
            pos += 2 + max(rl, 0)  # nullable rack
        (cl,) = struct.unpack(">h", resp[pos:pos + 2])
        pos += 2 + max(cl, 0)  # nullable cluster id
        (controller,) = struct.unpack(">i", resp[pos:pos + 4])
        info = {"brokers": nbrokers, "controller_id": controller}
        return nbrokers >= 1 and controller >= 0, info


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = argv[1]
    verbose = "--verbose" in argv
    try:
        import kafka  # noqa: F401
        probe = probe_kafka_python
    except ImportError:
        probe = probe_raw
    try:
        ok, info = probe(bootstrap)
    except Exception as exc:  # not up yet: any error means "not ready"
        if verbose:
            print(f"not ready ({probe.__name__}): {exc!r}", file=sys.stderr)
        return 1
    if verbose:
        print(f"{'ready' if ok else 'not ready'} ({probe.__name__}): {info}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
