"""ingressd's own answers (SPEC §4): 400, 404, 408, 413, 414, 431, 502, 503, 504, each a
small plain-text body, and a request ingressd refuses never reaches a backend."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from tests import manifests
from tests.integration.conftest import (
    HOST,
    StartBackend,
    StartIngressd,
    app,
    client,
    dead_port,
)
from tests.integration.rawhttp import RawClient, Response


def assert_own_answer(response: Response, status: int) -> None:
    """A response written by ingressd itself: the status and a short plain-text body."""
    assert response.status == status, response
    assert (response.header("content-type") or "").startswith("text/plain"), response
    assert response.body.startswith(b"%d" % status) and len(response.body) < 200, response


MALFORMED = {
    "not-http": b"THIS IS NOT HTTP\r\n\r\n",
    "bad-version": b"GET / HTTP/9.9x\r\nHost: app.test\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : app.test\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "cl-and-te": (
        b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bad-chunk-size": (
        b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_request_is_answered_400_and_closed(
    backends: StartBackend, ingressd: StartIngressd, request_bytes: bytes
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(request_bytes)
        response = await raw.read_response()
        assert_own_answer(response, 400)
        assert await raw.is_closed_by_peer(3.0)
    assert backend.completed == 0


async def test_no_matching_path_is_answered_404(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend, paths=["/api"]))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET /other HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert_own_answer(await raw.read_response(), 404)
        # ingressd's 404 keeps the connection usable.
        await raw.send(b"GET /api/x HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await raw.read_response()).status == 200
    assert backend.requests == 1


async def test_client_header_timeout_answers_408(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend), "--client-header-timeout", "1")
    async with RawClient(proxy.ports["http"]) as raw:
        started = time.monotonic()
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n")  # half a head
        response = await raw.read_response(timeout=5.0)
        elapsed = time.monotonic() - started
        assert_own_answer(response, 408)
        assert 0.8 <= elapsed <= 3.0, f"408 after {elapsed:.2f} s"
        assert await raw.is_closed_by_peer(3.0)
    assert backend.requests == 0


async def test_client_header_timeout_bounds_a_trickled_head(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    """A head sent one byte at a time (slowloris) is bounded as a whole, not per read."""
    backend = await backends()
    proxy = await ingressd(app(backend), "--client-header-timeout", "1")
    head = b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: " + b"s" * 100

    async with RawClient(proxy.ports["http"]) as raw:

        async def trickle() -> None:
            for byte in head:
                await raw.send(bytes([byte]))
                await asyncio.sleep(0.1)

        started = time.monotonic()
        sender = asyncio.create_task(trickle())
        try:
            response = await raw.read_response(timeout=6.0)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        elapsed = time.monotonic() - started
    assert_own_answer(response, 408)
    assert 0.8 <= elapsed <= 3.0, f"408 after {elapsed:.2f} s"
    assert backend.requests == 0


ONE_KIB_LIMIT = {"nginx.ingress.kubernetes.io/proxy-body-size": "1k"}


async def test_body_over_proxy_body_size_is_answered_413(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend, annotations=ONE_KIB_LIMIT))
    async with client(proxy) as http:
        small = await http.post("/upload", content=b"x" * 1024)
        large = await http.post("/upload", content=b"x" * 2048)
    assert small.status_code == 200
    assert large.status_code == 413
    assert large.headers["content-type"].startswith("text/plain")
    assert backend.completed == 1  # only the small one


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_413_reaches_a_client_still_sending_its_body(
    backends: StartBackend, ingressd: StartIngressd, framing: str
) -> None:
    """ingressd refuses the body while more of it is on its way (the client streams at
    its own pace): the client must still read the 413, not a connection reset.  RFC 9112
    §9.6: close in stages (half-close, drain the input for a while), as nginx's
    lingering close does."""
    backend = await backends()
    proxy = await ingressd(app(backend, annotations=ONE_KIB_LIMIT))

    async def paced_body() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 256
            await asyncio.sleep(0.02)

    headers = {"content-length": "2048"} if framing == "content-length" else {}
    async with client(proxy) as http:
        response = await http.post("/upload", content=paced_body(), headers=headers)
    assert response.status_code == 413
    assert backend.completed == 0


async def test_request_line_over_8k_is_answered_414(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with RawClient(proxy.ports["http"]) as raw:
        # Just under the limit passes...
        await raw.send(b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await raw.read_response()).status == 200
        # ...over it does not.
        await raw.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert_own_answer(await raw.read_response(), 414)
    assert backend.requests == 1


async def test_headers_over_32k_are_answered_431(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))

    def padding(count: int) -> bytes:
        return b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(count))

    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n" + padding(28) + b"\r\n")
        assert (await raw.read_response()).status == 200  # 28 KiB of headers pass
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n" + padding(40) + b"\r\n")
        assert_own_answer(await raw.read_response(), 431)
    assert backend.requests == 1


async def test_unreachable_backend_is_answered_502(ingressd: StartIngressd) -> None:
    proxy = await ingressd(app(dead_port()))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response()
    assert_own_answer(response, 502)
    assert response.header("x-request-id")


async def test_service_without_endpoints_is_answered_503(ingressd: StartIngressd) -> None:
    service, _endpoints = manifests.service("app", [1])
    proxy = await ingressd([service, manifests.ingress("app", HOST, {"/": "app"})])
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert_own_answer(await raw.read_response(), 503)


async def test_backend_read_timeout_answers_504(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    read_timeout = {"nginx.ingress.kubernetes.io/proxy-read-timeout": "1"}
    proxy = await ingressd(app(backend, annotations=read_timeout))
    async with RawClient(proxy.ports["http"]) as raw:
        started = time.monotonic()
        await raw.send(b"GET /sleep/3 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response(timeout=5.0)
        elapsed = time.monotonic() - started
    assert_own_answer(response, 504)
    assert 0.8 <= elapsed <= 2.5, f"504 after {elapsed:.2f} s"
