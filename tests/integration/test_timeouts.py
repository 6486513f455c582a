"""Timeouts with short values (SPEC §4): connect, client body, keep-alive idle.

The backend read timeout (504) and the client header timeout (408) are in
test_errors.py, next to the other statuses.
"""

from __future__ import annotations

import time

from tests.integration.conftest import StartBackend, StartIngressd, app
from tests.integration.rawhttp import RawClient


async def test_connect_timeout_answers_504(ingressd: StartIngressd, full_backlog: int) -> None:
    connect_timeout = {"nginx.ingress.kubernetes.io/proxy-connect-timeout": "1"}
    proxy = await ingressd(app(full_backlog, annotations=connect_timeout))
    async with RawClient(proxy.ports["http"]) as raw:
        started = time.monotonic()
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response(timeout=8.0)
        elapsed = time.monotonic() - started
    assert response.status == 504, response
    assert 0.8 <= elapsed <= 3.0, f"504 after {elapsed:.2f} s"


async def test_client_body_timeout_closes_and_never_completes_the_request(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend), "--client-body-timeout", "1")
    async with RawClient(proxy.ports["http"]) as raw:
        started = time.monotonic()
        await raw.send(
            b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        )
        rest = await raw.read_until_close(timeout=5.0)
        elapsed = time.monotonic() - started
    assert 0.8 <= elapsed <= 3.0, f"closed after {elapsed:.2f} s"
    assert rest == b"" or rest.startswith(b"HTTP/1.1 408 "), rest[:200]
    assert backend.completed == 0


async def test_idle_keepalive_connection_is_closed(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()), "--keepalive-timeout", "1")
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await raw.read_response()).status == 200
        started = time.monotonic()
        assert await raw.is_closed_by_peer(4.0), "idle connection still open after 4 s"
        elapsed = time.monotonic() - started
    assert 0.8 <= elapsed <= 3.0, f"closed after {elapsed:.2f} s idle"
    async with RawClient(proxy.ports["http"]) as silent:  # never sends a byte
        assert await silent.is_closed_by_peer(4.0), "silent connection still open after 4 s"
