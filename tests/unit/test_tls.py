"""The certificate store (SPEC §2 Secrets, §5 TLS), without sockets: checking a PEM chain
and key, the errors and warnings of `build_store`, SNI selection, the generated default
certificate, Secrets from `data` / `stringData` / ``--certs-dir``, and ``--check``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingressd.cli import main
from ingressd.model import ObjectRef, Origin, TLSSecret
from ingressd.routes import TLSHost
from ingressd.runtime import build_runtime
from ingressd.settings import Settings
from ingressd.tls import (
    Certificate,
    CertificateError,
    CertificateStore,
    build_store,
    check_certificate,
    default_certificate,
)
from tests import kube
from tests.kube import WriteYaml

SECRET = ObjectRef("shop", "web-tls")
INGRESS = ObjectRef("shop", "web")
ORIGIN = Origin("/etc/ingressd/shop.yaml", 42)
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def default() -> Certificate:
    return default_certificate()


def chain_of(leaf: trustme.LeafCert) -> bytes:
    return b"".join(blob.bytes() for blob in leaf.cert_chain_pems)


def key_of(leaf: trustme.LeafCert) -> bytes:
    return leaf.private_key_pem.bytes()


def secret(leaf: trustme.LeafCert, ref: ObjectRef = SECRET, origin: Origin = ORIGIN) -> TLSSecret:
    return TLSSecret(ref, origin, chain_of(leaf), key_of(leaf))


def self_signed(not_before: dt.datetime, not_after: dt.datetime) -> tuple[bytes, bytes]:
    """A certificate for app.example.com valid over [not_before, not_after], and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("app.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


# --- check_certificate ----------------------------------------------------------------


def test_check_certificate_accepts_a_leaf_and_its_key(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("app.example.com", "*.wild.example.com", common_name="app.example.com")
    certificate = check_certificate("shop/web-tls", chain_of(leaf), key_of(leaf), origin=ORIGIN)
    assert certificate.name == "shop/web-tls"
    assert certificate.origin == ORIGIN
    assert certificate.subject.startswith("CN=app.example.com,")
    assert certificate.sans == ("app.example.com", "*.wild.example.com")
    assert certificate.not_after > NOW + dt.timedelta(days=365)
    assert certificate.covers("app.example.com")
    assert certificate.covers("a.wild.example.com")
    assert not certificate.covers("a.b.wild.example.com")
    assert not certificate.covers("wild.example.com")


def test_check_certificate_accepts_a_chain_through_intermediates(ca: trustme.CA) -> None:
    leaf = ca.create_child_ca().create_child_ca().issue_cert("app.example.com")
    assert len(leaf.cert_chain_pems) == 3  # leaf, its issuer, the issuer's issuer
    certificate = check_certificate("shop/web-tls", chain_of(leaf), key_of(leaf))
    assert certificate.sans == ("app.example.com",)


@pytest.mark.parametrize(
    "chain",
    [
        b"garbage",
        b"",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    ],
    ids=["garbage", "empty", "pem-armour-around-junk"],
)
def test_check_certificate_rejects_a_bad_certificate_pem(ca: trustme.CA, chain: bytes) -> None:
    leaf = ca.issue_cert("app.example.com")
    with pytest.raises(CertificateError, match=r"^tls\.crt is not a PEM certificate"):
        check_certificate("shop/web-tls", chain, key_of(leaf))


def test_check_certificate_rejects_a_bad_key_pem(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("app.example.com")
    with pytest.raises(CertificateError, match=r"tls\.key is not an unencrypted PEM private key"):
        check_certificate("shop/web-tls", chain_of(leaf), b"-----BEGIN PRIVATE KEY-----\n")


def test_check_certificate_rejects_a_key_of_another_certificate(ca: trustme.CA) -> None:
    leaf, other = ca.issue_cert("app.example.com"), ca.issue_cert("app.example.com")
    with pytest.raises(CertificateError, match=r"tls\.key does not match the certificate"):
        check_certificate("shop/web-tls", chain_of(leaf), key_of(other))


def test_check_certificate_rejects_a_chain_out_of_order(ca: trustme.CA) -> None:
    leaf = ca.create_child_ca().create_child_ca().issue_cert("app.example.com")
    first, issuer, issuers_issuer = (blob.bytes() for blob in leaf.cert_chain_pems)
    with pytest.raises(CertificateError, match="chain out of order: certificate 0 "):
        check_certificate("shop/web-tls", first + issuers_issuer + issuer, key_of(leaf))


def test_check_certificate_rejects_a_chain_with_a_foreign_intermediate(ca: trustme.CA) -> None:
    leaf = ca.create_child_ca().issue_cert("app.example.com")
    foreign = trustme.CA().create_child_ca().issue_cert("x.test").cert_chain_pems[1].bytes()
    with pytest.raises(CertificateError, match="chain out of order"):
        check_certificate("shop/web-tls", leaf.cert_chain_pems[0].bytes() + foreign, key_of(leaf))


def test_check_certificate_rejects_an_issuer_with_the_right_name_but_another_key() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA")])
    issuer_key, impostor_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "abc")
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app")])
    leaf = signed(leaf_name, name, leaf_key.public_key(), issuer_key)
    impostor = signed(name, name, impostor_key.public_key(), impostor_key)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, impostor))
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateError, match="certificate 0 is not signed by certificate 1"):
        check_certificate("shop/web-tls", chain, key)


def signed(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=90))
        .sign(signing_key, hashes.SHA256())
    )


def test_check_certificate_rejects_an_expired_certificate() -> None:
    chain, key = self_signed(NOW - dt.timedelta(days=90), NOW - dt.timedelta(days=1))
    expired_on = (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    with pytest.raises(CertificateError, match=f"certificate expired on {expired_on}"):
        check_certificate("shop/web-tls", chain, key)


def test_check_certificate_accepts_a_certificate_that_expires_tomorrow() -> None:
    chain, key = self_signed(NOW - dt.timedelta(days=90), NOW + dt.timedelta(days=1))
    assert check_certificate("shop/web-tls", chain, key).sans == ("app.example.com",)


# --- build_store: errors and warnings --------------------------------------------------


def hosts(*names: str, secret_ref: ObjectRef = SECRET) -> list[TLSHost]:
    return [TLSHost(name, secret_ref, INGRESS) for name in names]


def test_build_store_error_names_file_line_and_secret(ca: trustme.CA, default: Certificate) -> None:
    broken = TLSSecret(SECRET, ORIGIN, b"garbage", key_of(ca.issue_cert("app.example.com")))
    build = build_store(hosts("app.example.com", "www.example.com"), [broken], default)
    assert len(build.errors) == 1, build.errors  # one error per Secret, not per host
    assert build.errors[0].startswith(
        "/etc/ingressd/shop.yaml:42: Secret shop/web-tls: tls.crt is not a PEM certificate"
    )
    assert build.store.select("app.example.com") is default


def test_build_store_error_for_a_key_that_does_not_match(
    ca: trustme.CA, default: Certificate
) -> None:
    leaf, other = ca.issue_cert("app.example.com"), ca.issue_cert("app.example.com")
    mismatched = TLSSecret(SECRET, ORIGIN, chain_of(leaf), key_of(other))
    build = build_store(hosts("app.example.com"), [mismatched], default)
    assert build.errors == [
        "/etc/ingressd/shop.yaml:42: Secret shop/web-tls: "
        "tls.key does not match the certificate in tls.crt"
    ]


def test_build_store_warns_of_expiry_within_30_days(ca: trustme.CA, default: Certificate) -> None:
    soon = NOW + dt.timedelta(days=10)
    leaf = ca.issue_cert("app.example.com", not_after=soon)
    build = build_store(hosts("app.example.com"), [secret(leaf)], default)
    assert build.errors == []
    assert build.warnings == [
        f"/etc/ingressd/shop.yaml:42: Secret shop/web-tls: certificate expires on "
        f"{soon:%Y-%m-%d} (within 30 days)"
    ]
    assert build.store.select("app.example.com").sans == ("app.example.com",)


def test_build_store_no_expiry_warning_beyond_30_days(ca: trustme.CA, default: Certificate) -> None:
    leaf = ca.issue_cert("app.example.com", not_after=NOW + dt.timedelta(days=45))
    build = build_store(hosts("app.example.com"), [secret(leaf)], default)
    assert (build.errors, build.warnings) == ([], [])


def test_build_store_warns_of_a_tls_host_not_covered_by_the_sans(
    ca: trustme.CA, default: Certificate
) -> None:
    leaf = ca.issue_cert("app.example.com", "*.wild.example.com")
    tls_hosts = hosts("app.example.com", "a.wild.example.com", "*.wild.example.com", "b.other")
    build = build_store(tls_hosts, [secret(leaf)], default)
    assert build.errors == []
    assert build.warnings == [
        "/etc/ingressd/shop.yaml:42: Secret shop/web-tls: certificate does not cover TLS host "
        "b.other of Ingress shop/web (SANs: app.example.com, *.wild.example.com)"
    ]


def test_build_store_serves_a_missing_secret_with_the_default_certificate(
    default: Certificate,
) -> None:
    build = build_store(hosts("app.example.com"), [], default)
    assert (build.errors, build.warnings) == ([], [])
    assert build.store.select("app.example.com") is default


# --- CertificateStore.select ----------------------------------------------------------


@pytest.fixture(scope="module")
def store(ca: trustme.CA, default: Certificate) -> CertificateStore:
    """app.example.com → the "exact" certificate; *.example.com → the "wildcard" one."""
    exact = ca.issue_cert("app.example.com", common_name="exact")
    wildcard = ca.issue_cert("*.example.com", common_name="wildcard")
    wildcard_ref = ObjectRef("shop", "wildcard-tls")
    build = build_store(
        [*hosts("app.example.com"), *hosts("*.example.com", secret_ref=wildcard_ref)],
        [secret(exact), secret(wildcard, wildcard_ref)],
        default,
    )
    assert (build.errors, build.warnings) == ([], [])
    return build.store


def common_name(certificate: Certificate) -> str:
    return certificate.subject.split(",")[0]


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        ("app.example.com", "CN=exact"),  # the exact host beats the wildcard
        ("APP.Example.COM", "CN=exact"),  # DNS names are case-insensitive
        ("app.example.com.", "CN=exact"),  # a fully qualified name with its root dot
        ("a.example.com", "CN=wildcard"),
        ("a.b.example.com", "CN=ingressd default certificate"),  # one label only
        ("example.com", "CN=ingressd default certificate"),
        ("unknown.test", "CN=ingressd default certificate"),
        ("", "CN=ingressd default certificate"),
        (None, "CN=ingressd default certificate"),
    ],
)
def test_select_by_sni_name(
    store: CertificateStore, server_name: str | None, expected: str
) -> None:
    assert common_name(store.select(server_name)) == expected


def test_select_unknown_and_no_sni_return_the_default(
    store: CertificateStore, default: Certificate
) -> None:
    assert store.select("unknown.test") is default
    assert store.select(None) is default


def test_generated_default_certificate() -> None:
    certificate = default_certificate()
    parsed = x509.load_pem_x509_certificate(certificate.chain_pem)
    names = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["ingressd default certificate"]
    assert parsed.issuer == parsed.subject  # self-signed
    assert certificate.name == "default"
    assert certificate.not_after > NOW + dt.timedelta(days=300)


def test_default_certificate_from_files(ca: trustme.CA, tmp_path: Path) -> None:
    leaf = ca.issue_cert("fallback.example.com", common_name="fallback")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "default.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "default.key"))
    certificate = default_certificate(str(tmp_path / "default.crt"), str(tmp_path / "default.key"))
    assert common_name(certificate) == "CN=fallback"
    assert certificate.sans == ("fallback.example.com",)


# --- Secrets as the configuration gives them ------------------------------------------


def tls_objects(secret_name: str = "web-tls", *extra: kube.Obj) -> list[kube.Obj]:
    """A Service, its Endpoints and an Ingress for app.example.com with a TLS section."""
    return [
        kube.service("web", kube.service_port(80, "http")),
        kube.endpoints("web", ["127.0.0.1"], kube.endpoint_port(8080, "http")),
        kube.ingress(
            "web",
            kube.rule("app.example.com", kube.path("/", "web")),
            tls=[{"hosts": ["app.example.com", "*.wild.example.com"], "secretName": secret_name}],
        ),
        *extra,
    ]


@pytest.fixture(scope="module")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert(
        "app.example.com",
        "*.wild.example.com",
        common_name="app.example.com",
        not_after=dt.datetime(2031, 5, 17, tzinfo=dt.UTC),
    )


def served_subject(
    paths: Sequence[str], default: Certificate, certs_dir: str | None = None
) -> tuple[str, str]:
    runtime = build_runtime(Settings(config_paths=tuple(paths), certs_dir=certs_dir), default)
    assert runtime.warnings == ()
    return (
        runtime.certs.select("app.example.com").subject,
        runtime.certs.select("a.wild.example.com").subject,
    )


@pytest.mark.parametrize("string_data", [False, True], ids=["data-base64", "stringData"])
def test_secret_object_is_served(
    write_yaml: WriteYaml,
    default: Certificate,
    leaf: trustme.LeafCert,
    string_data: bool,
) -> None:
    chain, key = chain_of(leaf).decode(), key_of(leaf).decode()
    given = kube.tls_secret("web-tls", chain, key, string_data=string_data)
    path = write_yaml(*tls_objects("web-tls", given))
    subject = x509.load_pem_x509_certificate(chain_of(leaf)).subject.rfc4514_string()
    assert served_subject([path], default) == (subject, subject)


def test_secret_from_certs_dir_is_served(
    write_yaml: WriteYaml, default: Certificate, leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    certs = tmp_path / "pems"
    certs.mkdir()
    (certs / "web-tls.crt").write_bytes(chain_of(leaf))
    (certs / "web-tls.key").write_bytes(key_of(leaf))
    path = write_yaml(*tls_objects("web-tls"))
    subject = x509.load_pem_x509_certificate(chain_of(leaf)).subject.rfc4514_string()
    assert served_subject([path], default, certs_dir=str(certs)) == (subject, subject)


def test_secret_from_the_default_certs_dir_beside_the_config(
    write_yaml: WriteYaml, default: Certificate, leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    path = write_yaml(*tls_objects("web-tls"), name="site/ingress.yaml")
    (tmp_path / "site" / "certs").mkdir()
    (tmp_path / "site" / "certs" / "web-tls.crt").write_bytes(chain_of(leaf))
    (tmp_path / "site" / "certs" / "web-tls.key").write_bytes(key_of(leaf))
    subject = x509.load_pem_x509_certificate(chain_of(leaf)).subject.rfc4514_string()
    assert served_subject([path], default) == (subject, subject)


# --- ingressd --check -----------------------------------------------------------------


def test_check_lists_each_tls_host_with_subject_sans_and_expiry(
    write_yaml: WriteYaml, leaf: trustme.LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, key = chain_of(leaf).decode(), key_of(leaf).decode()
    path = write_yaml(*tls_objects("web-tls", kube.tls_secret("web-tls", chain, key)))
    assert main(["--check", "--config", path]) == 0
    out = capsys.readouterr().out.splitlines()
    subject = x509.load_pem_x509_certificate(chain_of(leaf)).subject.rfc4514_string()
    served = (
        f"      certificate default/web-tls: {subject}; "
        "SANs app.example.com, *.wild.example.com; expires 2031-05-17"
    )
    for host in ("app.example.com", "*.wild.example.com"):
        index = out.index(f"  {host}  → secret default/web-tls  [ingress default/web]")
        assert out[index + 1] == served, out
    assert "Default certificate: CN=ingressd default certificate, expires " in "\n".join(out)


def test_check_exits_1_naming_the_secret_with_a_broken_pem(
    write_yaml: WriteYaml, leaf: trustme.LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = kube.tls_secret("web-tls", "garbage", key_of(leaf).decode(), string_data=True)
    text = kube.dump(*tls_objects("web-tls", broken))
    path = write_yaml(text)
    assert main(["--check", "--config", path]) == 1
    captured = capsys.readouterr()
    problems = [line for line in captured.err.splitlines() if "Secret default/web-tls:" in line]
    assert len(problems) == 1, captured.err
    location, _, message = problems[0].partition(": Secret default/web-tls: ")
    file, _, line = location.rpartition(":")
    assert file == path
    secret_start = text.count("\n", 0, text.rindex("apiVersion: v1")) + 1
    assert secret_start <= int(line) <= kube.line_of(text, "tls.crt: garbage"), problems[0]
    assert message.startswith("tls.crt is not a PEM certificate")
    assert "1 error(s); configuration rejected" in captured.err
