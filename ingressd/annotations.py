"""The ``nginx.ingress.kubernetes.io/*`` annotations: names, value checks, policy.

Owns: which annotations exist, how their values are parsed, and the frozen
`IngressPolicy` the proxy reads per route.  Pure: no I/O.  Snippet annotations
are refused (ingressd runs no user-supplied configuration code); an unknown
name under the prefix is a warning, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

PREFIX = "nginx.ingress.kubernetes.io/"

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_bool(value: str) -> bool:
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    raise ValueError(f'expected "true" or "false", got {value!r}')


def parse_size(value: str) -> int:
    """nginx size syntax (``8m``, ``512k``, ``0`` = unlimited) → bytes."""
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"expected a size such as 1m, 512k or 0, got {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_seconds(value: str) -> float:
    """ingress-nginx timeouts are whole seconds; nginx suffixes (``s``) are accepted."""
    text = value.strip().removesuffix("s")
    if not text.isdigit():
        raise ValueError(f"expected a number of seconds, got {value!r}")
    return float(text)


def _accept(value: str) -> str:
    return value


# Annotations with an effect in ingressd, and the parser that validates each value.
_IMPLEMENTED: dict[str, Callable[[str], object]] = {
    "proxy-body-size": parse_size,
    "proxy-connect-timeout": parse_seconds,
    "proxy-read-timeout": parse_seconds,
    "proxy-send-timeout": parse_seconds,
    "ssl-redirect": parse_bool,
    "force-ssl-redirect": parse_bool,
}

# Part of ingressd's contract (SPEC §6) but without an effect in this version:
# accepted, and `--check` says plainly that they are ignored.
_NOT_YET: frozenset[str] = frozenset(
    {
        "rewrite-target", "use-regex", "backend-protocol", "upstream-vhost", "app-root",
        "permanent-redirect", "permanent-redirect-code", "temporal-redirect",
        "x-forwarded-prefix", "canary", "canary-weight", "canary-weight-total",
        "canary-by-header", "canary-by-header-value", "canary-by-header-pattern",
        "canary-by-cookie", "affinity", "session-cookie-name", "session-cookie-max-age",
        "whitelist-source-range", "allowlist-source-range", "denylist-source-range",
        "enable-cors", "cors-allow-origin", "cors-allow-methods", "cors-allow-headers",
        "cors-allow-credentials", "cors-max-age", "cors-expose-headers", "limit-rps",
        "limit-connections", "default-backend", "custom-http-errors",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IngressPolicy:
    """Per-Ingress proxy settings; the defaults are SPEC §4's."""

    body_limit: int = 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False


DEFAULT_POLICY = IngressPolicy()


@dataclass(frozen=True, slots=True)
class AnnotationFinding:
    key: str
    message: str
    is_error: bool


def check(annotations: Iterable[tuple[str, str]]) -> list[AnnotationFinding]:
    """Every error (bad value) and warning (snippet, unknown, not yet implemented)."""
    findings: list[AnnotationFinding] = []
    for key, value in annotations:
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :]
        if name in _IMPLEMENTED:
            try:
                _IMPLEMENTED[name](value)
            except ValueError as exc:
                findings.append(AnnotationFinding(key, f"invalid value: {exc}", True))
        elif name.endswith("snippet") or name.endswith("-snippets"):
            findings.append(
                AnnotationFinding(
                    key, "refused: ingressd runs no user-supplied configuration code", False
                )
            )
        elif name in _NOT_YET:
            message = "not implemented in this version of ingressd; ignored"
            findings.append(AnnotationFinding(key, message, False))
        else:
            findings.append(AnnotationFinding(key, "unknown annotation; ignored", False))
    return findings


def policy_of(annotations: Iterable[tuple[str, str]]) -> IngressPolicy:
    """The policy from already-checked annotations (invalid values were rejected at load)."""
    values = {k[len(PREFIX) :]: v for k, v in annotations if k.startswith(PREFIX)}
    if not values.keys() & _IMPLEMENTED.keys():
        return DEFAULT_POLICY
    return IngressPolicy(
        body_limit=_get(values, "proxy-body-size", parse_size, DEFAULT_POLICY.body_limit),
        connect_timeout=_get(
            values, "proxy-connect-timeout", parse_seconds, DEFAULT_POLICY.connect_timeout
        ),
        read_timeout=_get(values, "proxy-read-timeout", parse_seconds, DEFAULT_POLICY.read_timeout),
        send_timeout=_get(values, "proxy-send-timeout", parse_seconds, DEFAULT_POLICY.send_timeout),
        ssl_redirect=_get(values, "ssl-redirect", parse_bool, DEFAULT_POLICY.ssl_redirect),
        force_ssl_redirect=_get(
            values, "force-ssl-redirect", parse_bool, DEFAULT_POLICY.force_ssl_redirect
        ),
    )


def _get(values: dict[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = values.get(name)
    return default if raw is None else parse(raw)
