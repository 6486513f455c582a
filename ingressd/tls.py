"""The certificate store: PEM from Secrets → checked certificates → one SSLContext each.

Owns: validating certificates with `cryptography` (PEM parses, key matches,
chain order, expiry; SAN coverage of the TLS hosts), building one
`ssl.SSLContext` per certificate with ingressd's TLS policy (TLS 1.2/1.3,
Mozilla "intermediate" ciphers, ALPN http/1.1, tickets on), the generated
default certificate, and SNI selection (exact host → one-label wildcard →
default).  Built once per configuration load; no asyncio.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import itertools
import os
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import ObjectRef, Origin, TLSSecret
from .routes import TLSHost

if TYPE_CHECKING:
    from cryptography import x509

# `cryptography` is imported where certificates are handled, not at start-up: it
# costs ~10 MB of memory that an http-only ingressd without TLS Secrets never needs.

EXPIRY_WARNING = dt.timedelta(days=30)
DEFAULT_SUBJECT = "ingressd default certificate"
# Mozilla "intermediate" (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults).
INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    ]
)


class CertificateError(Exception):
    """A certificate or key that cannot be served; the message says why."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A checked certificate chain with its key, ready to serve."""

    name: str  # "namespace/secret" or "default"
    origin: Origin | None
    subject: str
    sans: tuple[str, ...]
    not_after: dt.datetime
    chain_pem: bytes
    key_pem: bytes
    context: ssl.SSLContext = field(compare=False, repr=False)

    def covers(self, host: str) -> bool:
        return any(_san_matches(san, host) for san in self.sans)


def _san_matches(san: str, host: str) -> bool:
    if san == host:
        return True
    if san.startswith("*.") and host.startswith("*."):
        return san == host
    if san.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == san[2:]
    return False


@functools.cache
def upstream_context() -> ssl.SSLContext:
    """The client context for backend-protocol: HTTPS, as ingress-nginx's default
    (proxy_ssl_verify off): TLS 1.2+, no certificate or name verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION
    return context


def new_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context with ingressd's TLS policy for one certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    _load_chain(context, chain_pem, key_pem)
    return context


def _load_chain(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """`load_cert_chain` reads files only: hand it anonymous in-memory files, never disk."""
    chain_fd = os.memfd_create("ingressd-chain", os.MFD_CLOEXEC)
    key_fd = os.memfd_create("ingressd-key", os.MFD_CLOEXEC)
    try:
        os.write(chain_fd, chain_pem)
        os.write(key_fd, key_pem)
        context.load_cert_chain(f"/proc/self/fd/{chain_fd}", f"/proc/self/fd/{key_fd}")
    finally:
        os.close(chain_fd)
        os.close(key_fd)


def check_certificate(
    name: str, chain_pem: bytes, key_pem: bytes, *, now: dt.datetime | None = None,
    origin: Origin | None = None,
) -> Certificate:  # fmt: skip
    """Parse and check a chain and its key; raises `CertificateError` naming the problem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    now = now or dt.datetime.now(dt.UTC)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise CertificateError(f"tls.crt is not a PEM certificate: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"tls.key is not an unencrypted PEM private key: {exc}") from exc
    leaf = chain[0]
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise CertificateError("tls.key does not match the certificate in tls.crt")
    _check_chain_order(chain)
    if leaf.not_valid_after_utc < now:
        raise CertificateError(f"certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    try:
        context = new_context(chain_pem, key_pem)
    except ssl.SSLError as exc:
        raise CertificateError(f"OpenSSL refuses the certificate or key: {exc.reason}") from exc
    return Certificate(
        name=name,
        origin=origin,
        subject=leaf.subject.rfc4514_string(),
        sans=_sans(leaf),
        not_after=leaf.not_valid_after_utc,
        chain_pem=chain_pem,
        key_pem=key_pem,
        context=context,
    )


def _public_bytes(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_chain_order(chain: Sequence[x509.Certificate]) -> None:
    """Each certificate must be issued (and signed) by the next one."""
    from cryptography.exceptions import InvalidSignature

    for index, (child, parent) in enumerate(itertools.pairwise(chain)):
        if child.issuer != parent.subject:
            raise CertificateError(
                f"chain out of order: certificate {index} ({child.subject.rfc4514_string()}) "
                f"is not issued by certificate {index + 1} ({parent.subject.rfc4514_string()})"
            )
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(
                f"certificate {index} is not signed by certificate {index + 1}"
            ) from exc


def _sans(certificate: x509.Certificate) -> tuple[str, ...]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(n.value).lower() for n in names)
    dns = extension.value.get_values_for_type(x509.DNSName)
    ips = extension.value.get_values_for_type(x509.IPAddress)
    return tuple(n.lower() for n in dns) + tuple(str(ip) for ip in ips)


def generate_self_signed(
    hosts: Iterable[str], *, common_name: str = DEFAULT_SUBJECT, days: int = 365,
    issuer: tuple[bytes, bytes] | None = None, is_ca: bool = False,
) -> tuple[bytes, bytes]:  # fmt: skip
    """An EC P-256 certificate and key (PEM), self-signed or signed by `issuer` (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signing_key = subject, key
    if issuer is not None:
        issuer_cert = x509.load_pem_x509_certificate(issuer[0])
        issuer_name = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(issuer[1], password=None)  # type: ignore[assignment]
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    certificate = builder.sign(signing_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass(frozen=True, slots=True)
class CertificateStore:
    """SNI name → SSLContext, built once per configuration load."""

    default: Certificate | None  # None: no https listener and no --default-cert
    exact: dict[str, Certificate] = field(default_factory=dict)
    wildcard: dict[str, Certificate] = field(
        default_factory=dict
    )  # "example.com" for *.example.com
    certificates: tuple[Certificate, ...] = ()
    hosts: tuple[tuple[str, Certificate], ...] = ()  # (TLS host, the certificate serving it)

    def select(self, server_name: str | None) -> Certificate | None:
        """Exact TLS host, then a one-label wildcard TLS host, then the default certificate."""
        if not server_name:
            return self.default
        name = server_name.lower().rstrip(".")
        certificate = self.exact.get(name)
        if certificate is not None:
            return certificate
        first, _, rest = name.partition(".")
        if first and rest:
            certificate = self.wildcard.get(rest)
            if certificate is not None:
                return certificate
        return self.default


@dataclass
class StoreBuild:
    store: CertificateStore
    errors: list[str]
    warnings: list[str]


def build_store(
    tls_hosts: Sequence[TLSHost], secrets: Sequence[TLSSecret], default: Certificate | None,
    *, now: dt.datetime | None = None,
) -> StoreBuild:  # fmt: skip
    """Check every Secret a TLS host uses; errors and warnings name the Secret and its file:line."""
    now = now or dt.datetime.now(dt.UTC)
    by_ref: dict[ObjectRef, TLSSecret] = {s.ref: s for s in secrets}
    checked: dict[ObjectRef, Certificate | None] = {}
    errors: list[str] = []
    warnings: list[str] = []
    exact: dict[str, Certificate] = {}
    wildcard: dict[str, Certificate] = {}
    hosts: list[tuple[str, Certificate]] = []
    for tls_host in tls_hosts:
        if tls_host.secret not in checked:
            checked[tls_host.secret] = _check_secret(
                by_ref.get(tls_host.secret), now, errors, warnings
            )
        certificate = checked[tls_host.secret]
        if certificate is None:
            if default is not None:
                hosts.append((tls_host.host, default))
            continue
        if not certificate.covers(tls_host.host):
            warnings.append(
                f"{certificate.origin}: Secret {tls_host.secret}: certificate does not cover "
                f"TLS host {tls_host.host} of Ingress {tls_host.ingress} "
                f"(SANs: {', '.join(certificate.sans)})"
            )
        hosts.append((tls_host.host, certificate))
        if tls_host.host.startswith("*."):
            wildcard[tls_host.host[2:]] = certificate
        else:
            exact[tls_host.host] = certificate
    certificates = tuple(c for c in checked.values() if c is not None)
    store = CertificateStore(default, exact, wildcard, certificates, tuple(hosts))
    return StoreBuild(store, errors, warnings)


def _check_secret(
    secret: TLSSecret | None, now: dt.datetime, errors: list[str], warnings: list[str]
) -> Certificate | None:
    if secret is None:
        return None  # config.py already warned: the host gets the default certificate
    try:
        certificate = check_certificate(
            str(secret.ref), secret.certificate, secret.key, now=now, origin=secret.origin
        )
    except CertificateError as exc:
        errors.append(f"{secret.origin}: Secret {secret.ref}: {exc}")
        return None
    if certificate.not_after - now < EXPIRY_WARNING:
        warnings.append(
            f"{secret.origin}: Secret {secret.ref}: certificate expires on "
            f"{certificate.not_after:%Y-%m-%d} (within 30 days)"
        )
    return certificate


def default_certificate(cert_path: str | None = None, key_path: str | None = None) -> Certificate:
    """``--default-cert/--default-key``, else a self-signed one generated in memory."""
    if cert_path and key_path:
        with open(cert_path, "rb") as chain, open(key_path, "rb") as key:
            return check_certificate(
                "default", chain.read(), key.read(), origin=Origin(cert_path, 1)
            )
    chain_pem, key_pem = generate_self_signed(["ingress.local"])
    return check_certificate("default", chain_pem, key_pem)


def listener_context(
    default: Certificate, current_store: Callable[[], CertificateStore]
) -> ssl.SSLContext:
    """The TLS listener's context: the default certificate, switched per SNI name.

    `current_store` is read on every handshake, so a reload's new store serves
    new handshakes while established connections keep the context they began with.
    """
    context = new_context(default.chain_pem, default.key_pem)

    def choose(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        certificate = current_store().select(server_name)
        if certificate is not None:
            ssl_object.context = certificate.context

    context.sni_callback = choose
    return context
