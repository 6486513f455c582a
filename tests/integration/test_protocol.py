"""HTTP/1.x on the wire through the proxy (SPEC §4): HTTP/1.0 clients, pipelining, bodyless
responses, Expect: 100-continue and the WebSocket tunnel, checked byte by byte."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import time

import pytest

from tests.backends import pattern
from tests.integration.conftest import StartBackend, StartIngressd, app
from tests.integration.rawhttp import RawClient, assert_echoes, open_websocket


async def test_http10_client_gets_a_response_then_the_close(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET /old HTTP/1.0\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response()
        assert response.status == 200, response
        assert json.loads(response.body)["target"] == "/old"
        assert await raw.is_closed_by_peer(3.0), "HTTP/1.0 connection left open"


async def test_chunked_response_to_http10_client_is_delimited_by_close(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    size = 300_000
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET /chunked/%d HTTP/1.0\r\nHost: app.test\r\n\r\n" % size)
        head = await raw.read_head()
        body = await raw.read_until_close()
    assert head.status == 200, head
    assert head.header("transfer-encoding") is None  # HTTP/1.0 knows no chunked coding
    assert head.header("content-length") is None
    assert body == pattern(size)


async def test_pipelined_requests_are_answered_in_order(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    targets = ["/sleep/0.3", "/second?x=2", "/third"]  # the first answer is the slowest
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(
            b"".join(b"GET %s HTTP/1.1\r\nHost: app.test\r\n\r\n" % t.encode() for t in targets)
        )
        responses = [await raw.read_response() for _ in targets]
    assert [r.status for r in responses] == [200, 200, 200]
    assert [json.loads(r.body)["target"] for r in responses] == targets
    assert backend.requests == 3


BODYLESS = {
    "head": (b"HEAD /bytes/1000 HTTP/1.1\r\nHost: app.test\r\n\r\n", "HEAD", 200),
    "204": (b"GET /status/204 HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET", 204),
    "304": (b"GET /status/304 HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET", 304),
    "head-own-404": (b"HEAD / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n", "HEAD", 404),
}


@pytest.mark.parametrize("case", BODYLESS.values(), ids=BODYLESS.keys())
async def test_bodyless_responses_carry_no_body_bytes(
    backends: StartBackend, ingressd: StartIngressd, case: tuple[bytes, str, int]
) -> None:
    request, method, status = case
    proxy = await ingressd(app(await backends()))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(request)
        response = await raw.read_response(method)
        assert response.status == status, response
        if status == 200:
            assert response.header("content-length") == "1000"  # the GET's length, kept
        elif method == "GET":
            assert response.header("content-length") in (None, "0")
            assert response.header("transfer-encoding") is None
        # A body byte after the head would now stand where the next status line must.
        await raw.send(b"GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n")
        after = await raw.read_response()
    assert after.status == 200, after
    assert json.loads(after.body)["target"] == "/after"


async def test_expect_100_continue(backends: StartBackend, ingressd: StartIngressd) -> None:
    proxy = await ingressd(app(await backends()))
    body = b"hello, continue"
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(
            b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n"
            b"Expect: 100-continue\r\n\r\n" % len(body)
        )
        assert await raw.read_exactly(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        await raw.send(body)
        response = await raw.read_response()
    assert response.status == 200, response
    echo = json.loads(response.body)
    assert echo["length"] == len(body)
    assert echo["sha256"] == hashlib.sha256(body).hexdigest()


async def test_websocket_upgrade_becomes_a_byte_tunnel(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    async with RawClient(proxy.ports["http"]) as raw:
        await open_websocket(raw)
        await assert_echoes(raw, b"\x81\x05hello")
        await assert_echoes(raw, b"GET / HTTP/1.1\r\n\r\n")  # not parsed as HTTP any more
        await assert_echoes(raw, pattern(1_000_000))


async def test_bytes_right_behind_the_upgrade_request_reach_the_tunnel(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    async with RawClient(proxy.ports["http"]) as raw:
        early = b"sent with the handshake"
        await open_websocket(raw, early)
        assert await raw.read_exactly(len(early)) == early
        await assert_echoes(raw, b"and after it")


def _answers_ready_with_half_closes(
    pid: int, proxy_port: int, backend: socket.socket
) -> list[bytes]:
    """Each backend answer and its client's FIN reach ingressd while it is stopped, so
    one poll of its loop sees both (what a busy proxy sees from `nc -N`-style clients).
    Three rounds: which of the two the poll hands over first varies."""
    answers: list[bytes] = []
    upstream: socket.socket | None = None
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as client_sock:
                client_sock.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
                if upstream is None:  # later rounds reuse the pooled backend connection
                    upstream, _ = backend.accept()
                    upstream.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += upstream.recv(65536)
                os.kill(pid, signal.SIGSTOP)
                try:
                    upstream.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n")
                    time.sleep(0.05)  # both in ingressd's socket buffers before it runs again
                    client_sock.shutdown(socket.SHUT_WR)
                    time.sleep(0.05)
                finally:
                    os.kill(pid, signal.SIGCONT)
                received = b""
                while chunk := client_sock.recv(65536):
                    received += chunk
                answers.append(received)
    finally:
        if upstream is not None:
            upstream.close()
    return answers


async def test_a_response_ready_with_the_clients_half_close_is_still_delivered(
    ingressd: StartIngressd,
) -> None:
    """ingressd sends a connection's output at the end of a loop iteration
    (outbox.py); a FIN handled in the same iteration must not drop it."""
    with socket.socket() as backend:
        backend.bind(("127.0.0.1", 0))
        backend.listen(8)
        backend.settimeout(5)
        proxy = await ingressd(app(backend.getsockname()[1]))
        assert proxy.proc is not None
        answers = await asyncio.to_thread(
            _answers_ready_with_half_closes, proxy.proc.pid, proxy.ports["http"], backend
        )
    for received in answers:
        assert received.startswith(b"HTTP/1.1 200 OK\r\n"), answers
        assert received.endswith(b"\r\n\r\nhello\n"), answers
