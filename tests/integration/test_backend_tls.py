"""HTTPS to the backend (SPEC §6, backend-protocol: HTTPS): TLS to the endpoint, pooled
and reused like plain connections, no certificate verification and no SNI (ingress-nginx's
default); a backend that does not speak TLS is a 502 at once, never a hang."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import trustme

from tests import manifests
from tests.backends import Backend
from tests.integration.conftest import Obj, StartBackend, StartIngressd

PREFIX = "nginx.ingress.kubernetes.io/"


class TLSBackend:
    """A `Backend` behind TLS with a trustme certificate, recording the SNI it was sent."""

    def __init__(self) -> None:
        self.backend = Backend("tls-backend")
        self.server_names: list[str | None] = []
        ca = trustme.CA()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("backend.internal").configure_cert(self.context)
        self.context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)


@pytest.fixture
async def tls_backend() -> AsyncIterator[TLSBackend]:
    server = TLSBackend()
    await server.backend.start(tls=server.context)
    yield server
    await server.backend.stop()


def https_app(port: int, protocol: str = "HTTPS", **extra: str) -> list[Obj]:
    annotations = {PREFIX + "backend-protocol": protocol}
    annotations |= {PREFIX + k.replace("_", "-"): v for k, v in extra.items()}
    return [
        *manifests.service("app", [port]),
        manifests.ingress("app", "app.test", {"/": "app"}, annotations=annotations),
    ]


async def get_all(proxy_url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=proxy_url, trust_env=False, timeout=10) as http:
        return [await http.get(f"/item/{i}", headers={"host": "app.test"}) for i in range(count)]


@pytest.mark.parametrize("protocol", ["HTTPS", "https"])
async def test_https_backend_is_reached_over_tls_reused_and_sent_no_sni(
    tls_backend: TLSBackend, ingressd: StartIngressd, protocol: str
) -> None:
    proxy = await ingressd(https_app(tls_backend.backend.port, protocol))
    responses = await get_all(proxy.http, 5)
    assert [r.status_code for r in responses] == [200] * 5
    assert [r.json()["target"] for r in responses] == [f"/item/{i}" for i in range(5)]
    assert tls_backend.backend.connections == 1  # kept alive and reused, like plain HTTP
    assert tls_backend.server_names == [None]  # no SNI unless proxy-ssl-server-name


async def test_an_https_route_to_a_plain_backend_is_502_at_once(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    plain = await backends("plain")
    proxy = await ingressd(https_app(plain.port))
    started = time.monotonic()
    (response,) = await get_all(proxy.http, 1)
    assert response.status_code == 502
    assert time.monotonic() - started < 4.0  # the handshake fails; nothing waits for a timeout


async def test_a_tls_backend_on_an_http_route_is_502(
    tls_backend: TLSBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(https_app(tls_backend.backend.port, "HTTP"))
    (response,) = await get_all(proxy.http, 1)
    assert response.status_code == 502


async def test_verification_asked_for_but_not_implemented_fails_closed(
    tls_backend: TLSBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(https_app(tls_backend.backend.port, proxy_ssl_verify="on"))
    (response,) = await get_all(proxy.http, 1)
    assert response.status_code == 503 and PREFIX + "proxy-ssl-verify" in response.text
    assert tls_backend.backend.requests == 0
