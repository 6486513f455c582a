"""The ``nginx.ingress.kubernetes.io/*`` annotations: names, value checks, policy.

Owns: which annotations exist, how their values are parsed, each one's verdict
(the migration report's words) and the frozen `IngressPolicy` the proxy reads
per route.  Pure: no I/O.  Snippet annotations are refused (ingressd runs no
user-supplied configuration code); an access or protocol annotation ingressd
does not implement closes its Ingress (503) instead of serving it open; an
unknown name under the prefix is a warning, never silently ignored.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .model import ObjectRef
from .policy import CAPTURE, CanaryRule

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
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"expected a size such as 1m, 512k or 0, got {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_seconds(value: str) -> float:
    """ingress-nginx timeouts are whole seconds; nginx suffixes (``s``) are accepted."""
    text = value.strip().removesuffix("s")
    if not text.isdigit():
        raise ValueError(f"expected a number of seconds, got {value!r}")
    return float(text)


def parse_count(value: str) -> int:
    """A whole number >= 0."""
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return int(text)


def parse_positive_count(value: str) -> int:
    number = parse_count(value)
    if number == 0:
        raise ValueError(f"expected a whole number > 0, got {value!r}")
    return number


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.6.2


def parse_token(value: str) -> str:
    """A header or cookie name."""
    if _TOKEN.fullmatch(value) is None:
        raise ValueError(f"expected a header or cookie name (letters, digits, -), got {value!r}")
    return value


def parse_regex(value: str) -> re.Pattern[bytes]:
    """A regex the API server accepts but Python's `re` cannot run is an error, not a guess."""
    try:
        return re.compile(value.encode())
    except (re.error, UnicodeEncodeError) as exc:
        raise ValueError(f"not a regular expression ingressd can run ({exc}): {value!r}") from exc


def _text(value: str) -> str:
    return value


def parse_url(value: str) -> str:
    """A redirect target written into a Location line as it is: no space or control byte."""
    if not value or not all(33 <= ord(c) < 127 for c in value):
        raise ValueError(f"expected a URL without spaces or control characters, got {value!r}")
    return value


def parse_absolute_url(value: str) -> str:
    url = parse_url(value)
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"only http and https URLs redirect, got {value!r}")
    return url


def parse_path(value: str) -> str:
    """A path on the same host (app-root): starts with /, not an absolute URL."""
    path = parse_url(value)
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"expected a path such as /app, got {value!r}")
    return path


def parse_rewrite_target(value: str) -> str:
    """rewrite-target: a path (or URL) with the regex captures $1..$9 (or ${1}) in it."""
    target = parse_url(value)
    if not target.startswith(("/", "$")):
        raise ValueError(
            f"expected a path such as /$2 (a URL would make nginx redirect instead; "
            f"use permanent-redirect or temporal-redirect for that), got {value!r}"
        )
    if "$" in CAPTURE.sub("", target):
        raise ValueError(f"only the captures $1 to $9 (or ${{1}}) can be used in it, got {value!r}")
    return target


def parse_field_value(value: str) -> str:
    """A header value ingressd writes as it is: printable, no CR, LF or control bytes."""
    if not value or not all(32 <= ord(c) < 127 for c in value):
        raise ValueError(f"expected printable text without control characters, got {value!r}")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected {' or '.join(map(repr, choices))}, got {value!r}")
        return value

    return parse


parse_auth_type = _one_of("basic", "digest")
parse_satisfy = _one_of("all", "any")
parse_auth_secret_type = _one_of("auth-file", "auth-map")


_SECRET_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def parse_secret_name(value: str) -> str:
    """``name`` or ``namespace/name``, as Kubernetes names them."""
    if _SECRET_NAME.fullmatch(value.strip()) is None:
        raise ValueError(f"expected a Secret as name or namespace/name, got {value!r}")
    return value.strip()


_ORIGIN = re.compile(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|null)$")  # ingress-nginx's


def parse_origins(value: str) -> tuple[str, ...]:
    """cors-allow-origin: ``*``, or a list of origins (``https://*.example.com`` allows one
    label there), ``null`` included."""
    origins = tuple(o.strip() for o in value.split(",") if o.strip())
    if "*" in origins:
        return ("*",)
    for origin in origins:
        if _ORIGIN.fullmatch(origin) is None:
            raise ValueError(f"{origin!r} is not an origin such as https://app.example.com:8443")
    return origins


def _listing(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(value: str) -> str:
        if compiled.fullmatch(value) is None:  # $ alone would let a final newline in
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return parse


parse_methods = _listing(r"([A-Za-z]+,? ?)+", "methods such as GET, POST")
parse_header_names = _listing(r"([A-Za-z0-9\-_]+,? ?)+", "header names such as X-Token, Range")
parse_exposed_headers = _listing(r"(([A-Za-z0-9\-_]+|\*),? ?)+", "header names or *")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(value: str) -> tuple[Network, ...]:
    """A comma-separated list of CIDRs or addresses (an address is a /32 or /128)."""
    networks = []
    for part in value.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or network ({exc})") from exc
    return tuple(networks)


def parse_status(value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"expected an HTTP status code, got {value!r}")
    return int(text)


_HOST_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_HOST_LABEL}(\.{_HOST_LABEL})*$")


def parse_hosts(value: str) -> tuple[str, ...]:
    """server-alias: comma-separated host names (lower-case DNS names, or *.name)."""
    hosts = tuple(dict.fromkeys(h.strip() for h in value.split(",") if h.strip()))
    for host in hosts:
        if _HOST.fullmatch(host) is None or len(host) > 253:
            raise ValueError(f"{host!r} is not a lower-case DNS host name")
    return hosts


_BACKEND_PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPCS", "AUTO_HTTP", "FCGI"})


def parse_backend_protocol(value: str) -> str:
    protocol = value.strip().upper()
    if protocol not in _BACKEND_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(sorted(_BACKEND_PROTOCOLS))}, got {value!r}")
    return protocol


# Annotations with an effect in ingressd, and the parser that validates each value.
_IMPLEMENTED: dict[str, Callable[[str], object]] = {
    "proxy-body-size": parse_size,
    "proxy-connect-timeout": parse_seconds,
    "proxy-read-timeout": parse_seconds,
    "proxy-send-timeout": parse_seconds,
    "proxy-next-upstream-tries": parse_count,  # 0: as many as there are endpoints
    "ssl-redirect": parse_bool,
    "force-ssl-redirect": parse_bool,
    "backend-protocol": parse_backend_protocol,  # HTTP, HTTPS honoured; the others fail closed
    "permanent-redirect": parse_url,
    "permanent-redirect-code": parse_status,
    "temporal-redirect": parse_absolute_url,
    "temporal-redirect-code": parse_status,
    "from-to-www-redirect": parse_bool,
    "server-alias": parse_hosts,
    "app-root": parse_path,
    "auth-type": parse_auth_type,  # basic honoured; digest fails closed
    "auth-secret": parse_secret_name,
    "auth-secret-type": parse_auth_secret_type,
    "auth-realm": parse_field_value,
    "satisfy": parse_satisfy,
    "limit-rps": parse_count,  # 0: no limit, as ingress-nginx
    "limit-rpm": parse_count,
    "limit-connections": parse_count,
    "limit-burst-multiplier": parse_positive_count,
    "limit-allowlist": parse_cidrs,
    "limit-whitelist": parse_cidrs,
    "enable-cors": parse_bool,
    "cors-allow-origin": parse_origins,
    "cors-allow-methods": parse_methods,
    "cors-allow-headers": parse_header_names,
    "cors-allow-credentials": parse_bool,
    "cors-expose-headers": parse_exposed_headers,
    "cors-max-age": parse_count,
    "allowlist-source-range": parse_cidrs,
    "whitelist-source-range": parse_cidrs,
    "denylist-source-range": parse_cidrs,
    "upstream-vhost": _listing(
        r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?",
        "a host name, with an optional port",
    ),
    "default-backend": _listing(r"[a-z]([-a-z0-9]*[a-z0-9])?", "a Service name"),
    "use-regex": parse_bool,
    "rewrite-target": parse_rewrite_target,
    "x-forwarded-prefix": parse_field_value,
    "canary": parse_bool,
    "canary-weight": parse_count,
    "canary-weight-total": parse_positive_count,
    "canary-by-header": parse_token,
    "canary-by-header-value": _text,
    "canary-by-header-pattern": parse_regex,
    "canary-by-cookie": parse_token,
}

# Annotations that act only beside another one: name -> (that one, its value).
_COMPANIONS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("auth-secret", "auth-secret-type", "auth-realm"), ("auth-type", "basic")),
    **dict.fromkeys(
        ("cors-allow-origin", "cors-allow-methods", "cors-allow-headers",
         "cors-allow-credentials", "cors-expose-headers", "cors-max-age"),
        ("enable-cors", "true"),
    ),
}  # fmt: skip

# What a canary Ingress keeps of its own (ingress-nginx's docs): the rest of its
# annotations are ignored, canary traffic gets the main Ingress's policy.
_CANARY_OWN = frozenset(
    {"load-balance", "upstream-hash-by", "affinity", "affinity-mode", "affinity-canary-behavior"}
)

# Every annotation ingress-nginx v1.15 reads (internal/ingress/annotations/*): a name
# in this set that ingressd does not honour is "not supported", never "unknown".
_INGRESS_NGINX: frozenset[str] = frozenset(
    {
        "affinity", "affinity-canary-behavior", "affinity-mode", "allowlist-source-range",
        "app-root", "auth-always-set-cookie", "auth-cache-duration", "auth-cache-key",
        "auth-keepalive", "auth-keepalive-requests", "auth-keepalive-share-vars",
        "auth-keepalive-timeout", "auth-method", "auth-proxy-set-headers", "auth-realm",
        "auth-request-redirect", "auth-response-headers", "auth-secret", "auth-secret-type",
        "auth-signin", "auth-signin-redirect-param", "auth-tls-error-page", "auth-tls-match-cn",
        "auth-tls-pass-certificate-to-upstream", "auth-tls-secret", "auth-tls-verify-client",
        "auth-tls-verify-depth", "auth-type", "auth-url", "backend-protocol", "canary",
        "canary-by-cookie", "canary-by-header", "canary-by-header-pattern",
        "canary-by-header-value", "canary-weight", "canary-weight-total",
        "client-body-buffer-size", "connection-proxy-header", "cors-allow-credentials",
        "cors-allow-headers", "cors-allow-methods", "cors-allow-origin", "cors-expose-headers",
        "cors-max-age", "custom-headers", "custom-http-errors", "default-backend",
        "denylist-source-range", "disable-proxy-intercept-errors", "enable-access-log",
        "enable-cors", "enable-global-auth", "enable-modsecurity", "enable-opentelemetry",
        "enable-owasp-core-rules", "enable-rewrite-log", "fastcgi-index",
        "fastcgi-params-configmap", "force-ssl-redirect", "from-to-www-redirect",
        "limit-allowlist", "limit-burst-multiplier", "limit-connections", "limit-rate",
        "limit-rate-after", "limit-rpm", "limit-rps", "limit-whitelist", "load-balance",
        "mirror-host", "mirror-request-body", "mirror-target", "modsecurity-transaction-id",
        "opentelemetry-operation-name", "opentelemetry-trust-incoming-span",
        "permanent-redirect", "permanent-redirect-code", "preserve-trailing-slash",
        "proxy-body-size", "proxy-buffer-size", "proxy-buffering", "proxy-buffers-number",
        "proxy-busy-buffers-size", "proxy-connect-timeout", "proxy-cookie-domain",
        "proxy-cookie-path", "proxy-http-version", "proxy-max-temp-file-size",
        "proxy-next-upstream", "proxy-next-upstream-timeout", "proxy-next-upstream-tries",
        "proxy-read-timeout", "proxy-redirect-from", "proxy-redirect-to",
        "proxy-request-buffering", "proxy-send-timeout", "proxy-ssl-ciphers", "proxy-ssl-name",
        "proxy-ssl-protocols", "proxy-ssl-secret", "proxy-ssl-server-name", "proxy-ssl-verify",
        "proxy-ssl-verify-depth", "relative-redirects", "rewrite-target", "satisfy",
        "server-alias", "service-upstream", "session-cookie-change-on-failure",
        "session-cookie-conditional-samesite-none", "session-cookie-domain",
        "session-cookie-expires", "session-cookie-max-age", "session-cookie-name",
        "session-cookie-path", "session-cookie-samesite", "session-cookie-secure",
        "ssl-ciphers", "ssl-passthrough", "ssl-prefer-server-ciphers", "ssl-redirect",
        "temporal-redirect", "temporal-redirect-code", "upstream-hash-by",
        "upstream-hash-by-subset", "upstream-vhost", "use-port-in-redirects", "use-regex",
        "whitelist-source-range", "x-forwarded-prefix",
    }
)  # fmt: skip


def _set(value: str, _: Mapping[str, str]) -> bool:
    return value.strip() != ""


def _true(value: str, _: Mapping[str, str]) -> bool:
    return value.strip().lower() == "true"


def _not_http_or_https(value: str, _: Mapping[str, str]) -> bool:
    return value.strip().upper() not in ("HTTP", "HTTPS")


def _on(value: str, _: Mapping[str, str]) -> bool:
    return value.strip().lower() == "on"


def _not_basic(value: str, _: Mapping[str, str]) -> bool:
    return value.strip() != "basic"


def _verifies_clients(value: str, values: Mapping[str, str]) -> bool:
    return _set(value, values) and values.get("auth-tls-verify-client", "on").strip() != "off"


# Not implemented by ingressd, and deciding who may reach a backend or how the backend must
# be spoken to (SPEC §6 "Never served open"): when the value turns the check on, serving
# without it would be open, so the Ingress's routes answer 503 instead (fail closed).
FAIL_CLOSED: dict[str, Callable[[str, Mapping[str, str]], bool]] = {
    "auth-type": _not_basic,
    "auth-url": _set,
    "auth-tls-secret": _verifies_clients,
    "enable-modsecurity": _true,
    "enable-owasp-core-rules": _true,
    "backend-protocol": _not_http_or_https,
    # Verifying the backend's certificate is not implemented: never skip it silently.
    "proxy-ssl-verify": _on,
    "ssl-passthrough": _true,
}


# ingress-nginx's ranges for redirect codes; outside them it uses its default, silently.
_PERMANENT_CODES = range(300, 309)
_TEMPORAL_CODES = range(300, 308)


def _code_warning(codes: range, default: int) -> Callable[[str], str | None]:
    def warn(value: str) -> str | None:
        if parse_status(value) in codes:
            return None
        return (
            f"honoured, but {value} is outside {codes.start}-{codes.stop - 1}: "
            f"ingress-nginx answers {default} instead, and so does ingressd"
        )

    return warn


# Honoured values that behave in a way that surprises users: a warning names the quirk.
_QUIRKS: dict[str, Callable[[str], str | None]] = {
    "permanent-redirect-code": _code_warning(_PERMANENT_CODES, 301),
    "temporal-redirect-code": _code_warning(_TEMPORAL_CODES, 302),
}


@dataclass(frozen=True, slots=True)
class Redirect:
    """permanent-redirect / temporal-redirect: every request of the Ingress answered so."""

    code: int
    url: str


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """auth-type: basic: the users' Secret (resolved by the compiler) and the realm."""

    secret: ObjectRef
    secret_type: str  # "auth-file" (htpasswd lines in key "auth") or "auth-map"
    realm: str


@dataclass(frozen=True, slots=True)
class Limits:
    """limit-rps / limit-rpm (burst: the rate x limit-burst-multiplier), limit-connections,
    and the client addresses none of them applies to (limit-allowlist)."""

    rps: int = 0
    rpm: int = 0
    burst_multiplier: int = 5
    connections: int = 0
    exempt: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class Cors:
    """enable-cors with ingress-nginx's defaults."""

    origins: tuple[str, ...] = ("*",)
    methods: str = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    headers: str = (
        "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
        "Content-Type,Range,Authorization"
    )
    credentials: bool = True
    expose: str = ""
    max_age: int = 1728000


@dataclass(frozen=True, slots=True)
class IngressPolicy:
    """Per-Ingress proxy settings; the defaults are SPEC §4's."""

    body_limit: int = 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    next_upstream_tries: int = 3  # endpoints tried per request; 0: no limit but the endpoints
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    backend_tls: bool = False  # backend-protocol: HTTPS (no verification, no SNI)
    upstream_host: str | None = None  # upstream-vhost: the Host the backend receives
    default_backend: str | None = None  # a Service that serves when the route's has no endpoint
    # Annotations that make every route of the Ingress answer 503 (see FAIL_CLOSED).
    closed_by: tuple[str, ...] = ()
    redirect: Redirect | None = None
    app_root: str | None = None
    from_to_www: bool = False
    aliases: tuple[str, ...] = ()
    basic_auth: BasicAuth | None = None
    satisfy_any: bool = False  # satisfy: any — the source ranges or the credentials
    limits: Limits | None = None
    cors: Cors | None = None
    allow: tuple[Network, ...] = ()  # empty: no allowlist
    deny: tuple[Network, ...] = ()
    use_regex: bool = False
    rewrite_target: str | None = None
    forwarded_prefix: str | None = None  # sent only with a rewrite, as ingress-nginx

    def rewrites(self, path: str) -> bool:
        """ingress-nginx's needsRewrite: a target that differs from the location's path."""
        return self.rewrite_target is not None and self.rewrite_target != path

    def regex_location(self, path: str) -> bool:
        """Whether this path is a regex location (and makes its whole host use regexes)."""
        return self.use_regex or self.rewrites(path)


DEFAULT_POLICY = IngressPolicy()


class Verdict(enum.Enum):
    """What ingressd does with one annotation: the migration report's words."""

    HONOURED = "honoured"
    INVALID = "invalid value"
    FAIL_CLOSED = "not supported, fail closed"
    IGNORED = "not supported, ignored"
    CANARY_IGNORED = "ignored, canary Ingress"
    NOT_CANARY = "ignored, not a canary Ingress"
    INERT = "ignored, nothing to act on"
    REFUSED = "refused"
    UNKNOWN = "unknown"


_MESSAGES = {
    Verdict.FAIL_CLOSED: (
        "not supported by ingressd, and it decides who may reach the backend or how to "
        "speak to it: this Ingress's routes answer 503 rather than serve without it "
        "(fail closed)"
    ),
    Verdict.IGNORED: "not supported by ingressd; ignored",
    Verdict.CANARY_IGNORED: (
        "ignored: this is a canary Ingress, and canary traffic gets the main Ingress's "
        "policy (as ingress-nginx)"
    ),
    Verdict.NOT_CANARY: 'ignored: the Ingress does not say canary: "true"',
    Verdict.REFUSED: "refused: ingressd runs no user-supplied configuration code",
    Verdict.UNKNOWN: "unknown annotation (ingress-nginx has no such name); ignored",
}


@dataclass(frozen=True, slots=True)
class AnnotationFinding:
    key: str
    verdict: Verdict
    message: str

    @property
    def is_error(self) -> bool:
        return self.verdict is Verdict.INVALID

    @property
    def is_warning(self) -> bool:
        """Everything but a plain "honoured": the user should read it."""
        return self.verdict is not Verdict.INVALID and self.message != Verdict.HONOURED.value


def check(annotations: Iterable[tuple[str, str]]) -> list[AnnotationFinding]:
    """Every annotation under the prefix with its verdict, in the order given."""
    values = _under_prefix(annotations)
    return [_finding(name, value, values) for name, value in values.items()]


def _finding(name: str, value: str, values: Mapping[str, str]) -> AnnotationFinding:
    key = PREFIX + name
    parse = _IMPLEMENTED.get(name)
    if parse is not None:
        try:
            parse(value)
        except ValueError as exc:
            return AnnotationFinding(key, Verdict.INVALID, f"invalid value: {exc}")
    verdict = _verdict(name, value, values)
    quirk = _QUIRKS.get(name)
    note = quirk(value) if quirk is not None and verdict is Verdict.HONOURED else None
    if verdict is Verdict.INERT:
        other, wanted = _COMPANIONS[name]
        note = f'ignored: it acts only with {other}: "{wanted}", as in ingress-nginx'
    return AnnotationFinding(key, verdict, note or _MESSAGES.get(verdict, verdict.value))


def _verdict(name: str, value: str, values: Mapping[str, str]) -> Verdict:
    if name.endswith("snippet") or name.endswith("-snippets"):
        return Verdict.REFUSED
    if name not in _INGRESS_NGINX:
        return Verdict.UNKNOWN
    canary = is_canary(values)
    if name.startswith("canary-") and not canary:
        return Verdict.NOT_CANARY
    if canary and not name.startswith("canary") and not _canary_keeps(name):
        return Verdict.CANARY_IGNORED
    companion = _COMPANIONS.get(name)
    if companion is not None and values.get(companion[0], "").strip() != companion[1]:
        return Verdict.INERT
    closes = FAIL_CLOSED.get(name)
    if closes is not None and closes(value, values):
        return Verdict.FAIL_CLOSED
    return Verdict.HONOURED if name in _IMPLEMENTED else Verdict.IGNORED


def _canary_keeps(name: str) -> bool:
    return name in _CANARY_OWN or name.startswith("session-cookie-")


def is_canary(values: Mapping[str, str]) -> bool:
    """``canary: "true"`` (already checked: any other value is "false")."""
    return values.get("canary", "").strip() in ("true", "True", "TRUE")


def canary_rule(annotations: Iterable[tuple[str, str]]) -> CanaryRule | None:
    """The traffic-shaping rule of a canary Ingress; None for any other Ingress."""
    values = _under_prefix(annotations)
    if not is_canary(values):
        return None
    header = values.get("canary-by-header")
    value = values.get("canary-by-header-value")
    pattern = values.get("canary-by-header-pattern")
    cookie = values.get("canary-by-cookie")
    return CanaryRule(
        header=header.lower().encode() if header else None,
        header_value=value.encode() if value else None,
        header_pattern=parse_regex(pattern) if pattern and not value else None,
        cookie=cookie.encode() if cookie else None,
        weight=_get(values, "canary-weight", parse_count, 0),
        # ingress-nginx: a total of 100 or less is ignored.
        weight_total=max(100, _get(values, "canary-weight-total", parse_positive_count, 100)),
    )


def fail_closed_by(values: Mapping[str, str]) -> tuple[str, ...]:
    """The annotations (full keys) that close this Ingress, in the order given.

    A canary Ingress serves nothing on its own, so nothing of it closes a route.
    """
    if is_canary(values):
        return ()
    return tuple(
        PREFIX + name
        for name, value in values.items()
        if name in FAIL_CLOSED and FAIL_CLOSED[name](value, values)
    )


def _under_prefix(annotations: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k[len(PREFIX) :]: v for k, v in annotations if k.startswith(PREFIX)}


def policy_of(annotations: Iterable[tuple[str, str]], namespace: str = "default") -> IngressPolicy:
    """The policy from already-checked annotations (invalid values were rejected at load);
    Secrets an annotation names by name alone are in `namespace`, the Ingress's."""
    values = _under_prefix(annotations)
    closed_by = fail_closed_by(values)
    if not values.keys() & _IMPLEMENTED.keys() and not closed_by:
        return DEFAULT_POLICY
    return IngressPolicy(
        body_limit=_get(values, "proxy-body-size", parse_size, DEFAULT_POLICY.body_limit),
        connect_timeout=_get(
            values, "proxy-connect-timeout", parse_seconds, DEFAULT_POLICY.connect_timeout
        ),
        read_timeout=_get(values, "proxy-read-timeout", parse_seconds, DEFAULT_POLICY.read_timeout),
        send_timeout=_get(values, "proxy-send-timeout", parse_seconds, DEFAULT_POLICY.send_timeout),
        next_upstream_tries=_get(
            values, "proxy-next-upstream-tries", parse_count, DEFAULT_POLICY.next_upstream_tries
        ),
        ssl_redirect=_get(values, "ssl-redirect", parse_bool, DEFAULT_POLICY.ssl_redirect),
        force_ssl_redirect=_get(
            values, "force-ssl-redirect", parse_bool, DEFAULT_POLICY.force_ssl_redirect
        ),
        closed_by=closed_by,
        backend_tls=values.get("backend-protocol", "").strip().upper() == "HTTPS",
        upstream_host=values.get("upstream-vhost") or None,
        default_backend=values.get("default-backend") or None,
        redirect=_redirect(values),
        app_root=values.get("app-root"),
        from_to_www=_get(values, "from-to-www-redirect", parse_bool, False),
        aliases=_get(values, "server-alias", parse_hosts, ()),
        basic_auth=_basic_auth(values, namespace),
        satisfy_any=values.get("satisfy", "all") == "any",
        limits=_limits(values),
        cors=_cors(values),
        allow=_allowlist(values),
        deny=_get(values, "denylist-source-range", parse_cidrs, ()),
        use_regex=_get(values, "use-regex", parse_bool, False),
        rewrite_target=values.get("rewrite-target") or None,
        forwarded_prefix=values.get("x-forwarded-prefix") or None,
    )


# Annotations whose value names a Secret ("name" or "namespace/name").
_SECRET_ANNOTATIONS = ("auth-secret",)


def secret_ref(namespace: str, value: str) -> ObjectRef:
    """``name`` (in the Ingress's namespace) or ``namespace/name``."""
    space, slash, name = value.strip().rpartition("/")
    return ObjectRef(space if slash else namespace, name)


def secret_refs(ingress: ObjectRef, annotations: Iterable[tuple[str, str]]) -> list[ObjectRef]:
    """The Secrets this Ingress's annotations name (to be read from the files)."""
    values = _under_prefix(annotations)
    return [
        secret_ref(ingress.namespace, values[name])
        for name in _SECRET_ANNOTATIONS
        if values.get(name, "").strip()
    ]


def _basic_auth(values: Mapping[str, str], namespace: str) -> BasicAuth | None:
    """auth-type: basic needs auth-secret; without one it is a 503, never open."""
    if values.get("auth-type") != "basic":
        return None
    secret = values.get("auth-secret", "").strip()
    return BasicAuth(
        secret_ref(namespace, secret) if secret else ObjectRef(namespace, ""),
        values.get("auth-secret-type", "auth-file"),
        values.get("auth-realm", ""),
    )


def _cors(values: Mapping[str, str]) -> Cors | None:
    if not _get(values, "enable-cors", parse_bool, False):
        return None
    default = Cors()
    return Cors(
        origins=_get(values, "cors-allow-origin", parse_origins, default.origins)
        or default.origins,
        methods=values.get("cors-allow-methods") or default.methods,
        headers=values.get("cors-allow-headers") or default.headers,
        credentials=_get(values, "cors-allow-credentials", parse_bool, default.credentials),
        expose=values.get("cors-expose-headers", ""),
        max_age=_get(values, "cors-max-age", parse_count, default.max_age),
    )


def _limits(values: Mapping[str, str]) -> Limits | None:
    limits = Limits(
        rps=_get(values, "limit-rps", parse_count, 0),
        rpm=_get(values, "limit-rpm", parse_count, 0),
        burst_multiplier=_get(values, "limit-burst-multiplier", parse_positive_count, 5),
        connections=_get(values, "limit-connections", parse_count, 0),
        exempt=_first_list(values, "limit-allowlist", "limit-whitelist"),
    )
    return limits if limits.rps or limits.rpm or limits.connections else None


def _first_list(values: Mapping[str, str], name: str, old_name: str) -> tuple[Network, ...]:
    """The new name's CIDRs, else the old name's: an empty new name never erases the old."""
    for key in (name, old_name):
        networks = parse_cidrs(values.get(key, ""))
        if networks:
            return networks
    return ()


def _allowlist(values: Mapping[str, str]) -> tuple[Network, ...]:
    """allowlist-source-range, or its older name (an empty new name never opens what the
    old name closes)."""
    return _first_list(values, "allowlist-source-range", "whitelist-source-range")


def _redirect(values: Mapping[str, str]) -> Redirect | None:
    """ingress-nginx's precedence: temporal-redirect wins over permanent-redirect."""
    temporal = values.get("temporal-redirect")
    if temporal:
        code = _get(values, "temporal-redirect-code", parse_status, 302)
        return Redirect(code if code in _TEMPORAL_CODES else 302, temporal)
    permanent = values.get("permanent-redirect")
    if permanent:
        code = _get(values, "permanent-redirect-code", parse_status, 301)
        return Redirect(code if code in _PERMANENT_CODES else 301, permanent)
    return None


def _get(values: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = values.get(name)
    return default if raw is None else parse(raw)
