"""The driver's I/O edge with fake Kafka adapters: lines in, messages out, quit, file mode exit."""
from __future__ import annotations

import argparse
import io
import threading

from common import messages as m
from EV_Driver.EV_Driver import DriverApp, build_parser
from EV_Driver.session import DriverSession, SystemClock


class FakeZoneClient:
    """Records what the app sends; comes up at start; CENTRAL replies via ``reply``."""

    def __init__(self, on_message, on_link, replies=None):
        self.on_message, self.on_link = on_message, on_link
        self.sent: list[m.Message] = []
        self.replies = replies or (lambda msg: [])
        self.stopped = False

    def start(self):
        self.on_link(True)

    def stop(self):
        self.stopped = True

    def send(self, message):
        self.sent.append(message)
        for reply in self.replies(message):
            self.on_message(m.Envelope(m.new_id(), m.now_iso(), "CENTRAL", reply))
        return "id"


class FakeStatusReader:
    def poll(self, timeout_ms=200):
        threading.Event().wait(timeout_ms / 1000)
        return [m.Envelope("s", m.now_iso(), "CENTRAL", m.NetworkStatus(cps=[{"cp_id": "ALC1", "state": "ACTIVADO"}]))]

    def close(self):
        pass


class SlowStdin:
    """Lines with a pause between them, as a person (or a pipe) would type them."""

    def __init__(self, *lines, pause=0.3):
        self.lines, self.pause = lines, pause

    def __iter__(self):
        for line in self.lines:
            yield line + "\n"
            threading.Event().wait(self.pause)


def build(argv, stdin, replies=None):
    args = build_parser().parse_args(argv)
    args.broker_text = "127.0.0.1:9092"
    out = io.StringIO()
    holder = {}

    def client_factory(**callbacks):
        holder["client"] = FakeZoneClient(replies=replies, **callbacks)
        return holder["client"]

    session = DriverSession(args.client_id, SystemClock(), reply_timeout_s=args.reply_timeout_s, wait_s=args.wait_s)
    app = DriverApp(args, session, out, client_factory, FakeStatusReader, stdin=stdin)
    return app, holder["client"], out


def deny_everything(msg):
    if isinstance(msg, m.RequestSupply):
        return [m.SupplyDenied(msg.request_id, msg.cp_id, "BUSY", "busy")]
    return []


def run_bounded(app, services=None, timeout=10):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", app.run(services)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "driver app did not stop"
    return result["rc"]


def test_console_lines_become_messages_and_quit_stops_the_link():
    app, client, out = build(["h:1", "d1"], SlowStdin("request ALC1", "quit"), deny_everything)
    assert run_bounded(app) == 0
    assert client.sent == [m.RequestSupply("ALC1", "d1", client.sent[0].request_id)]
    assert "DENEGADO en ALC1: BUSY" in out.getvalue() and client.stopped


def test_file_mode_with_exit_when_done_exits_after_the_summary():
    app, client, out = build(["h:1", "d1", "--wait-s", "0", "--exit-when-done"], io.StringIO(""), deny_everything)
    assert run_bounded(app, ["ALC1", "XXX9"]) == 0
    assert [s.cp_id for s in client.sent] == ["ALC1", "XXX9"]
    assert "[2/2]" in out.getvalue() and "denied: 2" in out.getvalue()


def test_parser_defaults():
    args = build_parser().parse_args(["h:1", "d1"])
    assert isinstance(args, argparse.Namespace)
    assert (args.zone, args.wait_s, args.reply_timeout_s, args.exit_when_done) == ("default", 4.0, 10.0, False)
