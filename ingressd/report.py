"""Describe a compiled `RouteTable` for people (``--check``) and programs (``/routes``).

Owns: the rows of the table and their text rendering.  Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .annotations import PREFIX, Verdict, check
from .balancer import PassiveHealth
from .model import Ingress
from .routes import Backend, Endpoint, RegexVirtualHost, Route, RouteTable
from .tls import Certificate, CertificateStore

if TYPE_CHECKING:
    from .runtime import Runtime


@dataclass(frozen=True, slots=True)
class Row:
    host: str
    path: str
    path_type: str
    route: Route

    @property
    def backend(self) -> str:
        backend = self.route.backend
        return f"{backend.service}:{backend.port}"

    @property
    def endpoints(self) -> str:
        return _endpoints(self.route.backend)


def _endpoints(backend: Backend) -> str:
    if not backend.endpoints:
        return f"(none: {backend.problem}) → 503"
    return ", ".join(str(e) for e in backend.endpoints)


def rows(table: RouteTable) -> Iterator[Row]:
    for vhost in table.virtual_hosts():
        host = vhost.name or "*"
        regex = isinstance(vhost, RegexVirtualHost)
        ordered = sorted(vhost.routes(), key=lambda r: (r.path or "", r.path_type is None))
        if regex:  # in the order they are tried
            ordered = list(vhost.routes())
        for route in ordered:
            assert route.path is not None and route.path_type is not None
            kind = f"{route.path_type.value} (regex)" if regex else route.path_type.value
            yield Row(host, route.path, kind, route)
        if vhost.default is not None:
            yield Row(host, "(default)", "defaultBackend", vhost.default)
    if table.catch_all is not None:
        yield Row("(any)", "(catch-all)", "defaultBackend", table.catch_all)


def render_text(table: RouteTable, certs: CertificateStore | None = None) -> str:
    lines = [f"Ingresses served: {len(table.ingresses)}"]
    lines += [f"  {ref}" for ref in table.ingresses]
    table_rows = list(rows(table))
    lines.append(f"Routes: {len(table_rows)}")
    for row in table_rows:
        described = [step.describe() for step in row.route.steps]
        if row.route.rewrite is not None:
            described.append(f"rewrite → {row.route.rewrite.target}")
        steps = "; ".join(described)
        flags = f" ({steps})" if steps else ""
        canary = row.route.canary
        if canary is not None:
            flags += (
                f"\n      canary → {canary.backend.key} → {_endpoints(canary.backend)}"
                f"  [ingress {canary.ingress}] when {canary.rule.describe()}"
            )
        lines.append(
            f"  {row.host}  {row.path}  {row.path_type}  → {row.backend} → {row.endpoints}"
            f"  [ingress {row.route.ingress}]{flags}"
        )
    if table.catch_all is None:
        lines.append("  (no catch-all: unmatched requests get 404)")
    for alias, host in table.aliases():
        lines.append(f"  {alias}  → served as {host} (server-alias)")
    lines.append(f"TLS hosts: {len(table.tls_hosts)}")
    served = dict(certs.hosts) if certs is not None else {}
    for tls in table.tls_hosts:
        lines.append(f"  {tls.host}  → secret {tls.secret}  [ingress {tls.ingress}]")
        certificate = served.get(tls.host)
        if certificate is not None:
            lines.append(
                f"      certificate {certificate.name}: {certificate.subject}; "
                f"SANs {', '.join(certificate.sans) or '(none)'}; "
                f"expires {certificate.not_after:%Y-%m-%d}"
            )
    if certs is not None and certs.default is not None:
        default = certs.default
        lines.append(
            f"Default certificate: {default.subject}, expires {default.not_after:%Y-%m-%d}"
        )
    return "\n".join(lines)


# The report's short reasons; "honoured" and "invalid value" say their own.
_REASONS = {
    Verdict.FAIL_CLOSED: "its routes answer 503 rather than serve without it",
    Verdict.IGNORED: "",
    Verdict.CANARY_IGNORED: "canary traffic gets the main Ingress's policy",
    Verdict.NOT_CANARY: 'the Ingress does not say canary: "true"',
    Verdict.REFUSED: "ingressd runs no user-supplied configuration code",
    Verdict.UNKNOWN: "ingress-nginx has no such annotation",
}


def render_annotations(ingresses: Sequence[Ingress]) -> str:
    """The migration report: per Ingress, every ingress-nginx annotation and its verdict."""
    lines = [f"Annotations ({PREFIX}*), per Ingress:"]
    width = max(len(verdict.value) for verdict in Verdict)
    for ingress in sorted(ingresses, key=lambda i: i.ref):
        findings = check(ingress.annotations)
        if not findings:
            continue
        lines.append(f"  Ingress {ingress.ref}  ({ingress.origin})")
        values = dict(ingress.annotations)
        for finding in findings:
            name = finding.key.removeprefix(PREFIX)
            reason = _REASONS.get(finding.verdict, finding.message)
            why = "" if reason in ("", finding.verdict.value) else f"  ({reason})"
            lines.append(
                f"    {finding.verdict.value:<{width}}  {name}: {values[finding.key]}{why}"
            )
    if len(lines) == 1:
        lines.append("  (none)")
    return "\n".join(lines)


def render_json(runtime: Runtime, health: PassiveHealth, now: float) -> bytes:
    """``/routes``: the compiled table, endpoint health, TLS hosts, config hash and load time."""
    down = set(health.down(now))
    certs = dict(runtime.certs.hosts)
    document = {
        "config_hash": runtime.config.digest,
        "loaded_at": datetime.fromtimestamp(runtime.loaded_at, UTC).isoformat(),
        "files": list(runtime.config.files),
        "ingresses": [str(ref) for ref in runtime.table.ingresses],
        "routes": [
            {
                "host": row.host,
                "path": row.path,
                "path_type": row.path_type,
                "ingress": str(row.route.ingress),
                "service": str(row.route.backend.service),
                "port": row.route.backend.port,
                "https_redirect": row.route.https_redirect,
                "fail_closed_by": list(row.route.policy.closed_by),
                "steps": [step.describe() for step in row.route.steps],
                "rewrite": row.route.rewrite.target if row.route.rewrite else None,
                "endpoints": _endpoints_json(row.route.backend, down),
                "problem": row.route.backend.problem,
                "canary": _canary_json(row.route, down),
            }
            for row in rows(runtime.table)
        ],
        "aliases": dict(runtime.table.aliases()),
        "tls": [
            {
                "host": tls.host,
                "secret": str(tls.secret),
                "ingress": str(tls.ingress),
                "certificate": _certificate_json(certs.get(tls.host)),
            }
            for tls in runtime.table.tls_hosts
        ],
        "default_certificate": _certificate_json(runtime.certs.default),
        "warnings": list(runtime.warnings),
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def _endpoints_json(backend: Backend, down: set[Endpoint]) -> list[dict[str, str]]:
    return [{"address": str(e), "state": "down" if e in down else "up"} for e in backend.endpoints]


def _canary_json(route: Route, down: set[Endpoint]) -> dict[str, object] | None:
    canary = route.canary
    if canary is None:
        return None
    return {
        "ingress": str(canary.ingress),
        "service": str(canary.backend.service),
        "port": canary.backend.port,
        "rule": canary.rule.describe(),
        "endpoints": _endpoints_json(canary.backend, down),
        "problem": canary.backend.problem,
    }


def _certificate_json(certificate: Certificate | None) -> dict[str, object] | None:
    if certificate is None:
        return None
    return {
        "name": certificate.name,
        "subject": certificate.subject,
        "sans": list(certificate.sans),
        "not_after": certificate.not_after.isoformat(),
    }
