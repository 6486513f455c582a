"""Regex paths and rewrites end to end (SPEC §6): use-regex and rewrite-target with
ingress-nginx's matching (case-insensitive, anchored at the start, longest path string
first, host-wide once any Ingress of the host uses them), captures in the target, the
query kept, x-forwarded-prefix only with a rewrite."""

from __future__ import annotations

from typing import Any

import httpx

from tests import manifests
from tests.integration.conftest import Obj, StartBackend, StartIngressd
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"


def ingress(
    name: str, host: str, paths: dict[str, str], path_type: str = "ImplementationSpecific",
    **annotations: str,
) -> Obj:  # fmt: skip
    values = {PREFIX + key.replace("_", "-"): value for key, value in annotations.items()}
    return manifests.ingress(name, host, paths, annotations=values, path_type=path_type)


async def echo(proxy: Ingressd, host: str, target: str, **headers: str) -> dict[str, Any]:
    """The backend's echo of the request ingressd forwarded (404 and others: the status)."""
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        response = await http.get(target, headers={"host": host, **headers})
    if response.status_code != 200:
        return {"status": response.status_code}
    body: dict[str, Any] = response.json()
    return body


async def test_the_docs_rewrite_example(backends: StartBackend, ingressd: StartIngressd) -> None:
    backend = await backends("http-svc")
    rewrite = ingress(
        "rewrite", "rewrite.bar.com", {"/something(/|$)(.*)": "http-svc"},
        use_regex="true", rewrite_target="/$2",
    )  # fmt: skip
    proxy = await ingressd([*manifests.service("http-svc", [backend.port]), rewrite])
    cases = [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new", "/new"),
        ("/something/new?page=2&q=a%20b", "/new?page=2&q=a%20b"),  # the query is kept
        ("/SOMETHING/Case", "/Case"),  # case-insensitive
    ]
    for sent, received in cases:
        assert (await echo(proxy, "rewrite.bar.com", sent))["target"] == received, sent
    assert (await echo(proxy, "rewrite.bar.com", "/other"))["status"] == 404
    assert (await echo(proxy, "rewrite.bar.com", "/x/something"))["status"] == 404  # anchored


async def test_a_target_with_its_own_query_gets_the_request_query_after_it(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends("search")
    find = ingress(
        "find", "find.test", {"/find/([a-z]+)": "search"},
        rewrite_target="/search?src=ingress&q=$1",
    )  # fmt: skip
    proxy = await ingressd([*manifests.service("search", [backend.port]), find])
    echoed = await echo(proxy, "find.test", "/find/cats?page=2")
    assert echoed["target"] == "/search?src=ingress&q=cats&page=2"
    echoed = await echo(proxy, "find.test", "/find/dogs")
    assert echoed["target"] == "/search?src=ingress&q=dogs"


async def test_one_regex_ingress_turns_every_path_of_its_host_into_a_regex(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    api, web, other = await backends("api"), await backends("web"), await backends("other")
    objects = [
        *manifests.service("api", [api.port]),
        *manifests.service("web", [web.port]),
        *manifests.service("other", [other.port]),
        ingress("regex", "shop.test", {"/v[0-9]+/items": "api"}, use_regex="true"),
        ingress("plain", "shop.test", {"/api": "web"}, path_type="Prefix"),
        ingress("exact", "shop.test", {"/health": "web"}, path_type="Exact"),
        ingress("elsewhere", "other.test", {"/api": "other"}, path_type="Prefix"),
    ]
    proxy = await ingressd(objects)
    routed = {
        "/v2/items/7": "api",
        "/V10/ITEMS": "api",
        "/api": "web",
        "/api/x": "web",
        "/apix": "web",  # a Prefix path is now a regex prefix: ingress-nginx's quirk
        "/API": "web",
        "/health/deeper": "web",  # so is an Exact path
    }
    for target, name in routed.items():
        assert (await echo(proxy, "shop.test", target)).get("name") == name, target
    # A host without regex keeps Kubernetes' matching.
    assert (await echo(proxy, "other.test", "/apix"))["status"] == 404
    assert (await echo(proxy, "other.test", "/API"))["status"] == 404
    assert (await echo(proxy, "other.test", "/api/x"))["name"] == "other"
    warning = next(line for line in proxy.lines if "change meaning" in line)
    assert "Ingress default/regex" in warning
    assert "/api (Prefix, Ingress default/plain)" in warning
    assert "/health (Exact, Ingress default/exact)" in warning


async def test_the_longest_path_string_wins_not_the_most_specific(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    wide, narrow = await backends("wide"), await backends("narrow")
    objects = [
        *manifests.service("wide", [wide.port]),
        *manifests.service("narrow", [narrow.port]),
        ingress("r", "order.test", {"/[a-z]+": "wide", "/abc/d": "narrow"}, use_regex="true"),
    ]
    proxy = await ingressd(objects)
    # "/[a-z]+" (7 characters) is tried before "/abc/d" (6): it takes /abc/d too.
    assert (await echo(proxy, "order.test", "/abc/d"))["name"] == "wide"
    assert (await echo(proxy, "order.test", "/123"))["status"] == 404


async def test_x_forwarded_prefix_is_sent_only_with_a_rewrite_and_replaces_the_clients(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends("app")
    objects = [
        *manifests.service("app", [backend.port]),
        ingress("rewritten", "a.test", {"/app(/|$)(.*)": "app"}, rewrite_target="/$2",
                x_forwarded_prefix="/app"),
        ingress("regex-only", "b.test", {"/app(/|$)(.*)": "app"}, use_regex="true",
                x_forwarded_prefix="/app"),
    ]  # fmt: skip
    proxy = await ingressd(objects)
    echoed = await echo(proxy, "a.test", "/app/page", **{"x-forwarded-prefix": "/forged"})
    assert echoed["target"] == "/page"
    prefixes = [value for name, value in echoed["headers"] if name == "x-forwarded-prefix"]
    assert prefixes == ["/app"]
    echoed = await echo(proxy, "b.test", "/app/page")
    assert echoed["target"] == "/app/page"
    assert not [value for name, value in echoed["headers"] if name == "x-forwarded-prefix"]


async def test_a_path_python_cannot_compile_is_a_config_error_naming_its_line(
    backends: StartBackend, ingressd: StartIngressd, tmp_path: Any
) -> None:
    import subprocess
    import sys

    backend = await backends("app")
    objects = [
        *manifests.service("app", [backend.port]),
        ingress("pcre", "pcre.test", {"/(?<version>v[0-9])/x": "app"}, use_regex="true"),
        ingress("plain", "pcre.test", {"/docs(v1": "app"}, path_type="Prefix"),
    ]
    config = manifests.write(tmp_path / "pcre.yaml", objects)
    result = subprocess.run(
        [sys.executable, "-m", "ingressd", "--check", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    lines = config.read_text().splitlines()
    for name, path in (("pcre", "/(?<version>v[0-9])/x"), ("plain", "/docs(v1")):
        number = next(i for i, line in enumerate(lines, 1) if path in line)
        (problem,) = [
            p for p in result.stderr.splitlines()
            if f"Ingress default/{name}:" in p and "cannot compile" in p
        ]  # fmt: skip
        assert problem.startswith(f"{config}:"), problem
        assert abs(int(problem.split(":")[1]) - number) <= 1, (problem, number)
        assert repr(path) in problem
    # The warnings found on the way are printed too, after the errors.
    assert "Warnings: 1" in result.stderr and "change meaning" in result.stderr


async def test_an_empty_rewrite_is_500_and_a_target_ending_in_a_question_mark_drops_the_query(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends("app")
    objects = [
        *manifests.service("app", [backend.port]),
        ingress("empty", "empty.test", {"/foo/(.*)": "app"}, rewrite_target="$1"),
        ingress("noquery", "noquery.test", {"/x/(.*)": "app"}, rewrite_target="/new/$1?"),
    ]
    proxy = await ingressd(objects)
    assert (await echo(proxy, "empty.test", "/foo/"))["status"] == 500  # nginx: zero length
    assert (await echo(proxy, "empty.test", "/foo/bar?q=1"))["target"] == "/bar?q=1"
    assert (await echo(proxy, "noquery.test", "/x/page?q=1"))["target"] == "/new/page"
