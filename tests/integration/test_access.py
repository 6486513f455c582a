"""Access control end to end (SPEC §6 "Never served open"): an Ingress that asks for a check
ingressd cannot make answers 503 naming the annotation, on every listener, and its backend
is never reached; the other Ingresses keep serving; ``--check`` says "not supported".

Every case has a positive control: the same backend behind an Ingress without the
annotation, or with a value that turns the check off, answers 200.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from ingressd import annotations
from tests import manifests
from tests.backends import Backend
from tests.integration.conftest import Obj, StartBackend, StartIngressd
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"

# Each annotation ingressd does not implement that decides who may reach a backend or
# how to speak to it, with a value that turns it on.
CLOSING: dict[str, str] = {
    "allowlist-source-range": "10.0.0.0/8",
    "whitelist-source-range": "192.168.0.0/16",
    "denylist-source-range": "203.0.113.7/32",
    "auth-type": "basic",
    "auth-url": "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth",
    "auth-tls-secret": "default/ca",
    "limit-rps": "5",
    "limit-rpm": "300",
    "limit-connections": "10",
    "enable-modsecurity": "true",
    "enable-owasp-core-rules": "true",
    "backend-protocol": "GRPC",
    "ssl-passthrough": "true",
}

# Values (or companions) that turn the same checks off: served as usual.
NOT_CLOSING: dict[str, dict[str, str]] = {
    "http-backend": {"backend-protocol": "http"},
    "no-rate-limit": {"limit-rps": "0"},
    "modsecurity-off": {"enable-modsecurity": "false"},
    "tls-verify-off": {"auth-tls-secret": "default/ca", "auth-tls-verify-client": "off"},
    "realm-only": {"auth-realm": "Staff only"},  # no auth-type: ingress-nginx checks nothing
}


def test_the_walk_covers_every_fail_closed_annotation() -> None:
    assert set(CLOSING) == set(annotations.FAIL_CLOSED)


def host_of(name: str) -> str:
    return f"{name}.test"


def site(backend: Backend) -> list[Obj]:
    """One Ingress per closing annotation and per non-closing value, plus an open control,
    all to the same backend: path /app, and a defaultBackend for the rest of the host."""
    objects: list[Obj] = [*manifests.service("app", [backend.port])]
    cases = {f"closed-{name}": {name: value} for name, value in CLOSING.items()}
    cases |= {"open": {}, **NOT_CLOSING}
    for name, values in cases.items():
        ingress = manifests.ingress(
            name,
            host_of(name),
            {"/app": "app"},
            annotations={PREFIX + k: v for k, v in values.items()},
        )
        ingress["spec"]["defaultBackend"] = {"service": {"name": "app", "port": {"number": 80}}}  # type: ignore[index]
        objects.append(ingress)
    return objects


@pytest.fixture
async def backend(backends: StartBackend) -> Backend:
    return await backends("protected")


@pytest.fixture
async def proxy(backend: Backend, ingressd: StartIngressd) -> Ingressd:
    return await ingressd(site(backend), https=True)


def listeners(proxy: Ingressd) -> dict[str, httpx.AsyncClient]:
    timeout = httpx.Timeout(10.0)
    return {
        "http": httpx.AsyncClient(base_url=proxy.http, timeout=timeout, trust_env=False),
        "https": httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{proxy.ports['https']}",
            verify=False,  # the default certificate: what is tested here is the answer
            timeout=timeout,
            trust_env=False,
        ),
    }


async def test_every_unsupported_access_annotation_fails_closed_on_every_listener(
    backend: Backend, proxy: Ingressd
) -> None:
    clients = listeners(proxy)
    try:
        for listener, http in clients.items():
            for name in CLOSING:
                # A path rule, below it, and the Ingress's defaultBackend.
                for target in ("/app", "/app/x", "/admin/secret?x=1"):
                    response = await http.get(target, headers={"host": host_of(f"closed-{name}")})
                    assert response.status_code == 503, (listener, name, target)
                    assert PREFIX + name in response.text, (listener, name, response.text)
                    assert "not support" in response.text
                # POST with a body: answered without forwarding a byte of it.
                response = await http.post(
                    "/app", content=b"x" * 4096, headers={"host": host_of(f"closed-{name}")}
                )
                assert response.status_code == 503, (listener, name)
        assert backend.requests == 0, "a fail-closed Ingress reached its backend"
        # Positive controls on the same listeners and backend.
        expected = 0
        for listener, http in clients.items():
            for name in ("open", *NOT_CLOSING):
                for target in ("/app", "/admin"):
                    response = await http.get(target, headers={"host": host_of(name)})
                    assert response.status_code == 200, (listener, name, target, response.text)
                    expected += 1
        assert backend.requests == expected
    finally:
        await asyncio.gather(*(http.aclose() for http in clients.values()))


async def test_a_closed_catch_all_is_503_and_other_hosts_still_serve(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    guarded, public = await backends("guarded"), await backends("public")
    catch_all = manifests.ingress("guarded", None, {}, annotations={PREFIX + "auth-url": "x"})
    catch_all["spec"] = {"defaultBackend": {"service": {"name": "guarded", "port": {"number": 80}}}}
    objects = [
        *manifests.service("guarded", [guarded.port]),
        *manifests.service("public", [public.port]),
        catch_all,
        manifests.ingress("public", "public.test", {"/": "public"}),
    ]
    proxy = await ingressd(objects)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        unmatched = await http.get("/", headers={"host": "anything.test"})
        matched = await http.get("/", headers={"host": "public.test"})
    assert unmatched.status_code == 503 and PREFIX + "auth-url" in unmatched.text
    assert matched.status_code == 200
    assert (guarded.requests, public.requests) == (0, 1)


async def test_check_reports_each_annotation_as_not_supported_and_the_routes_as_503(
    proxy: Ingressd,
) -> None:
    command = [sys.executable, "-m", "ingressd", "--check", "--config", str(proxy.config)]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for name in CLOSING:
        (line,) = [
            line
            for line in output.splitlines()
            if f"[{PREFIX}{name}]" in line and "closed-" in line
        ]
        assert "not supported" in line and "503" in line, line
        (row,) = [
            line for line in output.splitlines() if f"  {host_of('closed-' + name)}  /app  " in line
        ]
        assert "fail closed" in row and PREFIX + name in row, row
    for name in NOT_CLOSING:
        (row,) = [line for line in output.splitlines() if f"  {host_of(name)}  /app  " in line]
        assert "fail closed" not in row, row
