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
from pathlib import Path

import httpx
import pytest

from ingressd import annotations
from tests import manifests
from tests.backends import Backend
from tests.integration.conftest import Obj, StartBackend, StartIngressd, wait_until
from tests.integration.rawhttp import RawClient
from tests.integration.test_tls import reload
from tests.proc import Ingressd

PREFIX = "nginx.ingress.kubernetes.io/"

# Each annotation ingressd does not implement that decides who may reach a backend or
# how to speak to it, with a value that turns it on.
CLOSING: dict[str, str] = {
    "auth-type": "digest",
    "auth-url": "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth",
    "auth-tls-secret": "default/ca",
    "enable-modsecurity": "true",
    "enable-owasp-core-rules": "true",
    "backend-protocol": "GRPC",
    "proxy-ssl-verify": "on",
    "ssl-passthrough": "true",
}

# Values (or companions) that turn the same checks off: served as usual.
NOT_CLOSING: dict[str, dict[str, str]] = {
    "http-backend": {"backend-protocol": "http"},
    "no-rate-limit": {"limit-rps": "0"},
    "generous-rate-limit": {"limit-rps": "1000", "limit-connections": "100"},
    "modsecurity-off": {"enable-modsecurity": "false"},
    "tls-verify-off": {"auth-tls-secret": "default/ca", "auth-tls-verify-client": "off"},
    "realm-only": {"auth-realm": "Staff only"},  # no auth-type: ingress-nginx checks nothing
    "secret-only": {"auth-secret": "users"},
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
    # The migration report: each Ingress, then each annotation on its own line, verdict first.
    report = result.stdout.split("Annotations (")[1].split("\nWarnings:")[0].splitlines()
    for name, value in CLOSING.items():
        at = report.index(
            next(r for r in report if r.startswith(f"  Ingress default/closed-{name} "))
        )
        assert report[at + 1].split()[:4] == ["not", "supported,", "fail", "closed"]
        assert f"{name}: {value}" in report[at + 1]
    (honoured,) = [line for line in report if "  backend-protocol: http" in line]
    assert honoured.strip().startswith("honoured "), honoured
    (ignored,) = [line for line in report if "  auth-realm: Staff only" in line]
    assert ignored.strip().startswith("ignored, nothing to act on "), ignored


# --- source ranges (allowlist-source-range, its alias, denylist-source-range) -------------

# name → (annotations, whether 127.0.0.1, the tests' client, gets through)
RANGES: dict[str, tuple[dict[str, str], bool]] = {
    "allow-other": ({"allowlist-source-range": "10.0.0.0/8, 192.168.0.0/16"}, False),
    "allow-us": ({"allowlist-source-range": "10.0.0.0/8,127.0.0.1"}, True),
    "alias-other": ({"whitelist-source-range": "10.0.0.0/8"}, False),
    "alias-us": ({"whitelist-source-range": "127.0.0.0/8"}, True),
    "new-name-wins": ({"allowlist-source-range": "10.0.0.0/8",
                       "whitelist-source-range": "127.0.0.0/8"}, False),
    "empty-new-name": ({"allowlist-source-range": "",
                        "whitelist-source-range": "10.0.0.0/8"}, False),
    "deny-us": ({"denylist-source-range": "127.0.0.1/32"}, False),
    "deny-other": ({"denylist-source-range": "10.0.0.0/8, 2001:db8::/32"}, True),
    "deny-first": ({"denylist-source-range": "127.0.0.1",
                    "allowlist-source-range": "127.0.0.0/8"}, False),
    "ipv6-only": ({"allowlist-source-range": "::1/128, 2001:db8::/32"}, False),
}  # fmt: skip


def ranges_site(backend: Backend) -> list[Obj]:
    objects: list[Obj] = [*manifests.service("app", [backend.port])]
    for name, (values, _) in RANGES.items():
        annotations = {PREFIX + k: v for k, v in values.items()}
        objects.append(
            manifests.ingress(name, host_of(name), {"/": "app"}, annotations=annotations)
        )
    return objects


async def test_source_ranges_on_every_listener(backend: Backend, ingressd: StartIngressd) -> None:
    proxy = await ingressd(ranges_site(backend), https=True)
    clients = listeners(proxy)
    expected_requests = 0
    try:
        for listener, http in clients.items():
            for name, (_, passes) in RANGES.items():
                for target in ("/", "/deep/path?q=1"):
                    response = await http.get(target, headers={"host": host_of(name)})
                    expected = 200 if passes else 403
                    assert response.status_code == expected, (listener, name, target)
                    expected_requests += passes
    finally:
        await asyncio.gather(*(http.aclose() for http in clients.values()))
    assert backend.requests == expected_requests


@pytest.mark.parametrize(
    ("forwarded_for", "trusted", "status"),
    [
        ("203.0.113.9", True, 200),  # behind a trusted proxy: X-Forwarded-For's address
        ("198.51.100.1", True, 403),
        ("2001:db8::5", True, 200),  # IPv6 clients are checked against IPv6 networks
        ("203.0.113.9, 198.51.100.1", True, 403),  # the right-most untrusted address counts
        ("198.51.100.1, 203.0.113.9", True, 200),
        ("203.0.113.9", False, 403),  # an untrusted peer cannot claim an address
    ],
)
async def test_the_client_address_behind_a_trusted_proxy(
    backend: Backend, ingressd: StartIngressd, forwarded_for: str, trusted: bool, status: int
) -> None:
    annotations = {PREFIX + "allowlist-source-range": "203.0.113.0/24, 2001:db8::/32"}
    objects = [
        *manifests.service("app", [backend.port]),
        manifests.ingress("ranged", "ranged.test", {"/": "app"}, annotations=annotations),
    ]
    flags = ("--trusted-proxies", "127.0.0.1/32") if trusted else ()
    proxy = await ingressd(objects, *flags)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        headers = {"host": "ranged.test", "x-forwarded-for": forwarded_for}
        response = await http.get("/", headers=headers)
    assert response.status_code == status
    assert backend.requests == (status == 200)


async def test_a_bad_range_is_a_config_error_naming_it(tmp_path: Path) -> None:
    annotations = {PREFIX + "allowlist-source-range": "10.0.0.0/8, 10.0.0.300"}
    objects = [manifests.ingress("bad", "bad.test", {"/": "app"}, annotations=annotations)]
    config = manifests.write(tmp_path / "bad.yaml", objects)
    command = [sys.executable, "-m", "ingressd", "--check", "--config", str(config)]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"[{PREFIX}allowlist-source-range]: invalid value" in result.stderr
    assert "10.0.0.300" in result.stderr


# --- basic authentication (auth-type: basic) ----------------------------------------------


def htpasswd_lines() -> dict[str, str]:
    """A user per hash format nginx reads, each made by the libraries (password: see
    `password_of`)."""
    import bcrypt
    from passlib.hash import apr_md5_crypt, des_crypt, ldap_salted_sha1, ldap_sha1, sha512_crypt

    password = password_of
    bcrypted = bcrypt.hashpw(password("alice").encode(), bcrypt.gensalt(4)).decode()
    return {
        "alice": bcrypted.replace("$2b$", "$2y$"),  # htpasswd -B writes $2y$
        "bob": apr_md5_crypt.hash(password("bob")),
        "carol": sha512_crypt.using(rounds=5000).hash(password("carol")),
        "dave": ldap_sha1.hash(password("dave")),
        "erin": ldap_salted_sha1.hash(password("erin")),
        "frank": des_crypt.hash(password("frank")),
        "grace": "{PLAIN}" + password("grace"),
    }


def password_of(user: str) -> str:
    return f"pw of {user}!"


def auth_secret(name: str, data: dict[str, str], namespace: str = "default") -> Obj:
    import base64

    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace}, "data": encoded}  # fmt: skip


def basic(**extra: str) -> dict[str, str]:
    return {
        PREFIX + "auth-type": "basic",
        **{PREFIX + k.replace("_", "-"): v for k, v in extra.items()},
    }


async def test_basic_auth_accepts_each_hash_format_and_answers_401_otherwise(
    backend: Backend, ingressd: StartIngressd
) -> None:
    users = htpasswd_lines()
    file = "\n".join(f"{user}:{hashed}" for user, hashed in users.items()) + "\n"
    objects = [
        *manifests.service("app", [backend.port]),
        auth_secret("users", {"auth": "# staff\n\n" + file}),
        auth_secret("user-map", users),
        manifests.ingress("file", "file.test", {"/": "app"},
                          annotations=basic(auth_secret="users", auth_realm='Staff "only"')),
        manifests.ingress("map", "map.test", {"/": "app"},
                          annotations=basic(auth_secret="default/user-map",
                                            auth_secret_type="auth-map")),
    ]  # fmt: skip
    proxy = await ingressd(objects, https=True)
    clients = listeners(proxy)
    passed = 0
    try:
        for listener, http in clients.items():
            for host in ("file.test", "map.test"):
                for user in users:
                    right = await http.get(
                        "/x", headers={"host": host}, auth=(user, password_of(user))
                    )
                    assert right.status_code == 200, (listener, host, user)
                    again = await http.get(
                        "/x", headers={"host": host}, auth=(user, password_of(user))
                    )
                    assert again.status_code == 200, (listener, host, user)  # remembered
                    passed += 2
                    wrong = await http.get("/x", headers={"host": host}, auth=(user, user + "!"))
                    assert wrong.status_code == 401, (listener, host, user)
                for headers in ({}, {"authorization": "Bearer abc"},
                                {"authorization": "Basic !!!"}):  # fmt: skip
                    response = await http.get("/x", headers={"host": host, **headers})
                    assert response.status_code == 401, (listener, host, headers)
                unknown = await http.get("/x", headers={"host": host}, auth=("mallory", "x"))
                assert unknown.status_code == 401
    finally:
        await asyncio.gather(*(http.aclose() for http in clients.values()))
    assert backend.requests == passed
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        challenge = await http.get("/", headers={"host": "file.test"})
        assert challenge.headers["www-authenticate"] == 'Basic realm="Staff \\"only\\""'
        challenge = await http.get("/", headers={"host": "map.test"})
        assert challenge.headers["www-authenticate"] == 'Basic realm=""'


@pytest.mark.parametrize(
    ("annotations", "secrets", "problem"),
    [
        (basic(), [], "without auth-secret"),
        (basic(auth_secret="missing"), [], "auth-secret default/missing not found"),
        (basic(auth_secret="other/users"), [("users", "other")], "in another namespace"),
        (basic(auth_secret="nokey"), [("nokey", "default")], "has no key auth"),
    ],
)
async def test_basic_auth_that_cannot_be_enforced_is_503_never_open(
    backend: Backend, ingressd: StartIngressd, annotations: dict[str, str],
    secrets: list[tuple[str, str]], problem: str,
) -> None:  # fmt: skip
    line = "alice:{PLAIN}" + password_of("alice")
    objects = [
        *manifests.service("app", [backend.port]),
        *(auth_secret(name, {"htpasswd": line} if name == "nokey" else {"auth": line}, namespace)
          for name, namespace in secrets),
        manifests.ingress("guarded", "guarded.test", {"/": "app"}, annotations=annotations),
        manifests.ingress("open", "open.test", {"/": "app"}),
    ]  # fmt: skip
    proxy = await ingressd(objects)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        guarded = await http.get(
            "/", headers={"host": "guarded.test"}, auth=("alice", password_of("alice"))
        )
        control = await http.get("/", headers={"host": "open.test"})
    assert guarded.status_code == 503
    assert control.status_code == 200
    assert backend.requests == 1
    assert any(problem in line and "503" in line for line in proxy.lines), proxy.lines


async def test_a_body_sent_while_the_password_is_checked_reaches_the_backend_whole(
    backend: Backend, ingressd: StartIngressd
) -> None:
    import hashlib

    import bcrypt

    hashed = bcrypt.hashpw(password_of("alice").encode(), bcrypt.gensalt(8)).decode()
    objects = [
        *manifests.service("app", [backend.port]),
        auth_secret("users", {"auth": f"alice:{hashed}\n"}),
        manifests.ingress("up", "up.test", {"/": "app"},
                          annotations=basic(auth_secret="users", proxy_body_size="8m")),
    ]  # fmt: skip
    proxy = await ingressd(objects)
    body = bytes(range(256)) * 1024  # 256 KiB: more than is held while the check runs
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False, timeout=10) as http:
        response = await http.post(
            "/upload", content=body, headers={"host": "up.test"},
            auth=("alice", password_of("alice")),
        )  # fmt: skip
        refused = await http.post("/upload", content=body, headers={"host": "up.test"})
    assert response.status_code == 200
    received = response.json()
    assert (received["length"], received["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert refused.status_code == 401
    assert backend.requests == 1


# --- limits (limit-rps, limit-rpm, limit-connections, limit-allowlist) ------------------------


def limited(backend: Backend, **values: str) -> list[Obj]:
    annotations = {PREFIX + k.replace("_", "-"): v for k, v in values.items()}
    return [
        *manifests.service("app", [backend.port]),
        manifests.ingress("limited", "limited.test", {"/a": "app", "/b": "app", "/sleep": "app"},
                          annotations=annotations),
        manifests.ingress("free", "free.test", {"/": "app"}),
    ]  # fmt: skip


async def statuses(proxy: Ingressd, count: int, host: str = "limited.test") -> list[int]:
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        return [
            (await http.get(f"/{'ab'[i % 2]}", headers={"host": host})).status_code
            for i in range(count)
        ]


async def test_limit_rps_lets_the_burst_through_then_answers_503_across_paths_and_reloads(
    backend: Backend, ingressd: StartIngressd
) -> None:
    # limit-rps 1 and a burst multiplier of 2: three requests at once, then one a second.
    objects = limited(backend, limit_rps="1", limit_burst_multiplier="2")
    proxy = await ingressd(objects)
    assert await statuses(proxy, 5) == [200, 200, 200, 503, 503]  # /a and /b share it
    assert await statuses(proxy, 3, "free.test") == [200] * 3  # other Ingresses: not limited
    # A reload (here: one more Ingress) keeps the state: still over the limit at once.
    extra = manifests.ingress("more", "more.test", {"/": "app"})
    lines = await reload(proxy, [*objects, extra], "reloaded:")
    assert lines
    assert await statuses(proxy, 1) == [503]
    assert backend.requests == 6


async def test_limit_allowlist_exempts_its_clients(
    backend: Backend, ingressd: StartIngressd
) -> None:
    objects = limited(backend, limit_rpm="1", limit_burst_multiplier="1",
                      limit_allowlist="10.0.0.0/8, 127.0.0.1")  # fmt: skip
    proxy = await ingressd(objects)
    assert await statuses(proxy, 6) == [200] * 6


async def test_limit_connections_counts_requests_in_progress_and_releases_them(
    backend: Backend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(limited(backend, limit_connections="1"))
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False, timeout=10) as http:
        slow = asyncio.create_task(http.get("/sleep/0.5", headers={"host": "limited.test"}))
        await wait_until(lambda: backend.requests == 1, 5, "the slow request upstream")
        second = await http.get("/b", headers={"host": "limited.test"})
        assert second.status_code == 503
        assert (await slow).status_code == 200
        assert (await http.get("/b", headers={"host": "limited.test"})).status_code == 200
    # A client that goes away mid-request gives its place back.
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET /sleep/2 HTTP/1.1\r\nHost: limited.test\r\n\r\n")
        await wait_until(lambda: backend.requests == 3, 5, "the abandoned request upstream")
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False, timeout=10) as http:
        deadline = asyncio.get_running_loop().time() + 5
        while (await http.get("/b", headers={"host": "limited.test"})).status_code == 503:
            assert asyncio.get_running_loop().time() < deadline, "never released"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("satisfy", "allowlist", "with_credentials", "status"),
    [
        ("any", "10.0.0.0/8", False, 401),  # outside the range: credentials needed, 401
        ("any", "10.0.0.0/8", True, 200),
        ("any", "127.0.0.0/8", False, 200),  # inside the range: no credentials needed
        ("all", "127.0.0.0/8", False, 401),  # both needed
        ("all", "10.0.0.0/8", True, 403),
        ("all", "127.0.0.0/8", True, 200),
        # A denylist alone never stands for credentials (nginx: "declined", not allowed).
        ("any", "deny:203.0.113.0/24", False, 401),
        ("any", "deny:127.0.0.1", True, 200),  # denied, but satisfy any: credentials suffice
        ("any", "deny:127.0.0.1", False, 401),
    ],
)
async def test_satisfy_any_lets_either_the_range_or_the_credentials_through(
    backend: Backend, ingressd: StartIngressd, satisfy: str, allowlist: str,
    with_credentials: bool, status: int,
) -> None:  # fmt: skip
    ranges = (
        {"denylist_source_range": allowlist[5:]}
        if allowlist.startswith("deny:")
        else {"allowlist_source_range": allowlist}
    )
    annotations = basic(auth_secret="users", satisfy=satisfy, **ranges)
    objects = [
        *manifests.service("app", [backend.port]),
        auth_secret("users", {"auth": "alice:{PLAIN}" + password_of("alice")}),
        manifests.ingress("either", "either.test", {"/": "app"}, annotations=annotations),
    ]
    proxy = await ingressd(objects)
    auth = ("alice", password_of("alice")) if with_credentials else None
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        response = await http.get("/", headers={"host": "either.test"}, auth=auth)
    assert response.status_code == status
    assert backend.requests == (status == 200)


async def test_basic_auth_on_a_regex_host_with_a_rewrite(
    backend: Backend, ingressd: StartIngressd
) -> None:
    annotations = basic(auth_secret="users", use_regex="true", rewrite_target="/$1")
    objects = [
        *manifests.service("app", [backend.port]),
        auth_secret("users", {"auth": "alice:{PLAIN}" + password_of("alice")}),
        manifests.ingress("rx", "rx.test", {"/api/(.*)": "app"}, annotations=annotations,
                          path_type="ImplementationSpecific"),
    ]  # fmt: skip
    proxy = await ingressd(objects)
    async with httpx.AsyncClient(base_url=proxy.http, trust_env=False) as http:
        refused = await http.get("/api/items", headers={"host": "rx.test"})
        served = await http.get(
            "/api/items", headers={"host": "rx.test"}, auth=("alice", password_of("alice"))
        )
    assert refused.status_code == 401
    assert served.status_code == 200 and served.json()["target"] == "/items"
