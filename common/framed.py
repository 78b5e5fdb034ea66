"""Blocking socket wrapper around ``common.protocol`` for the Monitor and the Engine.

One reader thread per connection turns bytes into items: frames are answered
ACK (bad ones NACK, and logged) and queued for the owner; ACK/NACK bytes are
queued for whoever is waiting on ``send``. Every read has a timeout, so a
silent peer is noticed. Nothing here knows what the opcodes mean.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Optional

from common import protocol as p

logger = logging.getLogger(__name__)


class LinkClosed(Exception):
    """The peer closed the connection, sent EOT, or went silent."""


class FramedConnection:
    """A framed, acknowledged connection over a connected socket."""

    def __init__(self, sock: socket.socket, peer: str = "peer", read_timeout_s: float = 1.0,
                 max_pending: int = p.DEFAULT_MAX_PENDING):
        self.sock, self.peer = sock, peer
        self.sock.settimeout(read_timeout_s)
        self.reader = p.FrameReader(max_pending)
        self.frames: "queue.Queue[Optional[p.Frame]]" = queue.Queue()
        self._acks: "queue.Queue[int]" = queue.Queue()
        self._send_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name=f"framed-{peer}", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, host: str, port: int, peer: str, timeout_s: float = 3.0) -> "FramedConnection":
        """Open a TCP connection and the session (ENQ answered by ACK)."""
        sock = socket.create_connection((host, port), timeout=timeout_s)
        conn = cls(sock, peer)
        conn._write(p.control(p.ENQ))
        if not conn._wait_ack(timeout_s):
            conn.close()
            raise LinkClosed(f"{peer} did not answer ENQ")
        return conn

    def send(self, frame: p.Frame, timeout_s: float = 2.0) -> bool:
        """Send a frame and wait for its ACK; False on NACK or timeout."""
        with self._send_lock:
            self._drop_stale_acks()
            self._write(p.encode(frame))
            return self._wait_ack(timeout_s)

    def recv(self, timeout_s: float) -> Optional[p.Frame]:
        """The next frame from the peer, or None after timeout; raises LinkClosed when closed."""
        try:
            item = self.frames.get(timeout=timeout_s)
        except queue.Empty:
            if self.closed.is_set():
                raise LinkClosed(self.peer) from None
            return None
        if item is None:
            raise LinkClosed(self.peer)
        return item

    def close(self) -> None:
        """Say EOT and close."""
        if not self.closed.is_set():
            try:
                self._write(p.control(p.EOT))
            except OSError:
                pass
        self._mark_closed()
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- internals ----
    def _write(self, data: bytes) -> None:
        if self.closed.is_set():
            raise LinkClosed(self.peer)
        try:
            with self._write_lock:  # the reader thread writes ACKs while an owner writes frames
                self.sock.sendall(data)
        except OSError as exc:
            self._mark_closed()
            raise LinkClosed(f"{self.peer}: {exc}") from exc

    def _drop_stale_acks(self) -> None:
        """ACK/NACK bytes already queued answer earlier frames whose wait timed out, not the next one."""
        while True:
            try:
                byte = self._acks.get_nowait()
            except queue.Empty:
                return
            if byte == -1:
                raise LinkClosed(self.peer)

    def _wait_ack(self, timeout_s: float) -> bool:
        while True:
            try:
                byte = self._acks.get(timeout=timeout_s)
            except queue.Empty:
                return False
            if byte == -1:
                raise LinkClosed(self.peer)
            return byte == p.ACK

    def _mark_closed(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.frames.put(None)
            self._acks.put(-1)

    def _read_loop(self) -> None:
        try:
            while not self.closed.is_set():
                try:
                    data = self.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                self.reader.feed(data)
                if not self._handle_items():
                    break
        except LinkClosed:  # answering ACK/NACK failed: the peer is gone
            pass
        finally:
            self._mark_closed()

    def _handle_items(self) -> bool:
        for item in self.reader:
            if isinstance(item, p.Control):
                if item.byte == p.EOT:
                    return False
                if item.byte == p.ENQ:
                    self._write(p.control(p.ACK))
                else:
                    self._acks.put(item.byte)
                continue
            reply = p.reply_for(item)
            if isinstance(item, p.BadFrame):
                logger.warning("bad frame from %s: %s", self.peer, p.describe(item))
            self._write(reply)
            if isinstance(item, p.Frame):
                self.frames.put(item)
        return True
