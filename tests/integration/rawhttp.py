"""A raw HTTP/1.x client over asyncio streams, for tests that need exact bytes on the wire.

It writes exactly what a test gives it and parses responses itself (RFC 9112 §6.3
framing), so it sees what ingressd really sent: a body byte too many after a HEAD
or a 204 shows up as garbage where the next status line should be.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from dataclasses import dataclass, field
from types import TracebackType

TIMEOUT = 5.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive); several are joined by ", "."""
        values = self.headers_named(name)
        return ", ".join(values) if values else None

    def headers_named(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


class RawClient:
    """One TCP connection to 127.0.0.1:`port`; use as ``async with RawClient(port) as c``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def reader(self) -> asyncio.StreamReader:
        assert self._reader is not None, "not connected"
        return self._reader

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def send(self, data: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        await self._writer.drain()

    async def read_head(self, timeout: float = TIMEOUT) -> Response:
        """The next response head (status line and headers), body not read."""
        async with asyncio.timeout(timeout):
            raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), f"not a status line: {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip(" \t")))
        return Response(version, int(status), reason[0] if reason else "", headers)

    async def read_response(self, method: str = "GET", timeout: float = TIMEOUT) -> Response:
        """The next final response with its body, framed as RFC 9112 §6.3 says."""
        async with asyncio.timeout(timeout):
            response = await self.read_head()
            while 100 <= response.status < 200 and response.status != 101:
                response = await self.read_head()
            response.body = await self._body(method, response)
        return response

    async def _body(self, method: str, response: Response) -> bytes:
        if method == "HEAD" or response.status in (204, 304) or response.status < 200:
            return b""
        coding = (response.header("transfer-encoding") or "").lower()
        if coding:
            assert coding == "chunked", f"unexpected Transfer-Encoding {coding!r}"
            return await self._chunked()
        length = response.header("content-length")
        if length is not None:
            return await self.reader.readexactly(int(length))
        return await self.reader.read()  # until close

    async def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = await self.reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields
                return bytes(body)
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n", "chunk not followed by CRLF"

    async def read_exactly(self, n: int, timeout: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.reader.readexactly(n)

    async def read_until_close(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the peer closes (a reset counts as a close)."""
        data = bytearray()
        async with asyncio.timeout(timeout):
            try:
                while chunk := await self.reader.read(65536):
                    data += chunk
            except ConnectionResetError:
                pass
        return bytes(data)

    async def is_closed_by_peer(self, timeout: float) -> bool:
        """True if the peer closes within `timeout` without sending anything more."""
        try:
            rest = await self.read_until_close(timeout)
        except TimeoutError:
            return False
        assert rest == b"", f"unexpected bytes before the close: {rest[:200]!r}"
        return True


async def open_websocket(raw: RawClient, early: bytes = b"") -> None:
    """The handshake through ingressd to the backend's /ws (`early` bytes in the same
    write, right behind it); asserts the 101."""
    key = base64.b64encode(b"sixteen byte key")
    await raw.send(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n%s" % (key, early)
    )
    head = await raw.read_head()
    assert head.status == 101, head
    assert (head.header("upgrade") or "").lower() == "websocket"
    assert "upgrade" in (head.header("connection") or "").lower()
    expected = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    assert head.header("sec-websocket-accept") == expected


async def assert_echoes(raw: RawClient, data: bytes) -> None:
    await raw.send(data)
    assert await raw.read_exactly(len(data)) == data
