"""Real backends for integration tests: small asyncio + h11 servers on 127.0.0.1.

`Backend` answers by path:
  /bytes/N        N deterministic bytes with Content-Length (streamed)
  /chunked/N      N deterministic bytes, chunked
  /upload         reads the body, answers {"length", "sha256"}
  /slow-upload/S  waits S seconds before reading the body, then as /upload
  /sleep/S        waits S seconds, then answers
  /status/N       answers status N
  /ws             WebSocket handshake (101), then echoes raw bytes
  /hop-headers    JSON echo, with hop-by-hop headers (Connection naming X-Backend-Hop,
                  Keep-Alive, Proxy-Connection) a proxy must not pass on
  /cors-headers   JSON echo, with the backend's own Access-Control-Allow-Origin: * and
                  Access-Control-Max-Age: 5
  anything else   JSON echo: name, method, target, headers, body length
HEAD /bytes/N answers the head of GET /bytes/N (Content-Length: N) and no body.
Each backend counts the TCP connections it accepted, so tests can assert reuse, and
the requests whose body it received completely (`completed`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import ssl

import h11

CHUNK = 64 * 1024


def pattern(n: int) -> bytes:
    """N deterministic bytes (a repeating 251-byte cycle, so offsets matter)."""
    block = bytes(range(251)) * (CHUNK // 251 + 1)
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


async def stop_server(
    server: asyncio.Server,
    handlers: set[asyncio.Task[object]],
    writers: set[asyncio.StreamWriter] | None = None,
) -> None:
    """Stop listening, close the connections and end the handlers still running (a
    /sleep, a tunnel) now, not after the loop closed."""
    server.close()
    for writer in list(writers or ()):
        writer.close()
    tasks = list(handlers)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)


class Backend:
    def __init__(self, name: str = "backend") -> None:
        self.name = name
        self.connections = 0
        self.requests = 0
        self.completed = 0  # requests read to their end (body included)
        self.port = 0
        self.received: list[h11.Request] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> Backend:
        """Listen on 127.0.0.1 (`tls`: speak HTTPS with that server context)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await stop_server(self._server, self._tasks, self._writers)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            await self._serve(conn, reader, writer)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(CHUNK))

    async def _serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            event = await self._next(conn, reader)
            if not isinstance(event, h11.Request):
                return
            self.requests += 1
            self.received.append(event)
            path = event.target.decode()
            if path == "/ws":
                await self._websocket(conn, event, reader, writer)
                return
            if path == "/upload" or not path.startswith(("/bytes/", "/chunked/", "/sleep/")):
                if path.startswith("/slow-upload/"):
                    await asyncio.sleep(float(path.rsplit("/", 1)[1]))
                length, digest = 0, hashlib.sha256()
                while True:
                    part = await self._next(conn, reader)
                    if isinstance(part, h11.Data):
                        length += len(part.data)
                        digest.update(part.data)
                    else:
                        break
                body = {"length": length, "sha256": digest.hexdigest()}
            else:
                while not isinstance(await self._next(conn, reader), h11.EndOfMessage):
                    pass
                body = {}
            self.completed += 1
            await self._respond(conn, event, path, body, writer)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _respond(
        self,
        conn: h11.Connection,
        request: h11.Request,
        path: str,
        upload: dict[str, object],
        writer: asyncio.StreamWriter,
    ) -> None:
        if path.startswith(("/bytes/", "/chunked/")):
            size = int(path.rsplit("/", 1)[1])
            headers = [("content-type", "application/octet-stream")]
            if path.startswith("/bytes/"):
                headers.append(("content-length", str(size)))
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
            if request.method == b"HEAD":
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                return
            data = pattern(size)
            for offset in range(0, size, CHUNK):
                writer.write(conn.send(h11.Data(data=data[offset : offset + CHUNK])) or b"")
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            return
        status = 200
        if path.startswith("/sleep/"):
            await asyncio.sleep(float(path.rsplit("/", 1)[1]))
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        body = json.dumps(
            {
                "name": self.name,
                "method": request.method.decode(),
                "target": request.target.decode("latin-1"),
                "headers": [[k.decode(), v.decode("latin-1")] for k, v in request.headers],
                **upload,
            }
        ).encode()
        no_body = request.method == b"HEAD" or status in (204, 304)
        headers = [("content-type", "application/json"), ("x-backend", self.name)]
        if path == "/hop-headers":
            headers += [("connection", "keep-alive, x-backend-hop"),
                        ("keep-alive", "timeout=5, max=100"), ("x-backend-hop", "secret"),
                        ("proxy-connection", "keep-alive"), ("x-end-to-end", "kept")]  # fmt: skip
        if path == "/cors-headers":  # a backend that sets its own CORS headers
            headers += [("access-control-allow-origin", "*"), ("access-control-max-age", "5")]
        if not no_body:
            headers.append(("content-length", str(len(body))))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        if not no_body:
            writer.write(conn.send(h11.Data(data=body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    async def _websocket(
        self,
        conn: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        key = dict(request.headers).get(b"sec-websocket-key", b"")
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        response = h11.InformationalResponse(
            status_code=101,
            headers=[(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                     (b"sec-websocket-accept", accept)],
        )  # fmt: skip
        writer.write(conn.send(response) or b"")
        await writer.drain()
        leftover, _ = conn.trailing_data
        if leftover:
            writer.write(leftover)
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
