"""TLS termination end to end (SPEC §5): real handshakes against ingressd's https listener
with trustme certificates — SNI selection, protocol versions and ALPN, requests over TLS,
http→https redirects, certificate rotation by SIGHUP, a broken PEM on reload, and a large
download byte for byte.

Handshake-only tests share one ingressd (module scope) whose backend is a dead port: they
never reach it.  Tests that need a backend or a reload start their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests import manifests
from tests.backends import Backend, pattern
from tests.integration.conftest import Obj, StartBackend, StartIngressd, app, dead_port
from tests.integration.rawhttp import RawClient, Response
from tests.proc import Ingressd

DEFAULT_CN = "ingressd default certificate"
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"
TIMEOUT = 5.0


# --- certificates and configuration -----------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: trustme.CA
    first: trustme.LeafCert  # app.test (and noredirect.test), CN "app.test first"
    second: trustme.LeafCert  # app.test, CN "app.test second": the rotated-in one
    wild: trustme.LeafCert  # *.wild.example

    def trusting(self) -> ssl.SSLContext:
        """A client context that trusts the test CA and checks the host name."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def certs() -> Certs:
    ca = trustme.CA()
    return Certs(
        ca=ca,
        first=ca.issue_cert("app.test", "noredirect.test", common_name="app.test first"),
        second=ca.issue_cert("app.test", common_name="app.test second"),
        wild=ca.issue_cert("*.wild.example", common_name="wild"),
    )


def secret(name: str, leaf: trustme.LeafCert) -> Obj:
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return manifests.tls_secret(name, chain, leaf.private_key_pem.bytes())


def tls_app(backend: Backend | int, leaf: trustme.LeafCert) -> list[Obj]:
    """app.test with a TLS section naming Secret app-tls, which holds `leaf`."""
    return [*app(backend, tls_secret="app-tls"), secret("app-tls", leaf)]


def unverified() -> ssl.SSLContext:
    """A client context that takes any certificate (to look at the default one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


# --- clients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    certificate: x509.Certificate  # the leaf the server sent
    peercert: dict[str, Any]  # `getpeercert()`: empty unless the context verified it
    version: str | None
    alpn: str | None


def handshake(port: int, server_name: str | None, context: ssl.SSLContext) -> Handshake:
    """One TLS handshake with 127.0.0.1:`port` sending SNI `server_name` (None: no SNI)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return Handshake(
            x509.load_der_x509_certificate(der),
            tls.getpeercert() or {},
            tls.version(),
            tls.selected_alpn_protocol(),
        )


class TLSClient(RawClient):
    """A `RawClient` over TLS: ``async with TLSClient(port, context, "app.test") as c``."""

    def __init__(self, port: int, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(port)
        self.context = context
        self.server_name = server_name

    async def __aenter__(self) -> TLSClient:
        async with asyncio.timeout(TIMEOUT):
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self.port, ssl=self.context, server_hostname=self.server_name
            )
        return self

    @property
    def certificate(self) -> x509.Certificate:
        assert self._writer is not None, "not connected"
        der = self._writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)

    async def get(self, target: str, host: str = "app.test") -> Response:
        await self.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return await self.read_response()


async def get_http(port: int, target: str, host: str) -> Response:
    """One request on a new plain-HTTP connection, bytes exactly as given."""
    async with RawClient(port) as raw:
        await raw.send(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        return await raw.read_response()


def https_client(certs: Certs, proxy: Ingressd) -> httpx.AsyncClient:
    """httpx to ingressd's TLS listener; requests say ``extensions=SNI`` to name app.test."""
    return httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{proxy.ports['https']}",
        headers={"host": "app.test"},
        verify=certs.trusting(),
        timeout=30.0,
        trust_env=False,
    )


SNI = {"sni_hostname": "app.test"}


async def reload(proxy: Ingressd, objects: list[Obj], expect: str) -> list[str]:
    """Rewrite the config, send SIGHUP, wait for `expect`; the log lines since the signal."""
    start = len(proxy.lines)
    manifests.write(proxy.config, objects)
    proxy.signal(signal.SIGHUP)
    await asyncio.to_thread(proxy.wait_for_line, expect, 10.0, start)
    return proxy.lines[start:]


# --- one shared ingressd for handshakes and redirects -----------------------------------


@pytest.fixture(scope="module")
def site(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingressd]:
    """app.test (TLS), *.wild.example (TLS, wildcard), forced.test (no TLS, force-ssl-redirect)."""
    unused = dead_port()
    objects = [
        *manifests.service("app", [unused]),
        manifests.ingress("app", "app.test", {"/": "app"}, tls_secret="app-tls"),
        manifests.ingress("wild", "*.wild.example", {"/": "app"}, tls_secret="wild-tls"),
        manifests.ingress(
            "forced", "forced.test", {"/": "app"}, annotations={FORCE_SSL_REDIRECT: "true"}
        ),
        secret("app-tls", certs.first),
        secret("wild-tls", certs.wild),
    ]
    config = manifests.write(tmp_path_factory.mktemp("tls") / "site.yaml", objects)
    proxy = Ingressd(config, https=True)
    try:
        proxy.start(listeners=("http", "https", "admin"))
        yield proxy
    finally:
        code = proxy.stop()
    assert code == 0, "\n".join(proxy.lines)


# 1. SNI selection


@pytest.mark.parametrize(
    ("server_name", "expected_cn", "expected_sans"),
    [
        ("app.test", "app.test first", (("DNS", "app.test"), ("DNS", "noredirect.test"))),
        ("a.wild.example", "wild", (("DNS", "*.wild.example"),)),
    ],
    ids=["exact", "wildcard"],
)
def test_sni_name_gets_its_tls_hosts_certificate(
    site: Ingressd,
    certs: Certs,
    server_name: str,
    expected_cn: str,
    expected_sans: tuple[tuple[str, str], ...],
) -> None:
    # The context checks the chain against the test CA and the name against the SANs.
    served = handshake(site.ports["https"], server_name, certs.trusting())
    assert (("commonName", expected_cn),) in served.peercert["subject"]
    assert served.peercert["subjectAltName"] == expected_sans


@pytest.mark.parametrize(
    "server_name",
    ["unknown.test", "a.b.wild.example", "wild.example", None],
    ids=["unknown", "two-labels-under-wildcard", "wildcard-parent", "no-sni"],
)
def test_unknown_or_no_sni_gets_the_default_certificate(
    site: Ingressd, server_name: str | None
) -> None:
    served = handshake(site.ports["https"], server_name, unverified())
    assert common_name(served.certificate) == DEFAULT_CN


# 2. Protocol versions and ALPN


def legacy_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only TLS 1.0 or 1.1 (security level 0: OpenSSL 3 would not)."""
    context = unverified()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for the old versions is
        context.minimum_version = ssl.TLSVersion.TLSv1  # exactly what this test does
        context.maximum_version = version
    return context


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_are_refused(site: Ingressd, version: str) -> None:
    # The client really offers the version (see the control below): the server refuses.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(site.ports["https"], "app.test", legacy_client(ssl.TLSVersion[version]))


@pytest.mark.xfail(
    strict=True,
    reason="uvloop 0.23 closes without flushing the alert OpenSSL queued on a failed "
    "handshake (CPython gh-98078, fixed in asyncio but not in uvloop)",
)
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_refusing_an_old_version_sends_the_protocol_version_alert(
    site: Ingressd, version: str
) -> None:
    """RFC 5246 E.1 / RFC 8446 4.2.1: the server MUST answer with a protocol_version alert,
    so that the client can tell its user why (not a bare close: "unexpected EOF")."""
    with pytest.raises(ssl.SSLError) as refused:
        handshake(site.ports["https"], "app.test", legacy_client(ssl.TLSVersion[version]))
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


def test_the_legacy_client_itself_speaks_tls_1_0_and_1_1(certs: Certs) -> None:
    """The control of the test above: against a server that allows them, they work."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certs.first.configure_cert(server)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        for version, name in (("TLSv1", "TLSv1"), ("TLSv1_1", "TLSv1.1")):
            serving = threading.Thread(target=_serve_one_handshake, args=(listener, server))
            serving.start()
            try:
                served = handshake(port, "app.test", legacy_client(ssl.TLSVersion[version]))
            finally:
                serving.join(TIMEOUT)
            assert served.version == name


def _serve_one_handshake(listener: socket.socket, context: ssl.SSLContext) -> None:
    accepted, _ = listener.accept()
    accepted.settimeout(TIMEOUT)
    with context.wrap_socket(accepted, server_side=True) as tls:
        tls.recv(1)  # until the client closes


@pytest.mark.parametrize(("version", "name"), [("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_work_with_alpn_http_1_1(
    site: Ingressd, certs: Certs, version: str, name: str
) -> None:
    context = certs.trusting()
    context.minimum_version = context.maximum_version = ssl.TLSVersion[version]
    context.set_alpn_protocols(["h2", "http/1.1"])
    served = handshake(site.ports["https"], "app.test", context)
    assert (served.version, served.alpn) == (name, "http/1.1")


# 4. Redirects from the http listener (the shared ingressd)


@pytest.mark.parametrize(
    ("host", "target", "location"),
    [
        ("app.test", "/a%20b/c?x=1&y=%2F", "https://app.test:{port}/a%20b/c?x=1&y=%2F"),
        ("APP.Test", "/Mixed/Case?Q=A", "https://app.test:{port}/Mixed/Case?Q=A"),
        ("app.test:8080", "/", "https://app.test:{port}/"),
        ("app.test", "/~u/%7e;p=1/x?a=%zz&&b=+!$'*,", "https://app.test:{port}/~u/%7e;p=1/x?a=%zz&&b=+!$'*,"),
        ("app.test", "/q?", "https://app.test:{port}/q?"),
        ("App.Test", "http://App.Test/abs?x=%2F", "https://app.test:{port}/abs?x=%2F"),
        ("a.wild.example", "/w?1", "https://a.wild.example:{port}/w?1"),
        ("forced.test", "/f?g=h", "https://forced.test:{port}/f?g=h"),
    ],
    ids=[
        "path-and-query-bytes", "host-lower-cased", "host-port-dropped", "odd-bytes",
        "empty-query", "absolute-form", "wildcard-tls-host", "force-ssl-redirect-without-tls",
    ],
)  # fmt: skip
async def test_tls_host_is_redirected_with_308(
    site: Ingressd, host: str, target: str, location: str
) -> None:
    response = await get_http(site.ports["http"], target, host)
    assert response.status == 308, response
    assert response.header("location") == location.format(port=site.ports["https"])


# 3. Requests over TLS; 4. the redirects that depend on flags and annotations


def received(echo: dict[str, Any], name: str) -> list[str]:
    """Every value of header `name` as the backend received it."""
    return [value for key, value in echo["headers"] if key == name]


async def test_request_over_tls_reaches_the_backend_with_x_forwarded_proto_https(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    proxy = await ingressd(tls_app(await backends(), certs.first), https=True)
    async with https_client(certs, proxy) as client:
        response = await client.get("/over/tls?q=1", extensions=SNI)
    assert response.status_code == 200
    echo = response.json()
    assert echo["target"] == "/over/tls?q=1"
    assert received(echo, "x-forwarded-proto") == ["https"]
    assert received(echo, "x-forwarded-port") == [str(proxy.ports["https"])]
    assert received(echo, "host") == ["app.test"]


async def test_no_redirect_for_ssl_redirect_false_or_a_host_without_tls(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    backend = await backends()
    objects = [
        *app(backend, host="noredirect.test", service="noredirect", tls_secret="app-tls",
             annotations={SSL_REDIRECT: "false"}),
        *app(backend, host="plain.test", service="plain"),
        secret("app-tls", certs.first),
    ]  # fmt: skip
    proxy = await ingressd(objects, https=True)
    for host in ("noredirect.test", "plain.test"):
        response = await get_http(proxy.ports["http"], "/stay?on=http", host)
        assert response.status == 200, (host, response)
        assert received(json_of(response), "x-forwarded-proto") == ["http"]


def json_of(response: Response) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.body)
    return document


@pytest.mark.parametrize(("port", "authority"), [("443", "app.test"), ("8443", "app.test:8443")])
async def test_https_redirect_port_is_written_in_the_location(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs, port: str, authority: str
) -> None:
    flags = ("--https-redirect-port", port)
    proxy = await ingressd(tls_app(await backends(), certs.first), *flags, https=True)
    response = await get_http(proxy.ports["http"], "/a%20b/c?x=1&y=%2F", "App.Test")
    assert response.status == 308, response
    assert response.header("location") == f"https://{authority}/a%20b/c?x=1&y=%2F"


# 5. and 6. Certificates on reload


async def test_sighup_rotates_the_certificate_and_keeps_open_connections(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    backend = await backends()
    proxy = await ingressd(tls_app(backend, certs.first), https=True)
    port = proxy.ports["https"]
    async with TLSClient(port, certs.trusting(), "app.test") as kept:
        assert common_name(kept.certificate) == "app.test first"
        assert (await kept.get("/before")).status == 200
        await reload(proxy, tls_app(backend, certs.second), "reloaded:")
        rotated = await asyncio.to_thread(handshake, port, "app.test", certs.trusting())
        assert common_name(rotated.certificate) == "app.test second"
        assert rotated.certificate.serial_number != kept.certificate.serial_number
        async with TLSClient(port, certs.trusting(), "app.test") as fresh:
            assert common_name(fresh.certificate) == "app.test second"
            assert (await fresh.get("/fresh")).status == 200
        # The connection opened before the reload still serves, on its own handshake.
        assert (await kept.get("/after")).status == 200
        assert common_name(kept.certificate) == "app.test first"


def secret_lines(text: str, name: str) -> range:
    """The line numbers (1-based) of the YAML document holding Secret `name`."""
    start = 1
    for document in text.split("\n---\n"):
        lines = document.count("\n") + 1
        if "kind: Secret" in document and f"name: {name}\n" in document:
            return range(start, start + lines)
        start += lines + 1
    raise AssertionError(f"no Secret {name} in the YAML")


async def test_broken_pem_on_reload_keeps_the_old_certificate(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    backend = await backends()
    proxy = await ingressd(tls_app(backend, certs.first), https=True)
    port = proxy.ports["https"]
    key = certs.first.private_key_pem.bytes()
    broken = [*app(backend, tls_secret="app-tls"), manifests.tls_secret("app-tls", b"garbage", key)]
    async with TLSClient(port, certs.trusting(), "app.test") as kept:
        assert (await kept.get("/before")).status == 200
        logged = await reload(proxy, broken, "reload failed")
        problems = [line for line in logged if "Secret default/app-tls:" in line]
        assert problems, "\n".join(logged)
        location = problems[0].split(": Secret default/app-tls:")[0]
        assert f"{proxy.config}:" in location, problems[0]
        line = int(location.rsplit(":", 1)[1])
        assert line in secret_lines(Path(proxy.config).read_text(), "app-tls"), problems[0]
        assert "tls.crt" in problems[0], problems[0]
        async with TLSClient(port, certs.trusting(), "app.test") as fresh:
            assert common_name(fresh.certificate) == "app.test first"
            assert (await fresh.get("/fresh")).status == 200
        assert (await kept.get("/after")).status == 200


# 7. A large body over TLS


async def test_20_mib_download_over_tls_is_byte_exact(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    size = 20 * 1024 * 1024
    proxy = await ingressd(tls_app(await backends(), certs.first), https=True)
    digest, received_bytes = hashlib.sha256(), 0
    async with (
        https_client(certs, proxy) as client,
        client.stream("GET", f"/bytes/{size}", extensions=SNI) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            received_bytes += len(chunk)
    assert received_bytes == size
    assert digest.hexdigest() == hashlib.sha256(pattern(size)).hexdigest()


async def test_20_mib_upload_over_tls_to_a_stalling_backend_is_byte_exact(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    """Decrypted bytes come through the shared read buffer, also while reading is
    paused because the backend takes nothing for a second."""
    size = 20 * 1024 * 1024
    unlimited = {"nginx.ingress.kubernetes.io/proxy-body-size": "0"}
    objects = [
        *app(await backends(), tls_secret="app-tls", annotations=unlimited),
        secret("app-tls", certs.first),
    ]
    proxy = await ingressd(objects, https=True)
    data = pattern(size)
    async with https_client(certs, proxy) as client:
        response = await client.post("/slow-upload/1.0", content=data, extensions=SNI)
    assert response.status_code == 200, response.text
    assert response.json()["length"] == size
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_pipelined_requests_over_tls_are_answered_in_order(
    backends: StartBackend, ingressd: StartIngressd, certs: Certs
) -> None:
    proxy = await ingressd(tls_app(await backends(), certs.first), https=True)
    requests = (
        b"".join(b"GET /%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % n for n in range(3))
        + b"POST /3 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello"
    )
    async with TLSClient(proxy.ports["https"], certs.trusting(), "app.test") as tls:
        await tls.send(requests)  # one write: the records arrive together
        targets = [json.loads((await tls.read_response()).body)["target"] for _ in range(4)]
    assert targets == ["/0", "/1", "/2", "/3"]
