"""Routing and balancing end to end: Host + path choose the backend; round-robin spreads
requests; not-ready and dead endpoints get no traffic (SPEC §3, §4 Balancing)."""

from __future__ import annotations

import json
import re
from collections import Counter

from tests import manifests
from tests.integration.conftest import (
    HOST,
    StartBackend,
    StartIngressd,
    app,
    client,
    dead_port,
)
from tests.integration.rawhttp import RawClient

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


async def test_host_and_path_choose_the_backend(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    alpha, beta, gamma = await backends("alpha"), await backends("beta"), await backends("gamma")
    objects = [
        *manifests.service("alpha", [alpha.port]),
        *manifests.service("beta", [beta.port]),
        *manifests.service("gamma", [gamma.port]),
        manifests.ingress("app", HOST, {"/alpha": "alpha", "/beta": "beta"}),
        manifests.ingress("other", "other.test", {"/": "gamma"}),
    ]
    proxy = await ingressd(objects)
    async with client(proxy) as http:
        cases = [
            (HOST, "/alpha", "alpha"),
            (HOST, "/alpha/deeper?q=1", "alpha"),
            (HOST, "/beta/x", "beta"),
            ("other.test", "/alpha", "gamma"),
            ("OTHER.test:80", "/anything", "gamma"),
        ]
        for host, target, expected in cases:
            response = await http.get(target, headers={"host": host})
            assert response.status_code == 200, (host, target, response.text)
            echo = response.json()
            assert (echo["name"], echo["target"]) == (expected, target), (host, target)
        # Prefix matching is per path segment: /alphabet is not under /alpha.
        response = await http.get("/alphabet")
        assert response.status_code == 404
    assert alpha.requests == 2 and beta.requests == 1 and gamma.requests == 2


async def test_unknown_host_is_answered_404_by_ingressd(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with client(proxy) as http:
        response = await http.get("/", headers={"host": "nowhere.test"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert "404" in response.text and len(response.content) < 200
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    assert backend.requests == 0


async def test_absolute_form_target_routes_by_its_authority(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    alpha, beta = await backends("alpha"), await backends("beta")
    objects = [
        *manifests.service("alpha", [alpha.port]),
        *manifests.service("beta", [beta.port]),
        manifests.ingress("app", HOST, {"/": "alpha"}),
        manifests.ingress("other", "other.test", {"/": "beta"}),
    ]
    proxy = await ingressd(objects)
    async with RawClient(proxy.ports["http"]) as raw:
        # RFC 9112 §3.2.2: the authority of an absolute-form target overrides Host.
        await raw.send(b"GET http://other.test/path?q=1 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        response = await raw.read_response()
    assert response.status == 200, response
    echo = json.loads(response.body)
    assert echo["name"] == "beta"
    assert echo["target"] == "/path?q=1"  # origin-form towards the backend
    assert [v for k, v in echo["headers"] if k == "host"] == ["other.test"]
    assert alpha.requests == 0


async def test_round_robin_spreads_evenly(backends: StartBackend, ingressd: StartIngressd) -> None:
    pool = [await backends(f"b{i}") for i in range(3)]
    proxy = await ingressd(app(*pool))
    async with client(proxy) as http:
        names: Counter[str] = Counter()
        for _ in range(30):
            response = await http.get("/spread")
            assert response.status_code == 200
            names[response.json()["name"]] += 1
    assert names == {"b0": 10, "b1": 10, "b2": 10}


async def test_not_ready_endpoints_get_no_traffic(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    ready_a, not_ready, ready_b = await backends("a"), await backends("nr"), await backends("b")
    proxy = await ingressd(app(ready_a, not_ready, ready_b, ready=[True, False, True]))
    async with client(proxy) as http:
        statuses = [(await http.get(f"/r/{i}")).status_code for i in range(20)]
    assert statuses == [200] * 20
    assert not_ready.connections == 0 and not_ready.requests == 0
    assert ready_a.requests == 10 and ready_b.requests == 10


async def test_dead_endpoint_is_skipped_with_a_retry(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    first, second = await backends("first"), await backends("second")
    proxy = await ingressd(app(first, dead_port(), second))
    async with client(proxy) as http:
        statuses = [(await http.get(f"/d/{i}")).status_code for i in range(20)]
    assert statuses == [200] * 20
    assert first.requests + second.requests == 20
    assert first.requests >= 5 and second.requests >= 5


async def test_default_backend_annotation_serves_when_the_service_has_no_ready_endpoint(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    down, errors, up = await backends("down"), await backends("errors"), await backends("up")
    annotation = {"nginx.ingress.kubernetes.io/default-backend": "errors"}
    objects = [
        *manifests.service("down", [down.port], ready=[False]),
        *manifests.service("errors", [errors.port]),
        *manifests.service("up", [up.port]),
        manifests.ingress("broken", "broken.test", {"/": "down"}, annotations=annotation),
        manifests.ingress("fine", "fine.test", {"/": "up"}, annotations=annotation),
    ]
    proxy = await ingressd(objects)
    async with client(proxy) as http:
        fallback = await http.get(
            "/page?q=1", headers={"host": "broken.test", "accept": "text/html", "x-code": "200"}
        )
        served = await http.get("/page", headers={"host": "fine.test"})
    assert fallback.status_code == 200
    echo = fallback.json()
    assert echo["name"] == "errors" and echo["target"] == "/page?q=1"
    received = {name: value for name, value in echo["headers"]}
    assert {k: received.get(k) for k in ("x-code", "x-format", "x-namespace", "x-ingress-name",
                                         "x-service-name", "x-service-port")} == {
        "x-code": "503", "x-format": "text/html", "x-namespace": "default",
        "x-ingress-name": "broken", "x-service-name": "down", "x-service-port": "80",
    }  # fmt: skip
    assert [v for k, v in echo["headers"] if k == "x-code"] == ["503"]  # the client's replaced
    assert served.json()["name"] == "up"  # a Service with endpoints is served as usual
    assert down.requests == 0
