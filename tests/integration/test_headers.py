"""Headers across the proxy (SPEC §4): X-Forwarded-* / X-Real-IP / X-Request-ID set from
the client connection, trusted proxies appended to, hop-by-hop headers removed both ways."""

from __future__ import annotations

import json
import re

from tests.integration.conftest import HOST, StartBackend, StartIngressd, app, client
from tests.integration.rawhttp import RawClient

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def received(echo: dict[str, object], name: str) -> list[str]:
    """Every value of header `name` as the backend received it."""
    headers = echo["headers"]
    assert isinstance(headers, list)
    return [value for key, value in headers if key == name]


async def test_forwarded_headers_replace_untrusted_client_values(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    spoofed = {
        "x-forwarded-for": "203.0.113.9",
        "x-real-ip": "203.0.113.10",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.test",
        "x-forwarded-port": "1",
    }
    async with client(proxy) as http:
        response = await http.get("/who", headers=spoofed)
    assert response.status_code == 200
    echo = response.json()
    assert received(echo, "x-real-ip") == ["127.0.0.1"]
    assert received(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert received(echo, "x-forwarded-proto") == ["http"]
    assert received(echo, "x-forwarded-host") == [HOST]
    assert received(echo, "x-forwarded-port") == [str(proxy.ports["http"])]
    assert received(echo, "host") == [HOST]
    [request_id] = received(echo, "x-request-id")
    assert REQUEST_ID.fullmatch(request_id)
    assert response.headers["x-request-id"] == request_id


async def test_client_request_id_is_kept(backends: StartBackend, ingressd: StartIngressd) -> None:
    proxy = await ingressd(app(await backends()))
    async with client(proxy) as http:
        response = await http.get("/id", headers={"x-request-id": "client-chosen-42"})
    assert response.status_code == 200
    assert received(response.json(), "x-request-id") == ["client-chosen-42"]
    assert response.headers.get_list("x-request-id") == ["client-chosen-42"]


async def test_trusted_proxy_forwarded_for_is_appended_to(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()), "--trusted-proxies", "127.0.0.1/32")
    incoming = {
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "www.example.test",
        "x-forwarded-port": "443",
    }
    async with client(proxy) as http:
        response = await http.get("/chain", headers=incoming)
    assert response.status_code == 200
    echo = response.json()
    assert received(echo, "x-forwarded-for") == ["198.51.100.7, 127.0.0.1"]
    assert received(echo, "x-real-ip") == ["198.51.100.7"]  # right-most untrusted address
    assert received(echo, "x-forwarded-proto") == ["https"]
    assert received(echo, "x-forwarded-host") == ["www.example.test"]
    assert received(echo, "x-forwarded-port") == ["443"]


async def test_hop_by_hop_request_headers_do_not_reach_the_backend(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    request = (
        b"GET /hop HTTP/1.1\r\n"
        b"Host: app.test\r\n"
        b"Connection: keep-alive, X-Client-Hop\r\n"
        b"X-Client-Hop: secret\r\n"
        b"Keep-Alive: timeout=30\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"TE: trailers\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Upgrade: something/1.0\r\n"
        b"X-End-To-End: kept\r\n"
        b"\r\n"
    )
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(request)
        response = await raw.read_response()
    assert response.status == 200, response
    echo = json.loads(response.body)
    names = {key for key, _ in echo["headers"]}
    hop_by_hop = {"x-client-hop", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
    assert not names & hop_by_hop, f"forwarded: {names & hop_by_hop}"
    for value in received(echo, "connection"):
        assert "x-client-hop" not in value.lower()
    assert received(echo, "x-end-to-end") == ["kept"]


async def test_hop_by_hop_response_headers_do_not_reach_the_client(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET /hop-headers HTTP/1.1\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response()
    assert response.status == 200, response
    for name in ("keep-alive", "x-backend-hop", "proxy-connection"):
        assert response.header(name) is None, f"{name}: {response.header(name)} forwarded"
    for value in response.headers_named("connection"):
        assert "x-backend-hop" not in value.lower(), f"backend's Connection forwarded: {value}"
    assert response.header("x-end-to-end") == "kept"


async def test_upstream_vhost_sets_the_host_the_backend_receives(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    vhost = {"nginx.ingress.kubernetes.io/upstream-vhost": "internal.svc:8080"}
    proxy = await ingressd(app(backend, annotations=vhost))
    async with client(proxy) as http:
        echo = (await http.get("/page")).json()
    hosts = [v for k, v in echo["headers"] if k == "host"]
    forwarded = [v for k, v in echo["headers"] if k == "x-forwarded-host"]
    assert hosts == ["internal.svc:8080"]
    assert forwarded == [HOST]  # the client's Host still travels as X-Forwarded-Host
