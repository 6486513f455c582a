"""Canary releases end to end (SPEC §6): a canary Ingress attaches to the main Ingress's
route with the same host, path and pathType; header, then cookie, then weight decide
which side serves; it never serves alone and never takes a route from its main Ingress.

Splits are measured over hundreds of requests and checked against the binomial
distribution with a five-sigma margin (a false failure about once in 1.7 million runs).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests import manifests
from tests.integration.conftest import Obj, StartBackend, StartIngressd
from tests.integration.test_observability import scrape, wait_for_lines
from tests.integration.test_tls import reload
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"
HOST = "echo.prod.mydomain.com"


def main_ingress(*, created: str = "2026-01-02T00:00:00Z", **annotations: str) -> Obj:
    """The docs' "production" Ingress: host echo.prod.mydomain.com, / Prefix."""
    ingress = manifests.ingress(
        "production", HOST, {"/": "production"}, annotations=_prefixed(annotations)
    )
    ingress["metadata"]["creationTimestamp"] = created  # type: ignore[index]
    return ingress


def canary_ingress(
    *, created: str = "2026-01-01T00:00:00Z", name: str = "canary", service: str = "canary",
    host: str = HOST, path: str = "/", **annotations: str,
) -> Obj:  # fmt: skip
    """The docs' "canary" Ingress; by default *older* than the main one, the case in
    which ingressd used to give it every request."""
    values = {"canary": "true", **annotations}
    ingress = manifests.ingress(name, host, {path: service}, annotations=_prefixed(values))
    ingress["metadata"]["creationTimestamp"] = created  # type: ignore[index]
    return ingress


def _prefixed(annotations: dict[str, str]) -> dict[str, str]:
    return {PREFIX + name.replace("_", "-"): value for name, value in annotations.items()}


async def start(
    backends: StartBackend, ingressd: StartIngressd, *ingresses: Obj, flags: tuple[str, ...] = ()
) -> Ingressd:
    production, canary = await backends("production"), await backends("canary")
    objects = [
        *manifests.service("production", [production.port]),
        *manifests.service("canary", [canary.port]),
        *ingresses,
    ]
    return await ingressd(objects, *flags)


async def served_by(
    proxy: Ingressd, count: int, headers: dict[str, str] | None = None, path: str = "/"
) -> Counter[str]:
    """Which backend answered each of `count` requests (the echo's "name")."""
    names: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False, timeout=10.0) as http:
        for _ in range(count):
            response = await http.get(path, headers={"host": HOST, **(headers or {})})
            assert response.status_code == 200, response.text
            names[response.json()["name"]] += 1
    return names


def assert_binomial(hits: int, trials: int, p: float) -> None:
    margin = 5 * math.sqrt(trials * p * (1 - p))
    assert abs(hits - trials * p) <= margin, f"{hits}/{trials}, expected {trials * p} ± {margin}"


# --- weight ------------------------------------------------------------------------------


async def test_the_docs_example_splits_half_and_half_even_when_the_canary_is_older(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await start(backends, ingressd, canary_ingress(canary_weight="50"), main_ingress())
    names = await served_by(proxy, 400)
    assert set(names) == {"production", "canary"}
    assert_binomial(names["canary"], 400, 0.5)


@pytest.mark.parametrize(("weight", "total", "trials"), [("20", None, 500), ("50", "1000", 600)])
async def test_weight_out_of_the_total_is_the_share_of_the_canary(
    backends: StartBackend, ingressd: StartIngressd, weight: str, total: str | None, trials: int
) -> None:
    annotations = {"canary_weight": weight}
    if total is not None:
        annotations["canary_weight_total"] = total
    proxy = await start(backends, ingressd, main_ingress(), canary_ingress(**annotations))
    names = await served_by(proxy, trials)
    assert_binomial(names["canary"], trials, int(weight) / int(total or 100))


@pytest.mark.parametrize(("weight", "total", "expected"), [
    ("0", None, "production"),
    ("100", None, "canary"),
    ("100", "50", "canary"),  # a total of 100 or less is ignored, as ingress-nginx
    (None, None, "production"),  # a canary without a weight or a rule takes nothing
])  # fmt: skip
async def test_weight_edges_are_all_or_nothing(
    backends: StartBackend, ingressd: StartIngressd, weight: str | None, total: str | None,
    expected: str,
) -> None:  # fmt: skip
    annotations = {}
    if weight is not None:
        annotations["canary_weight"] = weight
    if total is not None:
        annotations["canary_weight_total"] = total
    proxy = await start(backends, ingressd, main_ingress(), canary_ingress(**annotations))
    assert await served_by(proxy, 30) == {expected: 30}


# --- header and cookie -------------------------------------------------------------------


@pytest.mark.parametrize("weight", ["0", "100"])
async def test_header_then_cookie_then_weight(
    backends: StartBackend, ingressd: StartIngressd, weight: str
) -> None:
    canary = canary_ingress(
        canary_by_header="X-Canary", canary_by_cookie="canary_cookie", canary_weight=weight
    )
    proxy = await start(backends, ingressd, main_ingress(), canary)
    by_weight = "canary" if weight == "100" else "production"
    cases = [
        ({"x-canary": "always"}, "canary"),
        ({"X-CANARY": "always"}, "canary"),  # field names are case-insensitive
        ({"x-canary": "never", "cookie": "canary_cookie=always"}, "production"),
        ({"x-canary": "Always", "cookie": "canary_cookie=always"}, "canary"),  # falls through
        ({"cookie": "a=1; canary_cookie=always; b=2"}, "canary"),
        ({"cookie": "canary_cookie=never"}, "production"),  # never beats a full weight
        ({"cookie": "canary_cookie=yes"}, by_weight),  # falls through to the weight
        ({}, by_weight),
    ]
    for headers, expected in cases:
        assert await served_by(proxy, 3, headers) == {expected: 3}, headers


async def test_header_value_routes_only_that_value_and_never_falls_through(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    canary = canary_ingress(
        canary_by_header="X-Region",
        canary_by_header_value="us-east",
        canary_by_header_pattern="^never-used",  # ignored when a value is set
        canary_by_cookie="canary_cookie",
    )
    proxy = await start(backends, ingressd, main_ingress(), canary)
    assert await served_by(proxy, 3, {"x-region": "us-east"}) == {"canary": 3}
    assert await served_by(proxy, 3, {"x-region": "always"}) == {"production": 3}
    assert await served_by(proxy, 3, {"x-region": "never-used"}) == {"production": 3}
    # "never" is just another value here: it falls through to the cookie.
    both = {"x-region": "never", "cookie": "canary_cookie=always"}
    assert await served_by(proxy, 3, both) == {"canary": 3}


async def test_header_pattern_is_a_case_sensitive_search(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    canary = canary_ingress(canary_by_header="X-Build", canary_by_header_pattern="rc[0-9]+$")
    proxy = await start(backends, ingressd, main_ingress(), canary)
    assert await served_by(proxy, 3, {"x-build": "v2.0-rc12"}) == {"canary": 3}
    assert await served_by(proxy, 3, {"x-build": "v2.0-RC12"}) == {"production": 3}
    assert await served_by(proxy, 3, {"x-build": "rc1-final"}) == {"production": 3}


# --- attachment --------------------------------------------------------------------------


async def test_a_canary_never_serves_alone_nor_takes_another_path(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    lonely = canary_ingress(name="lonely", host="lonely.test", canary_weight="100")
    other_path = canary_ingress(name="other-path", path="/beta", canary_weight="100")
    exact = canary_ingress(name="exact", canary_weight="100")
    exact["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Exact"  # type: ignore[index]
    proxy = await start(backends, ingressd, main_ingress(), lonely, other_path, exact)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        assert (await http.get("/", headers={"host": "lonely.test"})).status_code == 404
    # /beta is the main Ingress's / Prefix route; the pathType of "exact" differs.
    assert await served_by(proxy, 10, path="/beta") == {"production": 10}
    assert await served_by(proxy, 10) == {"production": 10}
    output = "\n".join(proxy.lines)
    for name, what in (("lonely", "host lonely.test path /"), ("other-path", "path /beta"),
                       ("exact", "path / (Exact)")):  # fmt: skip
        assert f"Ingress default/{name}: canary for" in output and what in output, output
        assert "never serves alone" in output


async def test_the_canary_gets_the_main_ingress_policy_and_its_own_is_ignored(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    canary = canary_ingress(canary_by_header="X-Canary", proxy_body_size="10m", auth_type="basic")
    proxy = await start(backends, ingressd, main_ingress(proxy_body_size="1k"), canary)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        headers = {"host": HOST, "x-canary": "always"}
        small = await http.post("/", content=b"x" * 100, headers=headers)
        big = await http.post("/", content=b"x" * 4096, headers=headers)
    assert small.status_code == 200 and small.json()["name"] == "canary"
    assert big.status_code == 413  # the main Ingress's 1k limit
    output = "\n".join(proxy.lines)
    assert f"[{PREFIX}auth-type]: ignored: this is a canary Ingress" in output


async def test_metrics_and_access_log_say_which_side_served(
    backends: StartBackend, ingressd: StartIngressd, tmp_path: Path
) -> None:
    production, canary = await backends("production"), await backends("canary")
    objects = [
        *manifests.service("production", [production.port]),
        *manifests.service("canary", [canary.port]),
        main_ingress(),
        canary_ingress(canary_by_header="X-Canary"),
    ]
    log = tmp_path / "access.log"
    proxy = await ingressd(objects, "--log-format", "json", access_log=log)
    assert await served_by(proxy, 2, {"x-canary": "always"}) == {"canary": 2}
    assert await served_by(proxy, 3) == {"production": 3}
    metrics = await scrape(proxy)
    requests = "ingressd_requests_total"
    assert metrics.value(requests, ingress="canary", service="canary", canary="true") == 2
    assert metrics.value(requests, ingress="production", service="production", canary="false") == 3
    records = [json.loads(line) for line in await wait_for_lines(log, 5)]
    assert Counter((r["service"], r["canary"]) for r in records) == {
        ("canary", True): 2,
        ("production", False): 3,
    }


async def test_a_reload_with_a_malformed_weight_keeps_the_old_split(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    production, canary = await backends("production"), await backends("canary")

    def objects(weight: str) -> list[Obj]:
        return [
            *manifests.service("production", [production.port]),
            *manifests.service("canary", [canary.port]),
            main_ingress(),
            canary_ingress(canary_weight=weight),
        ]

    proxy = await ingressd(objects("100"))
    assert await served_by(proxy, 5) == {"canary": 5}
    lines = await reload(proxy, objects("half"), "still serving the previous configuration")
    problem = next(line for line in lines if f"[{PREFIX}canary-weight]" in line)
    assert f"{proxy.config}:" in problem and "Ingress default/canary" in problem, problem
    assert await served_by(proxy, 5) == {"canary": 5}
    await reload(proxy, objects("0"), "reloaded:")
    assert await served_by(proxy, 5) == {"production": 5}
