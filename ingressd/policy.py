"""Per-route policy, bound once by the compiler: the steps an Ingress's annotations turn on.

Owns: the request steps, each a small frozen callable that may answer a request
locally — fail closed, redirects, app-root, CORS, the https redirect, limits,
source ranges, basic auth — the canary rule that chooses between a route's main
and canary backend, and the rewrite (SPEC §6).  A route whose Ingress has no such
annotation has no steps and no canary, so the data path pays one truth test for
each.  No I/O and no asyncio: a step that takes time answers `Pending` and
`proxy.Exchange` runs its work off the loop; the only state steps touch is the
server's `LimitStore` (through the request) and basic auth's bounded memory of
verified credentials.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import ipaddress
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

from . import htpasswd, http1
from .codec import RequestHead

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

if TYPE_CHECKING:
    from .limits import LimitStore
    from .model import ObjectRef
    from .routes import Backend


@dataclass(frozen=True, slots=True)
class Answer:
    """ingressd's own response to a request: status, extra header lines, body."""

    status: int
    headers: http1.Headers = ()
    body: bytes | None = None  # None: the status's short default body


class Request(NamedTuple):
    """What a step may read of one request; made only for routes that have steps."""

    head: RequestHead
    target: http1.Target
    path: str  # as routing saw it: no query, dot segments resolved (nginx's $uri)
    secure: bool  # came over TLS, or from a trusted proxy that says X-Forwarded-Proto: https
    https_port: int  # the port written in https redirects
    client: str  # the client's address (SPEC §4: behind a trusted proxy, X-Forwarded-For's)
    now: float  # the loop's clock when the request arrived
    limits: LimitStore  # the server's, kept across reloads
    finish: list[Callable[[], None]]  # run once when the exchange ends, however it ends
    response: list[tuple[bytes, bytes]]  # header lines every response to it gets (CORS)


@dataclass(frozen=True, slots=True)
class Pending:
    """A step's verdict that takes time (a bcrypt check): `work` runs in a worker thread,
    off the event loop, and returns the step's answer (None: the request goes on)."""

    work: Callable[[], Answer | None]


def local_answer(steps: tuple[Step, ...], request: Request) -> Answer | None:
    """The first answer of a route's request steps, if one answers.  A `Pending` verdict
    is worked out here and now: for tools (``--explain``), not for the event loop."""
    for step in steps:
        verdict = step(request)
        answer = verdict.work() if isinstance(verdict, Pending) else verdict
        if answer is not None:
            return answer
    return None


class Step(Protocol):
    def __call__(self, request: Request) -> Answer | Pending | None: ...

    def describe(self) -> str:
        """The step in words, for --check and /routes."""
        ...


@dataclass(frozen=True, slots=True)
class Always:
    """The same answer to every request: fail closed, permanent-/temporal-redirect."""

    answer: Answer
    description: str

    def __call__(self, request: Request) -> Answer | None:
        return self.answer

    def describe(self) -> str:
        return self.description


def fail_closed(annotations: tuple[str, ...]) -> Always:
    """An access or protocol annotation ingressd cannot honour: never serve open."""
    answer = Answer(503, body=http1.fail_closed_body(annotations))
    return Always(answer, f"503, fail closed: {', '.join(annotations)} not supported")


def unavailable(description: str) -> Always:
    """An access annotation that cannot be enforced (its Secret is missing...): 503, with
    the details in ingressd's warnings rather than in a public body."""
    body = b"503 Service Unavailable\nnot served: its access control is not configured correctly\n"
    return Always(Answer(503, body=body), f"503: {description}")


def redirect(code: int, url: str) -> Always:
    """The URL exactly as written, nothing of the request appended (as nginx's return)."""
    return Always(Answer(code, ((b"Location", url.encode()),)), f"{code} → {url}")


@dataclass(frozen=True, slots=True)
class CorsCheck:
    """enable-cors, as ingress-nginx's CORS template: for an allowed origin (any, with
    ``*``), an OPTIONS request is answered here with 204 and the CORS headers; any other
    request gets them on its response, replacing the backend's.  Other origins get
    nothing, and their OPTIONS goes to the backend.

    Origins match case-insensitively, a ``*.`` standing for one label; unlike the
    template's regex, which only anchors the end, the whole origin must match (a browser
    never sends anything else, so only non-browser oddities differ).
    """

    origins: re.Pattern[bytes] | None  # None: every origin, answered with "*"
    headers: tuple[tuple[bytes, bytes], ...]  # all but Access-Control-Allow-Origin

    @classmethod
    def compile(
        cls, origins: tuple[str, ...], headers: tuple[tuple[bytes, bytes], ...]
    ) -> CorsCheck:
        if origins == ("*",):
            return cls(None, headers)
        alternatives = [re.escape(o).replace(r"\*", r"[A-Za-z0-9\-]+", 1) for o in origins]
        pattern = re.compile(("^(?:" + "|".join(alternatives) + ")$").encode(), re.IGNORECASE)
        return cls(pattern, headers)

    def __call__(self, request: Request) -> Answer | None:
        head = request.head
        if self.origins is None:
            origin = b"*"
        else:
            sent = head.value(b"origin")
            if sent is None or self.origins.match(sent) is None:
                return None
            origin = sent
        headers = ((b"Access-Control-Allow-Origin", origin), *self.headers)
        if head.method == b"OPTIONS":
            return Answer(204, headers, b"")
        request.response.extend(headers)
        return None

    def describe(self) -> str:
        which = "any origin" if self.origins is None else "allowed origins"
        return f"CORS for {which}: 204 to OPTIONS, headers on the others"


@dataclass(frozen=True, slots=True)
class AppRoot:
    """app-root: a request for ``/`` itself is sent to the application's root (302)."""

    path: bytes

    def __call__(self, request: Request) -> Answer | None:
        if request.path != "/":
            return None
        location = _scheme(request) + request.target.host_header + self.path
        return Answer(302, ((b"Location", location),))

    def describe(self) -> str:
        return f"302 for / → {self.path.decode()} (app-root)"


@dataclass(frozen=True, slots=True)
class WwwRedirect:
    """from-to-www-redirect: the other name of the host is sent to this one (308).

    As ingress-nginx's ngx_srv_redirect.lua: the request URI is kept, but a trailing
    ``/`` of it is dropped; the port the client asked for is kept.
    """

    host: bytes

    def __call__(self, request: Request) -> Answer | None:
        authority = request.target.host_header
        port = (
            authority[authority.rfind(b":") :]
            if authority.rfind(b":") > authority.rfind(b"]")
            else b""
        )
        uri = request.target.forward_target
        if uri.endswith(b"/"):
            uri = uri[:-1]
        location = _scheme(request) + self.host + port + uri
        return Answer(308, ((b"Location", location),))

    def describe(self) -> str:
        return f"308 → {self.host.decode()} (from-to-www-redirect)"


def _scheme(request: Request) -> bytes:
    return b"https://" if request.secure else b"http://"


@dataclass(frozen=True, slots=True)
class HttpsRedirect:
    """SPEC §5: plain-HTTP requests for a TLS host (or with force-ssl-redirect) get 308."""

    def __call__(self, request: Request) -> Answer | None:
        if request.secure:
            return None
        target = request.target
        location = http1.redirect_location(target.host, target.forward_target, request.https_port)
        return Answer(308, ((b"Location", location),))

    def describe(self) -> str:
        return "308 → https"


@dataclass(frozen=True, slots=True)
class AddressSet:
    """CIDRs as (version, network, mask) integers: a membership test is a few integer
    operations, where `ipaddress`'s ``in`` costs microseconds per network."""

    networks: tuple[Network, ...]
    ranges: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, networks: tuple[Network, ...]) -> AddressSet:
        ranges = tuple((n.version, int(n.network_address), int(n.netmask)) for n in networks)
        return cls(networks, ranges)

    def __contains__(self, address: object) -> bool:
        version, value = cast(tuple[int, int], address)
        for network_version, network, mask in self.ranges:
            if network_version == version and value & mask == network:
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        return ", ".join(str(network) for network in self.networks)


@dataclass(frozen=True, slots=True)
class SourceRange:
    """denylist-source-range, then allowlist-source-range: 403, as nginx's deny/allow.

    An address that cannot be read (no peer address) is refused: never open.
    """

    deny: AddressSet
    allow: AddressSet  # empty: every address not denied may pass

    def __call__(self, request: Request) -> Answer | None:
        address = _address(request.client)
        if address is None or address in self.deny:
            return _FORBIDDEN
        if self.allow and address not in self.allow:
            return _FORBIDDEN
        return None

    def describe(self) -> str:
        parts = []
        if self.deny:
            parts.append(f"403 from {self.deny}")
        if self.allow:
            parts.append(f"403 unless from {self.allow}")
        return "; ".join(parts)


_FORBIDDEN = Answer(403)


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: it holds a cache
class EitherAccess:
    """satisfy: any — a client the source ranges let through needs no credentials; one
    they refuse must authenticate, and gets the 401 (nginx keeps 401 over 403)."""

    ranges: SourceRange
    auth: BasicAuthCheck

    def __call__(self, request: Request) -> Answer | Pending | None:
        # Only an allow rule satisfies nginx's access module; an address a denylist
        # merely does not name is "declined", and must authenticate.
        if self.ranges.allow and self.ranges(request) is None:
            return None
        return self.auth(request)

    def describe(self) -> str:
        return f"satisfy any: {self.ranges.describe()}, or {self.auth.describe()}"


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """limit-rps, limit-rpm, limit-connections per Ingress and client address: 503, as
    ingress-nginx's default limit-req/limit-conn status; limit-allowlist is exempt.

    The zones live in the server's `LimitStore` (under the Ingress's name), so they
    outlive a reload; a request in progress is released when its exchange ends.
    """

    ingress: str
    rps: int
    rpm: int
    burst_multiplier: int
    connections: int
    exempt: AddressSet

    def __call__(self, request: Request) -> Answer | None:
        client = request.client
        if self.exempt:
            address = _address(client)
            if address is not None and address in self.exempt:
                return None
        store = request.limits
        for kind, count, per in (("rps", self.rps, 1.0), ("rpm", self.rpm, 60.0)):
            if count:
                zone = store.rate_zone(
                    (self.ingress, kind), count / per, count * self.burst_multiplier
                )
                if not zone.allow(client, request.now):
                    return _LIMITED
        if self.connections:
            connections = store.connection_zone((self.ingress, "connections"), self.connections)
            if not connections.acquire(client):
                return _LIMITED
            request.finish.append(functools.partial(connections.release, client))
        return None

    def zones(self) -> list[tuple[str, str]]:
        kinds = [("rps", self.rps), ("rpm", self.rpm), ("connections", self.connections)]
        return [(self.ingress, kind) for kind, value in kinds if value]

    def describe(self) -> str:
        parts = [f"{self.rps}/s" if self.rps else "", f"{self.rpm}/min" if self.rpm else ""]
        rates = " and ".join(p for p in parts if p)
        text = f"503 over {rates} (burst x{self.burst_multiplier})" if rates else ""
        if self.connections:
            text += ("; " if text else "") + f"503 over {self.connections} requests in progress"
        return text + " per client"


_LIMITED = Answer(503)


def _address(text: str) -> tuple[int, int] | None:
    """(IP version, address as an integer); None for text that is not an address."""
    # No address is longer (45 characters, and a scope); longer text is never cached.
    return _parse_address(text) if len(text) <= 64 else None


@functools.lru_cache(maxsize=4096)  # a client sends many requests
def _parse_address(text: str) -> tuple[int, int] | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket
    return address.version, int(address)


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: it holds a cache
class BasicAuthCheck:
    """auth-type: basic (nginx's auth_basic): 401 with ``WWW-Authenticate`` unless the
    request's credentials are a user's of the Secret.

    A verified ``Authorization`` value is remembered (at most `_REMEMBERED` per route,
    the oldest forgotten first), so bcrypt does not cost every request; a new value is
    checked in a worker thread (`Pending`).  Only successes are remembered: a wrong
    password is checked each time, as nginx does.
    """

    users: Mapping[str, str]
    realm: str
    verified: dict[bytes, None] = field(default_factory=dict)

    def __call__(self, request: Request) -> Answer | Pending | None:
        authorization = request.head.value(b"authorization")
        if authorization is None:
            return self._challenge()
        if authorization in self.verified:
            return None
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return self._challenge()
        user, password = credentials
        return Pending(lambda: self._check(authorization, user, password))

    def _check(self, authorization: bytes, user: str, password: str) -> Answer | None:
        if not htpasswd.check(self.users, user, password):
            return self._challenge()
        verified = self.verified
        if len(verified) >= _REMEMBERED:
            with contextlib.suppress(StopIteration, RuntimeError):  # another thread's pop
                verified.pop(next(iter(verified)), None)
        verified[authorization] = None
        return None

    def _challenge(self) -> Answer:
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        return Answer(401, ((b"WWW-Authenticate", f'Basic realm="{realm}"'.encode()),))

    def describe(self) -> str:
        return f"401 unless a user of the auth Secret ({len(self.users)} users)"


_REMEMBERED = 1024


def _basic_credentials(authorization: bytes) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → (user, password); None when malformed."""
    scheme, _, token = authorization.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


# --- the backend choice: main or canary ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CanaryRule:
    """ingress-nginx's traffic shaping (balancer.lua): header, then cookie, then weight.

    `header_value` (exact) takes precedence over `header_pattern` (a search); with
    neither, the header's value ``always`` / ``never`` decides; any other value falls
    through to the cookie, whose ``always`` / ``never`` decide; else the weight does,
    out of `weight_total`.
    """

    header: bytes | None = None  # lower-case field name
    header_value: bytes | None = None
    header_pattern: re.Pattern[bytes] | None = None
    cookie: bytes | None = None
    weight: int = 0
    weight_total: int = 100

    def serves(self, head: RequestHead) -> bool:
        """Whether the canary serves this request."""
        decided = self.decide(head)
        if decided is not None:
            return decided
        # P = weight/total, as math.random(total) <= weight; no allocation per request.
        return random.random() * self.weight_total < self.weight

    def decide(self, head: RequestHead) -> bool | None:
        """The header's or the cookie's verdict; None: the weight decides."""
        if self.header is not None:
            value = head.value(self.header)
            if value is not None:
                if self.header_value is not None:
                    if value == self.header_value:
                        return True
                elif self.header_pattern is not None:
                    if self.header_pattern.search(value) is not None:
                        return True
                elif value == b"always":
                    return True
                elif value == b"never":
                    return False
        if self.cookie is not None:
            value = http1.cookie_value(head.headers, self.cookie)
            if value == b"always":
                return True
            if value == b"never":
                return False
        return None

    def describe(self) -> str:
        """The rule in words, for --check and --explain."""
        parts = []
        if self.header is not None:
            name = self.header.decode()
            if self.header_value is not None:
                parts.append(f"header {name}: {self.header_value.decode('latin-1')}")
            elif self.header_pattern is not None:
                parts.append(f"header {name} ~ {self.header_pattern.pattern.decode('latin-1')}")
            else:
                parts.append(f"header {name}: always|never")
        if self.cookie is not None:
            parts.append(f"cookie {self.cookie.decode('latin-1')}: always|never")
        parts.append(f"weight {self.weight}/{self.weight_total}")
        return ", then ".join(parts)


@dataclass(frozen=True, slots=True)
class Canary:
    """The canary side of a route: its backend, its Ingress, when it serves."""

    backend: Backend
    ingress: ObjectRef
    rule: CanaryRule
    labels: tuple[str, str, str, str]  # (namespace, ingress, service, "true"): metrics


# --- the rewrite: the path the backend receives ---------------------------------------

CAPTURE = re.compile(r"\$(?:(\d)|\{(\d)\})")  # $1 or ${1}; annotations.py validates with it


@dataclass(frozen=True, slots=True)
class Rewrite:
    """rewrite-target, as nginx's ``rewrite "(?i)PATH" TARGET break``.

    The route's path regex is searched in the routing path (nginx's $uri); its
    captures fill $1..$9 of the target, parsed once into literal text and group
    numbers.  The query is kept: appended with ``?``, or with ``&`` when the target
    has a query of its own.
    """

    pattern: re.Pattern[str]
    parts: tuple[str | int, ...]
    target: str

    @classmethod
    def compile(cls, path: str, target: str) -> Rewrite:
        """`re.error` when Python cannot compile the path."""
        parts: list[str | int] = []
        position = 0
        for match in CAPTURE.finditer(target):
            parts.append(target[position : match.start()])
            parts.append(int(match.group(1) or match.group(2)))
            position = match.end()
        parts.append(target[position:])
        return cls(re.compile(path, re.IGNORECASE), tuple(p for p in parts if p != ""), target)

    def apply(self, path: str, forward_target: bytes) -> bytes:
        """The request target for the backend; empty when the rewrite left nothing."""
        match = self.pattern.search(path)
        if match is None:
            return forward_target
        groups = (match.group(0), *match.groups())
        text = []
        for part in self.parts:
            if isinstance(part, str):
                text.append(part)
            elif part < len(groups):
                text.append(groups[part] or "")  # a group that took no part: empty, as nginx
        rewritten = "".join(text).encode("latin-1")
        if not rewritten:
            return b""  # nginx: "the rewritten URI has a zero length", a 500
        if rewritten[:1] != b"/":
            rewritten = b"/" + rewritten  # a request target must be a path
        if rewritten.endswith(b"?"):
            return rewritten[:-1]  # nginx: a target ending in "?" drops the request's query
        query = forward_target.partition(b"?")[2]
        if not query:
            return rewritten
        return rewritten + (b"&" if b"?" in rewritten else b"?") + query
