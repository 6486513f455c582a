"""``ingressd --check --explain URL``: what one request would get, in words.

Owns: turning a URL and header lines into a request as the data path parses it
(the same codec), and walking the same compiled table and policy steps the
server uses: the host and path rule that match, the steps that apply, the
canary side, and the request line and Host the backend would receive.  Pure:
no sockets; the canary weight is reported as odds, not drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from . import http1
from .codec import RequestHead, RequestParser
from .errors import IngressError
from .limits import LimitStore
from .policy import Request, local_answer
from .routes import RegexVirtualHost, Route, RouteTable, normalize_path


class ExplainError(ValueError):
    """The URL or a header line cannot make a request."""


def parse_request(url: str, headers: Sequence[str]) -> tuple[RequestHead, bool]:
    """A GET of `url` with these ``Name: value`` lines, parsed by the data-path codec;
    and whether it came over https."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ExplainError(f"expected an http:// or https:// URL, got {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}"]
    for line in headers:
        name, colon, _ = line.partition(":")
        if not colon or not name.strip():
            raise ExplainError(f"expected a header line 'Name: value', got {line!r}")
        lines.append(line)
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    try:
        events = RequestParser().feed(raw)
    except IngressError as exc:
        raise ExplainError(f"ingressd would answer {exc.status}: {exc}") from exc
    head = events[0]
    assert isinstance(head, RequestHead)
    return head, parts.scheme == "https"


def explain(
    table: RouteTable, head: RequestHead, secure: bool, https_port: int, client: str
) -> str:
    """The explanation, one fact a line."""
    target = http1.split_target(head.method, head.target, head.host or b"")
    path = normalize_path(target.path)
    lines = [f"Request: {head.method.decode()} {head.target.decode('latin-1')} "
             f"Host: {target.host} ({'https' if secure else 'http'}, from {client})"]  # fmt: skip
    route = table.match(target.host, path)
    if route is None:
        lines.append("No host or path rule matches and there is no catch-all: ingressd answers 404")
        return "\n".join(lines)
    lines += _rule(table, target.host, route)
    for step in route.steps:
        lines.append(f"Step: {step.describe()}")
    request = Request(head, target, path, secure, https_port, client, 0.0, LimitStore(), [], [])
    answer = local_answer(route.steps, request)
    if answer is not None:
        location = dict(answer.headers).get(b"Location")
        where = f", Location: {location.decode('latin-1')}" if location else ""
        lines.append(f"Answer: {answer.status} from ingressd{where}; the backend is not asked")
        return "\n".join(lines)
    backend, side = route.backend, "main"
    canary = route.canary
    if canary is not None:
        decided = canary.rule.decide(head)
        rule = canary.rule
        lines.append(
            f"Canary: {canary.backend.key} [Ingress {canary.ingress}] when {rule.describe()}"
        )
        if decided is None:
            odds = 100 * min(rule.weight, rule.weight_total) / rule.weight_total
            lines.append(f"  this request: by weight, the canary with {odds:g} % odds")
        else:
            side = "canary" if decided else "main"
            lines.append(f"  this request: the {side} side, by its header or cookie")
            backend = canary.backend if decided else backend
    endpoints = ", ".join(str(e) for e in backend.endpoints) or f"none ({backend.problem}): 503"
    lines.append(f"Backend ({side}): {backend.key} → {endpoints}")
    forward = target.forward_target
    if route.rewrite is not None:
        forward = route.rewrite.apply(path, forward)
        lines.append(f"Rewrite: {route.rewrite.target}")
        if not forward:
            lines.append("Answer: 500 from ingressd: the rewrite leaves an empty URI, as nginx")
            return "\n".join(lines)
    lines.append("Upstream request:")
    lines.append(f"  {head.method.decode()} {forward.decode('latin-1')} HTTP/1.1")
    host = route.upstream_host or target.host_header
    lines.append(f"  Host: {host.decode('latin-1')}")
    for line in route.upstream_lines.decode("latin-1").splitlines():
        lines.append(f"  {line}")
    lines.append("  (and the client's end-to-end headers, X-Forwarded-*, X-Real-IP, X-Request-ID)")
    return "\n".join(lines)


def _rule(table: RouteTable, host: str, route: Route) -> list[str]:
    vhost = table.hosts.get(host)
    regex = isinstance(vhost, RegexVirtualHost)
    host_rule = route.host or "(any host)"
    if route.path is None:
        what = "the catch-all defaultBackend" if route is table.catch_all else "its defaultBackend"
        return [f"Host rule: {host_rule}", f"Path rule: none matches: {what}"
                f" [Ingress {route.ingress}, {route.origin}]"]  # fmt: skip
    kind = route.path_type.value if route.path_type else ""
    note = (
        " (a regex host: case-insensitive, anchored at the start, longest first)" if regex else ""
    )
    return [
        f"Host rule: {host_rule}{note}",
        f"Path rule: {route.path} {kind} [Ingress {route.ingress}, {route.origin}]",
    ]
