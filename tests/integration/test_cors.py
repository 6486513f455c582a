"""CORS as ingress-nginx's template (SPEC §6): enable-cors and its annotations; ingressd
answers preflight OPTIONS itself (204) and its CORS headers replace the backend's; an
origin outside the list gets none and its OPTIONS goes to the backend."""

from __future__ import annotations

import httpx
import pytest

from tests import manifests
from tests.backends import Backend
from tests.integration.conftest import Obj, StartBackend, StartIngressd
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"
DEFAULT_METHODS = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
DEFAULT_HEADERS = (
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
    "Content-Type,Range,Authorization"
)


def site(backend: Backend, **hosts: dict[str, str]) -> list[Obj]:
    objects: list[Obj] = [*manifests.service("app", [backend.port])]
    for name, values in hosts.items():
        annotations = {PREFIX + "enable-cors": "true"} | {
            PREFIX + k.replace("_", "-"): v for k, v in values.items()
        }
        objects.append(
            manifests.ingress(name, f"{name}.test", {"/": "app"}, annotations=annotations)
        )
    return objects


async def send(
    proxy: Ingressd, method: str, host: str, origin: str | None, path: str = "/x"
) -> httpx.Response:
    headers = {"host": f"{host}.test"}
    if origin is not None:
        headers["origin"] = origin
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        return await http.request(method, path, headers=headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture
async def backend(backends: StartBackend) -> Backend:
    return await backends("app")


async def test_the_defaults_allow_every_origin_and_answer_preflight_with_204(
    backend: Backend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(site(backend, open={}))
    expected = {
        "access-control-allow-origin": "*",
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": DEFAULT_METHODS,
        "access-control-allow-headers": DEFAULT_HEADERS,
        "access-control-max-age": "1728000",
    }
    preflight = await send(proxy, "OPTIONS", "open", "https://app.example")
    assert preflight.status_code == 204
    assert cors_headers(preflight) == expected
    # Empty, and without the Content-Length ingress-nginx forces: RFC 9110 §8.6 forbids it.
    assert preflight.content == b"" and "content-length" not in preflight.headers
    assert backend.requests == 0  # the preflight never reaches the backend
    response = await send(proxy, "GET", "open", "https://app.example")
    assert response.status_code == 200 and cors_headers(response) == expected
    # "*" answers every request, with or without an Origin, as ingress-nginx's "set $cors".
    assert cors_headers(await send(proxy, "GET", "open", None)) == expected


async def test_an_origin_list_with_wildcard_subdomains_echoes_only_matching_origins(
    backend: Backend, ingressd: StartIngressd
) -> None:
    origins = "https://app.example, https://*.example.org:8443, null"
    proxy = await ingressd(site(backend, listed={
        "cors_allow_origin": origins, "cors_allow_credentials": "false",
        "cors_allow_methods": "GET, POST", "cors_allow_headers": "X-Token,Content-Type",
        "cors_expose_headers": "X-Total, X-Page", "cors_max_age": "600",
    }))  # fmt: skip
    for origin in ("https://app.example", "https://API.example.org:8443", "null"):
        response = await send(proxy, "GET", "listed", origin)
        assert cors_headers(response) == {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "GET, POST",
            "access-control-allow-headers": "X-Token,Content-Type",
            "access-control-expose-headers": "X-Total, X-Page",
            "access-control-max-age": "600",
        }, origin
        assert (await send(proxy, "OPTIONS", "listed", origin)).status_code == 204
    for origin in ("https://evil.example", "https://a.b.example.org:8443",
                   "https://x.example.org", "http://app.example", None):  # fmt: skip
        response = await send(proxy, "GET", "listed", origin)
        assert response.status_code == 200 and cors_headers(response) == {}, origin
    # Not a match: the OPTIONS request is the backend's to answer.
    before = backend.requests
    assert (await send(proxy, "OPTIONS", "listed", "https://evil.example")).status_code == 200
    assert backend.requests == before + 1


async def test_ingressd_cors_headers_replace_the_backends(
    backend: Backend, ingressd: StartIngressd
) -> None:
    # The test backend answers /cors-echo with its own Access-Control-Allow-Origin: *.
    proxy = await ingressd(site(backend, strict={"cors_allow_origin": "https://app.example"}))
    response = await send(proxy, "GET", "strict", "https://app.example", "/cors-headers")
    assert response.headers.get_list("access-control-allow-origin") == ["https://app.example"]
    outside = await send(proxy, "GET", "strict", "https://other.example", "/cors-headers")
    assert outside.headers.get_list("access-control-allow-origin") == ["*"]  # the backend's own


async def test_local_answers_carry_the_cors_headers_too(
    backend: Backend, ingressd: StartIngressd
) -> None:
    guarded = {"cors_allow_origin": "https://app.example", "denylist_source_range": "127.0.0.1"}
    proxy = await ingressd(site(backend, guarded=guarded))
    response = await send(proxy, "GET", "guarded", "https://app.example")
    assert response.status_code == 403
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    # A preflight comes before the access checks, as in nginx's phases.
    assert (await send(proxy, "OPTIONS", "guarded", "https://app.example")).status_code == 204
