"""The admin listener: ``/healthz``, ``/readyz`` (SPEC §7), served with h11.

Owns: a tiny HTTP/1.1 server for operators on its own port.  It is not the
data path, so it uses h11 and asyncio streams for clarity over speed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import h11

logger = logging.getLogger(__name__)

_MAX_REQUEST = 16 * 1024
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class AdminResponse:
    status: int
    body: bytes
    content_type: bytes = b"text/plain; charset=utf-8"


Handler = Callable[[], AdminResponse]


class AdminServer:
    """Answers GET requests from a path → handler map; each handler is synchronous and cheap."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            async with asyncio.timeout(_TIMEOUT):
                await self._serve(connection, reader, writer)
        except (TimeoutError, ConnectionError, h11.ProtocolError) as exc:
            logger.debug("admin connection ended: %r", exc)
        finally:
            writer.close()

    async def _serve(
        self, connection: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request: h11.Request | None = None
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
                continue
            if isinstance(event, h11.EndOfMessage) and request is not None:
                writer.write(self._encode(connection, request, self._respond(request)))
                await writer.drain()
                if connection.our_state is h11.MUST_CLOSE:
                    return
                connection.start_next_cycle()
                request = None
                continue
            if isinstance(event, (h11.ConnectionClosed, h11.PAUSED)):
                return

    def _respond(self, request: h11.Request) -> AdminResponse:
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if request.method not in (b"GET", b"HEAD"):
            return AdminResponse(405, b"method not allowed\n")
        handler = self.handlers.get(path)
        if handler is None:
            return AdminResponse(404, b"not found\n")
        return handler()

    @staticmethod
    def _encode(connection: h11.Connection, request: h11.Request, response: AdminResponse) -> bytes:
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", b"%d" % len(response.body)),
        ]
        data = connection.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if request.method != b"HEAD":
            data += connection.send(h11.Data(data=response.body)) or b""
        data += connection.send(h11.EndOfMessage()) or b""
        return data
