"""Hardening (issue "Hardening"): limits, resource exhaustion, broken peers on both sides.

A proxy meets clients that vanish, backends that lie, and a process that runs out
of descriptors.  Each test names the failure and what ingressd must still do:
answer with the right status, never hand on a message it could not frame, and keep
serving the next request.  Misbehaving backends are raw asyncio servers
(`ScriptedBackend`) that write exactly the bytes a test gives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import h11
import pytest

from tests.backends import stop_server
from tests.integration.conftest import (
    StartBackend,
    StartIngressd,
    app,
    client,
    dead_port,
    wait_until,
)
from tests.integration.rawhttp import RawClient, Response

GET = b"GET /%s HTTP/1.1\r\nHost: app.test\r\n\r\n"


def get(path: str = "") -> bytes:
    return GET % path.encode()


def assert_own_answer(response: Response, status: int) -> None:
    """A response written by ingressd itself: the status and a short plain-text body."""
    assert response.status == status, response
    assert (response.header("content-type") or "").startswith("text/plain"), response
    assert response.body.startswith(b"%d" % status) and len(response.body) < 200, response


# --------------------------------------------------------------------------- scripted backend

Answer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class ScriptedBackend:
    """A backend that reads each request head and lets `answer` write raw bytes.

    `answer(head, reader, writer)` returns True to read the next request on the same
    connection, False to close it.  Request bodies are not read: tests send none.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.heads: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> ScriptedBackend:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await stop_server(self._server, self._tasks)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                if not await self.answer(head, reader, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


StartScripted = Callable[[Answer], Awaitable[ScriptedBackend]]


@pytest.fixture
async def scripted() -> AsyncIterator[StartScripted]:
    """``await scripted(answer)`` → a started `ScriptedBackend`, stopped at the end.

    Request this fixture before `ingressd` so that ingressd stops first.
    """
    started: list[ScriptedBackend] = []

    async def start(answer: Answer) -> ScriptedBackend:
        backend = await ScriptedBackend(answer).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


def replies(*responses: bytes, keep: bool = True) -> Answer:
    """Answer the n-th request with `responses[n]` (the last one for later requests)."""
    count = 0

    async def answer(
        head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        nonlocal count
        writer.write(responses[min(count, len(responses) - 1)])
        count += 1
        await writer.drain()
        return keep

    return answer


def h11_sees_complete_response(raw: bytes) -> bool:
    """Whether an HTTP client reading `raw` and then the close gets a complete response."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "app.test")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.EndOfMessage):
                return True
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return False
    except h11.RemoteProtocolError:
        return False


# --------------------------------------------------------------------------- (a) connection limit


async def test_over_max_connections_answers_503_and_the_admitted_ones_keep_working(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend), "--max-connections", "5")
    port = proxy.ports["http"]
    async with contextlib.AsyncExitStack() as stack:
        admitted = [await stack.enter_async_context(RawClient(port)) for _ in range(5)]
        for i, raw in enumerate(admitted):  # each one served: all five are counted now
            await raw.send(get(f"first/{i}"))
            assert (await raw.read_response()).status == 200
        async with RawClient(port) as sixth:
            assert_own_answer(await sixth.read_response(), 503)
            assert await sixth.is_closed_by_peer(3.0), "the refused connection stays open"
        for i, raw in enumerate(admitted):
            await raw.send(get(f"again/{i}"))
            assert (await raw.read_response()).status == 200, f"admitted connection {i}"
        # A slot freed by a client that leaves is given to the next one.
        await admitted.pop().close()
        deadline = time.monotonic() + 3.0
        while True:
            async with RawClient(port) as late:
                await late.send(get("late"))
                response = await late.read_response()
            if response.status == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # the close may not have reached ingressd yet
        assert response.status == 200, response
    assert backend.requests == 11


# --------------------------------------------------------------------------- (b) EMFILE

NOFILE = 64


def low_nofile() -> None:
    """In the child: at most NOFILE open descriptors (soft and hard)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


async def test_running_out_of_descriptors_does_not_stop_the_server(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    """EMFILE on accept: ingressd survives, and serves again once descriptors are free."""
    backend = await backends()
    proxy = await ingressd(app(backend), preexec_fn=low_nofile)
    port = proxy.ports["http"]
    assert proxy.open_fds() < NOFILE
    async with client(proxy) as http:
        assert (await http.get("/before")).status_code == 200
    sockets: list[socket.socket] = []
    try:
        for _ in range(2 * NOFILE):  # the kernel queues them; ingressd hits the limit accepting
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        await wait_until(lambda: proxy.open_fds() >= NOFILE - 2, 5.0, "ingressd at its fd limit")
        await asyncio.sleep(0.5)  # let it meet EMFILE a few more times
    finally:
        for sock in sockets:
            sock.close()
    assert proxy.proc is not None and proxy.proc.poll() is None, "ingressd died:\n" + "\n".join(
        proxy.lines
    )
    await wait_until(lambda: proxy.open_fds() < NOFILE // 2, 10.0, "ingressd to free its fds")
    async with client(proxy) as http:
        response = await http.get("/after")
    assert response.status_code == 200, response.text
    assert response.json()["target"] == "/after"
    assert any("open-file limit" in line for line in proxy.lines), "no warning was logged"


# --------------------------------------------------------------------------- (c) silent backend


async def test_backend_that_never_answers_gets_504_at_the_read_timeout(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    async def never(head: bytes, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> bool:
        await reader.read()  # hold the connection until ingressd gives up on it
        return False

    backend = await scripted(never)
    read_timeout = {"nginx.ingress.kubernetes.io/proxy-read-timeout": "1"}
    proxy = await ingressd(app(backend.port, annotations=read_timeout))
    async with RawClient(proxy.ports["http"]) as raw:
        started = time.monotonic()
        await raw.send(get("silent"))
        response = await raw.read_response(timeout=5.0)
        elapsed = time.monotonic() - started
    assert_own_answer(response, 504)
    assert 0.8 <= elapsed <= 2.5, f"504 after {elapsed:.2f} s"
    assert len(backend.heads) == 1  # a GET that timed out is not retried


# --------------------------------------------------------------------------- (d) retry


@pytest.mark.parametrize("dead_first", [True, False], ids=["dead-first", "dead-second"])
async def test_refused_endpoint_is_retried_on_the_live_one(
    backends: StartBackend, ingressd: StartIngressd, dead_first: bool
) -> None:
    backend = await backends()
    endpoints = (dead_port(), backend) if dead_first else (backend, dead_port())
    proxy = await ingressd(app(*endpoints))
    async with client(proxy) as http:
        statuses = [(await http.get(f"/keepalive/{i}")).status_code for i in range(6)]
    for i in range(6):
        async with RawClient(proxy.ports["http"]) as raw:
            await raw.send(get(f"fresh/{i}"))
            statuses.append((await raw.read_response()).status)
    assert statuses == [200] * 12
    assert backend.requests == 12


@pytest.mark.parametrize(("tries", "status"), [("1", 502), (None, 502), ("4", 200), ("0", 200)])
async def test_proxy_next_upstream_tries_bounds_the_endpoints_tried(
    backends: StartBackend, ingressd: StartIngressd, tries: str | None, status: int
) -> None:
    """Three refusing endpoints before the live one: the default (3) and 1 give up with 502,
    4 and 0 (no limit but the endpoints) reach the live one."""
    backend = await backends()
    annotations = (
        {} if tries is None else {"nginx.ingress.kubernetes.io/proxy-next-upstream-tries": tries}
    )
    proxy = await ingressd(
        app(dead_port(), dead_port(), dead_port(), backend, annotations=annotations)
    )
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get("first"))
        assert (await raw.read_response()).status == status
    assert backend.requests == (status == 200)


# --------------------------------------------------------------------------- (e) client closes


@pytest.mark.parametrize("path", ["now", "sleep/0.3"])
async def test_half_closed_client_still_gets_its_response(
    backends: StartBackend, ingressd: StartIngressd, path: str
) -> None:
    """shutdown(SHUT_WR) after a complete request: the response still comes, then the close."""
    backend = await backends()
    proxy = await ingressd(app(backend))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.ports["http"])
    try:
        writer.write(get(path))
        writer.write_eof()
        async with asyncio.timeout(5.0):
            raw = await reader.read()  # until ingressd closes
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]
    assert h11_sees_complete_response(raw), raw[:400]
    assert backend.completed == 1


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


UPLOAD_HEADS = {
    "content-length": b"Content-Length: 1000000\r\n",
    "chunked": b"Transfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("framing", UPLOAD_HEADS.keys())
async def test_client_reset_mid_body_never_completes_the_request(
    backends: StartBackend, ingressd: StartIngressd, framing: str
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    part = b"x" * 100_000
    body = b"%x\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.ports["http"])
    writer.write(b"POST /upload HTTP/1.1\r\nHost: app.test\r\n" + UPLOAD_HEADS[framing] + b"\r\n")
    writer.write(body)
    await writer.drain()
    await wait_until(lambda: backend.requests == 1, 5.0, "the upload to reach the backend")
    reset(writer)
    # ingressd goes on serving, and the connection that carried half a body is not reused.
    async with client(proxy) as http:
        for i in range(3):
            response = await http.get(f"/after/{i}")
            assert response.status_code == 200, response.text
            assert response.json()["target"] == f"/after/{i}"
    assert backend.completed == 3  # the three GETs, never the upload
    assert [r.target for r in backend.received][1:] == [b"/after/0", b"/after/1", b"/after/2"]


# --------------------------------------------------------------------------- (f) broken backends


async def test_invalid_status_line_is_answered_502(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    backend = await scripted(replies(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"))
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get())
        assert_own_answer(await raw.read_response(), 502)


async def test_body_shorter_than_content_length_is_cut_not_completed(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    """The backend promises 100 bytes, sends 10 and closes: the client must see a cut
    connection, never a complete (shorter) response it could take for the real one."""
    backend = await scripted(
        replies(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"0123456789", keep=False)
    )
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get())
        received = await raw.read_until_close(timeout=5.0)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    assert b"0123456789" in received  # what the backend did send is passed on...
    assert not h11_sees_complete_response(received), received  # ...but never as complete


async def test_content_length_with_transfer_encoding_is_answered_502(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    backend = await scripted(
        replies(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
    )
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get())
        assert_own_answer(await raw.read_response(), 502)


async def test_body_after_204_is_dropped_and_the_connection_not_reused(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    backend = await scripted(
        replies(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
    )
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get("no-content"))
        first = await raw.read_response()
        assert first.status == 204, first
        assert first.body == b""
        await raw.send(get("next"))
        second = await raw.read_response()  # garbage here if "hello" leaked to the client
    assert second.status == 200, second
    assert second.body == b"ok"
    assert backend.connections == 2, "the connection that sent bytes after a 204 was reused"


async def test_backend_cannot_strip_its_content_length_with_connection(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    """`Connection: content-length` from a backend must not leave the client with an
    unframed keep-alive response (the next response would be read as its body)."""
    backend = await scripted(
        replies(b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello")
    )
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        for path in ("first", "second"):
            await raw.send(get(path))
            answer = await raw.read_response()
            assert answer.status == 200, answer
            assert answer.header("content-length") == "5", answer
            assert answer.body == b"hello"


async def test_103_early_hints_then_200_reaches_the_client_as_200(
    scripted: StartScripted, ingressd: StartIngressd
) -> None:
    backend = await scripted(
        replies(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
    )
    proxy = await ingressd(app(backend.port))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get())
        response = await raw.read_response()
        assert response.status == 200, response
        assert response.body == b"ok"
        await raw.send(get("again"))  # the connection is still in step
        assert (await raw.read_response()).body == b"ok"


async def test_upgrade_h2c_is_stripped_and_answered_normally(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(
            b"GET /h2c HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        response = await raw.read_response()
    assert response.status == 200, response
    assert "upgrade" not in (response.header("connection") or "").lower(), response
    seen = [name.decode().lower() for name, _ in backend.received[0].headers]
    assert "upgrade" not in seen, seen
    assert "http2-settings" not in seen, seen
    connection = [v for n, v in backend.received[0].headers if n == b"connection"]
    assert all(b"upgrade" not in value.lower() for value in connection), connection


async def test_header_named_in_connection_never_reaches_the_backend(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\n"
            b"X-Secret: for-the-next-hop-only\r\nX-Kept: yes\r\n\r\n"
        )
        assert (await raw.read_response()).status == 200
    names = {name for name, _ in backend.received[0].headers}
    assert b"x-secret" not in names, names
    assert b"x-kept" in names, names


# --------------------------------------------------------------------------- early answers


def answer_before_the_body(*, then_read: bool) -> Answer:
    """Answer 413 as soon as the head is in, without reading the body first.

    `then_read`: afterwards drain and drop the body, as nginx's lingering close does;
    otherwise never read again, so the request bytes back up into ingressd.
    """

    async def answer(
        head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
        await writer.drain()
        if then_read:
            while await reader.read(1 << 20):
                pass
        else:
            await asyncio.sleep(3600)  # cancelled when the backend stops
        return False

    return answer


@pytest.mark.parametrize("then_read", [True, False], ids=["backend-drains", "backend-stalls"])
async def test_backend_answering_a_large_upload_early_is_answered_then_closed(
    scripted: StartScripted, ingressd: StartIngressd, then_read: bool
) -> None:
    """The backend refuses a 64 MB upload before reading it: the client gets that answer
    while still sending, then a close (the rest of its body can no longer be framed on
    that connection); nothing hangs and the next connection is served."""
    backend = await scripted(answer_before_the_body(then_read=then_read))
    unlimited = {"nginx.ingress.kubernetes.io/proxy-body-size": "0"}
    proxy = await ingressd(app(backend.port, annotations=unlimited))
    size = 64 * 1024 * 1024
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(
            b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % size
        )

        async def upload() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(size // (1 << 20)):
                    await raw.send(b"x" * (1 << 20))

        sending = asyncio.create_task(upload())
        try:
            response = await raw.read_response(timeout=10.0)
            assert response.status == 413, response
            assert response.body == b"too large"
            assert await raw.is_closed_by_peer(timeout=10.0)
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(get())
        assert (await raw.read_response()).status == 413  # the backend's answer, again
