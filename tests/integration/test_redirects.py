"""Redirect annotations end to end (SPEC §6): permanent-redirect and temporal-redirect
(the URL exactly as written, codes and their ranges as ingress-nginx), app-root (302 for
``/`` only, host-wide, before the https redirect), from-to-www-redirect and server-alias.
A redirected request never reaches a backend."""

from __future__ import annotations

import httpx
import pytest

from tests import manifests
from tests.backends import Backend
from tests.integration.conftest import Obj, StartBackend, StartIngressd
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"


def site(backend: Backend, *ingresses: tuple[str, str, dict[str, str]]) -> list[Obj]:
    """The Service `app` at `backend`, and an Ingress (name, host, annotations) for each,
    routing / (Prefix) to it."""
    objects: list[Obj] = [*manifests.service("app", [backend.port])]
    for name, host, values in ingresses:
        prefixed = {PREFIX + key: value for key, value in values.items()}
        objects.append(manifests.ingress(name, host, {"/": "app"}, annotations=prefixed))
    return objects


async def get(proxy: Ingressd, host: str, target: str, port: str = "http") -> httpx.Response:
    base = proxy.http if port == "http" else f"https://127.0.0.1:{proxy.ports['https']}"
    async with httpx.AsyncClient(base_url=base, trust_env=False, verify=False) as http:
        return await http.get(target, headers={"host": host})


@pytest.fixture
async def backend(backends: StartBackend) -> Backend:
    return await backends("app")


async def test_permanent_and_temporal_redirects_send_the_url_as_written(
    backend: Backend, ingressd: StartIngressd
) -> None:
    google = "https://www.google.com"
    proxy = await ingressd(
        site(
            backend,
            ("permanent", "permanent.test", {"permanent-redirect": google}),
            ("coded", "coded.test", {"permanent-redirect": google,
                                     "permanent-redirect-code": "308"}),
            ("odd", "odd.test", {"permanent-redirect": google,
                                 "permanent-redirect-code": "999"}),
            ("temporal", "temporal.test", {"temporal-redirect": "https://t.example/x?y=1"}),
            ("both", "both.test", {"temporal-redirect": "https://t.example/",
                                   "permanent-redirect": google}),
            ("temp-coded", "temp-coded.test", {"temporal-redirect": "https://t.example/",
                                               "temporal-redirect-code": "307"}),
            ("temp-odd", "temp-odd.test", {"temporal-redirect": "https://t.example/",
                                           "temporal-redirect-code": "308"}),
            ("plain", "plain.test", {}),
        )
    )  # fmt: skip
    cases = [
        ("permanent.test", 301, google),
        ("coded.test", 308, google),
        ("odd.test", 301, google),  # outside 300-308: ingress-nginx's default
        ("temporal.test", 302, "https://t.example/x?y=1"),
        ("both.test", 302, "https://t.example/"),  # temporal wins
        ("temp-coded.test", 307, "https://t.example/"),
        ("temp-odd.test", 302, "https://t.example/"),  # outside 300-307
    ]
    for host, status, location in cases:
        for target in ("/", "/deep/path?q=1"):
            response = await get(proxy, host, target)
            assert (response.status_code, response.headers.get("location")) == (
                status,
                location,
            ), (host, target)
    assert backend.requests == 0
    assert (await get(proxy, "plain.test", "/")).status_code == 200  # positive control
    output = "\n".join(proxy.lines)
    assert f"[{PREFIX}permanent-redirect-code]: honoured, but 999 is outside 300-308" in output
    assert f"[{PREFIX}temporal-redirect-code]: honoured, but 308 is outside 300-307" in output


async def test_the_docs_app_root_example(backend: Backend, ingressd: StartIngressd) -> None:
    proxy = await ingressd(site(backend, ("approot", "approot.bar.com", {"app-root": "/app1"})))
    response = await get(proxy, "approot.bar.com", "/")
    assert response.status_code == 302
    assert response.headers["location"] == "http://approot.bar.com/app1"
    assert backend.requests == 0
    query = await get(proxy, "approot.bar.com", "/?lang=en")  # $uri is "/" without the query
    assert query.status_code == 302
    for target in ("/app1", "/other", "/app1/"):
        response = await get(proxy, "approot.bar.com", target)
        assert response.status_code == 200 and response.json()["target"] == target
    assert backend.requests == 3


async def test_app_root_is_host_wide_keeps_the_port_and_comes_before_the_https_redirect(
    backend: Backend, ingressd: StartIngressd
) -> None:
    objects = site(
        backend,
        ("approot", "approot.test", {"app-root": "/app1", "force-ssl-redirect": "true"}),
    )
    # Another Ingress of the host owns "/" Exact: app-root still answers, as in nginx,
    # where it is a server-level rule.
    other = manifests.ingress("exact", "approot.test", {"/": "app"}, path_type="Exact")
    proxy = await ingressd([*objects, other], https=True)
    response = await get(proxy, "approot.test:8080", "/")
    assert response.status_code == 302
    assert response.headers["location"] == "http://approot.test:8080/app1"
    # Then the app root itself is sent to https.
    response = await get(proxy, "approot.test", "/app1")
    assert response.status_code == 308
    assert response.headers["location"].startswith("https://approot.test:")
    response = await get(proxy, "approot.test", "/", port="https")
    assert response.status_code == 302
    assert response.headers["location"] == "https://approot.test/app1"
    assert backend.requests == 0


async def test_from_to_www_redirect_sends_the_twin_host_to_the_ingress_host(
    backend: Backend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(
        site(
            backend,
            ("www", "www.shop.test", {"from-to-www-redirect": "true"}),
            ("bare", "blog.test", {"from-to-www-redirect": "true"}),
            ("taken", "news.test", {"from-to-www-redirect": "true"}),
            ("own", "www.news.test", {}),
        )
    )
    cases = [
        ("shop.test", "/cart/?id=7", "http://www.shop.test/cart/?id=7"),
        ("shop.test:8080", "/cart/", "http://www.shop.test:8080/cart"),  # trailing / dropped
        ("www.blog.test", "/post", "http://blog.test/post"),
    ]
    for host, target, location in cases:
        response = await get(proxy, host, target)
        assert response.status_code == 308, (host, target)
        assert response.headers["location"] == location
    assert backend.requests == 0
    # The hosts themselves, and a twin that has its own Ingress, are served.
    for host in ("www.shop.test", "blog.test", "www.news.test", "news.test"):
        assert (await get(proxy, host, "/")).status_code == 200, host
    assert any("from-to-www-redirect: www.news.test is served" in line for line in proxy.lines)


async def test_server_alias_serves_other_names_as_the_host(
    backend: Backend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(
        site(
            backend,
            ("main", "main.test", {"server-alias": "alias.test, *.wild.test, other.test"}),
            ("other", "other.test", {"app-root": "/other"}),
        )
    )
    for host in ("main.test", "alias.test", "x.wild.test"):
        response = await get(proxy, host, "/page")
        assert response.status_code == 200, host
        assert ["host", host] in response.json()["headers"]  # Host is preserved
    # other.test has its own Ingress: it is not an alias, and says so.
    response = await get(proxy, "other.test", "/")
    assert response.status_code == 302
    assert (await get(proxy, "unknown.test", "/page")).status_code == 404
    assert any("server-alias other.test: that host is served" in line for line in proxy.lines)
