"""CENTRAL's socket edge for Monitors: one asyncio event loop, no thread per connection (SPEC §6, §13).

Each connection feeds a ``FrameReader``; frames are answered ACK (bad ones NACK,
logged) and handed to the service. Reads time out, so a dead peer is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Optional

from common import protocol as p
from common.domain import plain
from EV_Central_Server.central.service import AuthDenied, CentralService

logger = logging.getLogger(__name__)
IDLE_CLOSE_S = 30.0


class MonitorConnection:
    """One Monitor's session: its CP once authenticated, and a way to write frames."""

    def __init__(self, writer: asyncio.StreamWriter, peer: str):
        self.writer, self.peer = writer, peer
        self.cp_id: Optional[str] = None

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer."""
        if not self.writer.is_closing():
            self.writer.write(data)


class MonitorServer:
    """Accepts Monitors and turns their frames into service calls."""

    def __init__(self, service: CentralService, host: str, port: int, verify_secret=None, ssl_context=None):
        self.service, self.host, self.port = service, host, port
        self.verify_secret, self.ssl_context = verify_secret, ssl_context
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.ready = threading.Event()

    def run_forever(self) -> None:
        """Serve in the calling thread until the process ends."""
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, self.host, self.port, ssl=self.ssl_context,
                                            reuse_address=True, backlog=1024)
        logger.info("listening for Monitors on %s:%d", self.host, self.port)
        self.ready.set()
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "%s:%s" % (writer.get_extra_info("peername") or ("?", "?"))[:2]
        conn = MonitorConnection(writer, peer)
        frames = p.FrameReader()
        why = "EOF"
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(4096), IDLE_CLOSE_S)
                except asyncio.TimeoutError:
                    why = "silent for %d s" % IDLE_CLOSE_S
                    break
                if not data:
                    break
                frames.feed(data)
                if not await self._handle_items(conn, frames):
                    why = "EOT"
                    break
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            why = str(exc) or type(exc).__name__
        finally:
            try:
                if conn.cp_id:
                    self.service.monitor_lost(conn.cp_id, conn, why)
            finally:
                writer.close()

    async def _handle_items(self, conn: MonitorConnection, frames: p.FrameReader) -> bool:
        for item in frames:
            if isinstance(item, p.Control):
                if item.byte == p.EOT:
                    return False
                if item.byte == p.ENQ:
                    conn.write(p.control(p.ACK))
                continue
            conn.write(p.reply_for(item))
            if isinstance(item, p.BadFrame):
                logger.warning("NACK to %s: %s", conn.peer, p.describe(item))
                continue
            try:
                await self._dispatch(conn, item)
            except Exception:
                logger.exception("failed to handle %s from %s", item.opcode, conn.peer)
        return True

    async def _dispatch(self, conn: MonitorConnection, frame: p.Frame) -> None:
        fields = frame.as_dict()
        if frame.opcode == "AUTH":
            await self._authenticate(conn, fields["cp_id"], fields["secret"])
        elif frame.opcode == "STATUS":
            if conn.cp_id != fields["cp_id"]:
                logger.warning("STATUS for %s from %s before authentication; ignored", fields["cp_id"], conn.peer)
                return
            engine_ok = fields["engine"] == p.ENGINE_OK
            self.service.monitor_status(conn.cp_id, engine_ok, conn)
        else:
            logger.warning("opcode %s is not handled by CENTRAL (from %s)", frame.opcode, conn.peer)

    async def _authenticate(self, conn: MonitorConnection, cp_id: str, secret: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            cp = await loop.run_in_executor(None, self.service.authenticate, cp_id, secret, conn, self.verify_secret)
        except AuthDenied as exc:
            conn.write(p.encode(p.frame("AUTH_DENIED", cp_id, exc.code, str(exc))))
            return
        conn.cp_id = cp_id
        key_version, key = "0", ""
        conn.write(p.encode(p.frame("AUTH_OK", cp_id, cp.zone, plain(cp.price_eur_kwh), plain(cp.power_kw),
                                    cp.address.replace("#", " "), key_version, key)))
