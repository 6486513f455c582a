"""Pure HTTP/1.1 proxy rules: which headers go where, and ingressd's own answers.

Owns: hop-by-hop removal (RFC 9110 §7.6.1), ``X-Forwarded-*`` / ``X-Real-IP`` /
``X-Request-ID`` (SPEC §4), the request target → (host, path) split with its
checks (RFC 9112 §3.2), and the bytes of ingressd's error and redirect
responses.  No I/O, no asyncio: everything here is tested without sockets.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, NamedTuple

from .codec import split_fields
from .errors import ProtocolError
from .memo import short_cache

Headers = Sequence[tuple[bytes, bytes]]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Replaced with ingressd's own values (SPEC §4); Expect is answered by ingressd itself.
_REPLACED: Final = frozenset(
    {
        b"x-real-ip",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-request-id",
        b"expect",
        b"host",
        b"content-length",
    }
)
_REQUEST_ID_CHARS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"
)


def end_to_end(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Headers without the hop-by-hop ones, including those named in ``Connection``."""
    return _without(headers, HOP_BY_HOP)


_random = random.Random(os.urandom(32))
# Worker processes must not repeat each other's ids.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_request_id() -> bytes:
    """32 hex digits.  Ids must be unique, not secret: a seeded PRNG, not a syscall each."""
    return _random.getrandbits(128).to_bytes(16).hex().encode()


def request_id_of(value: bytes | None) -> bytes:
    """The client's ``X-Request-ID`` value when it is a sane token, else a new id."""
    if value and len(value) <= 200 and _REQUEST_ID_CHARS.issuperset(value):
        return value
    return new_request_id()


class Target(NamedTuple):
    """Where a request goes: routing host (lower-case, no port), path for routing, wire target."""

    host: str
    path: str
    forward_target: bytes  # origin-form sent upstream
    host_header: bytes  # the Host header sent upstream


def split_target(method: bytes, target: bytes, host_header: bytes) -> Target:
    """RFC 9112 §3.2: origin-form, absolute-form (its authority beats Host) or ``*``."""
    if target[:1] == b"/" or (target == b"*" and method == b"OPTIONS"):
        return Target(_host_name(host_header), target.decode("latin-1"), target, host_header)
    lowered = target[:8].lower()
    if lowered.startswith((b"http://", b"https://")):
        rest = target[target.index(b"//") + 2 :]
        slash = _first_of(rest, b"/?")
        authority, path = rest[:slash], rest[slash:] or b"/"
        if path[:1] == b"?":
            path = b"/" + path
        if b"@" in authority:
            raise ProtocolError("userinfo in the request target is not allowed")
        if not authority:
            raise ProtocolError("absolute-form request target without a host")
        return Target(_host_name(authority), path.decode("latin-1"), path, authority)
    raise ProtocolError("invalid request target")


def _first_of(data: bytes, chars: bytes) -> int:
    positions = [p for p in (data.find(bytes([c])) for c in chars) if p >= 0]
    return min(positions) if positions else len(data)


@short_cache(max_length=300, maxsize=4096)  # clients repeat the same few Host values
def _host_name(authority: bytes) -> str:
    """``Example.COM:8080`` → ``example.com``; ``[::1]:80`` → ``[::1]``; checks the characters."""
    host = authority
    if host.startswith(b"["):
        end = host.find(b"]")
        if end < 0:
            raise ProtocolError("invalid Host")
        name, rest = host[: end + 1], host[end + 1 :]
    else:
        name, _, port = host.partition(b":")
        rest = b":" + port if port or b":" in host else b""
    if rest and not ((rest[:1] == b":" and rest[1:].isdigit()) or rest == b":"):
        raise ProtocolError("invalid Host port")
    text = name.decode("latin-1").lower()
    if not text.isascii() or any(c in text for c in " \t/\\@?#%"):
        raise ProtocolError("invalid Host")
    return text.rstrip(".")


@dataclass(frozen=True, slots=True)
class Listener:
    """What the client connected to: scheme and the port it sees."""

    scheme: bytes  # b"http" or b"https"
    port: int


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(address: str, networks: Sequence[Network]) -> bool:
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def connection_forwarded(client_ip: str, listener: Listener) -> list[tuple[bytes, bytes]]:
    """The forwarded headers that are the same for every request of an untrusted connection."""
    client = client_ip.encode()
    return [
        (b"x-real-ip", client),
        (b"x-forwarded-for", client),
        (b"x-forwarded-port", str(listener.port).encode()),
        (b"x-forwarded-proto", listener.scheme),
    ]


def forwarded_headers(
    headers: Headers,
    client_ip: str,
    listener: Listener,
    host_header: bytes,
    trusted_networks: Sequence[Network] | None,
) -> list[tuple[bytes, bytes]]:
    """``X-Real-IP`` and ``X-Forwarded-*`` for the upstream request (SPEC §4).

    ``trusted_networks`` is None for an untrusted peer (its values are
    replaced); for a trusted one, X-Forwarded-For is appended to and the
    right-most untrusted address becomes X-Real-IP.
    """
    client = client_ip.encode()
    port = str(listener.port).encode()
    if trusted_networks is None:
        return [*connection_forwarded(client_ip, listener), (b"x-forwarded-host", host_header)]
    incoming = {n: v for n, v in headers if n.startswith(b"x-forwarded-")}
    chain = _forwarded_chain(_forwarded_for(headers), client)
    real_ip = _right_most_untrusted(chain, trusted_networks)
    return [
        (b"x-real-ip", real_ip),
        (b"x-forwarded-for", b", ".join(chain)),
        (b"x-forwarded-host", incoming.get(b"x-forwarded-host", host_header)),
        (b"x-forwarded-port", incoming.get(b"x-forwarded-port", port)),
        (b"x-forwarded-proto", incoming.get(b"x-forwarded-proto", listener.scheme)),
    ]


def client_address(headers: Headers, peer: str, trusted_networks: Sequence[Network]) -> str:
    """SPEC §4's client address behind a trusted peer: the right-most untrusted address
    of its X-Forwarded-For and the peer (what X-Real-IP says)."""
    chain = _forwarded_chain(_forwarded_for(headers), peer.encode())
    return _right_most_untrusted(chain, trusted_networks).decode("latin-1")


def _forwarded_for(headers: Headers) -> bytes:
    """Every X-Forwarded-For line, in order, as one list (RFC 9110 §5.3)."""
    return b",".join(v for n, v in headers if n == b"x-forwarded-for")


def _forwarded_chain(forwarded_for: bytes, peer: bytes) -> list[bytes]:
    return [a.strip() for a in forwarded_for.split(b",") if a.strip()] + [peer]


def _right_most_untrusted(chain: list[bytes], trusted_networks: Sequence[Network]) -> bytes:
    address = chain[-1]
    for address in reversed(chain):
        if not is_trusted(address.decode("latin-1"), trusted_networks):
            break
    return address


def _without(headers: Headers, drop: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """One pass: drop `drop` and, when ``Connection`` names more, those too (rare, second pass)."""
    kept = []
    named = None
    for field in headers:
        name = field[0]
        if name in drop:
            if name == b"connection":
                named = field[1]
            continue
        kept.append(field)
    if named is not None:
        tokens = {t.strip().lower() for t in named.split(b",")} - _CONNECTION_OPTIONS
        if tokens:
            kept = [f for f in kept if f[0] not in tokens]
    return kept


def _remover(names: frozenset[bytes]) -> re.Pattern[bytes]:
    """Matches the field lines named `names` in a CRLF-led block, from LF to CR.

    Removing ``LF name: value CR`` joins the CR before with the LF after, so the
    block keeps its shape.  Names are matched up to the colon: ``te`` never
    matches ``te-x``.
    """
    alternatives = b"|".join(re.escape(name) for name in sorted(names))
    # The lookahead on the first letter skips most other lines with one class test.
    initials = bytes(sorted({name[0] for name in names} | {name[:1].upper()[0] for name in names}))
    return re.compile(rb"\n(?=[%s])(?:%s):[^\r]*\r" % (initials, alternatives), re.IGNORECASE)


def _forwardable(
    fields: bytes, connection: Sequence[bytes], remover: re.Pattern[bytes], drop: frozenset[bytes]
) -> bytes:
    """The field lines of a block that may be forwarded, as a CRLF-led block.

    Lines are forwarded as received (the codec let through no CR, LF or NUL, so
    no header can be injected); fields named in ``Connection`` go too (rare: a
    slower path over the parsed fields).
    """
    if _CONNECTION_OPTIONS.issuperset(connection):
        return remover.sub(b"", fields)
    # Connection never removes Content-Length: it frames the message ingressd forwards.
    drop = drop.union(token for token in connection if token != b"content-length")
    kept = [b"%s: %s\r\n" % field for field in split_fields(fields) if field[0] not in drop]
    return b"\r\n" + b"".join(kept)


def upstream_fields(fields: bytes, connection: Sequence[bytes]) -> bytes:
    """The client's end-to-end field lines for the backend (CRLF-led, CRLF-ended block).

    `fields` and `connection` are those of a `codec.RequestHead`; ingressd adds
    its own fields after these.
    """
    return _forwardable(fields, connection, _UPSTREAM_REMOVER, _DROP_UPSTREAM)


def downstream_fields(fields: bytes, connection: Sequence[bytes]) -> bytes:
    """The backend's end-to-end field lines for the client (CRLF-led, CRLF-ended block)."""
    return _forwardable(fields, connection, _DOWNSTREAM_REMOVER, _DROP_DOWNSTREAM)


def fields_bytes(headers: Headers) -> bytes:
    """``name: value`` lines for ingressd's own fields."""
    return b"".join([b"%s: %s\r\n" % field for field in headers])


_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive", b"upgrade", b""})
_DROP_UPSTREAM: Final = HOP_BY_HOP | _REPLACED
_DROP_DOWNSTREAM: Final = HOP_BY_HOP | {b"x-request-id"}
_UPSTREAM_REMOVER: Final = _remover(_DROP_UPSTREAM)
_DOWNSTREAM_REMOVER: Final = _remover(_DROP_DOWNSTREAM)


# --- ingressd's own answers --------------------------------------------------

_SERVER: Final = b"ingressd"


def status_body(status: int) -> bytes:
    """The plain-text body of ingressd's own answer with this status."""
    return b"%d %s\n" % (status, HTTPStatus(status).phrase.encode())


def fail_closed_body(annotations: Sequence[str]) -> bytes:
    """Why an Ingress that asked for a check ingressd cannot make is not served."""
    names = ", ".join(annotations)
    return (
        f"503 Service Unavailable\nnot served: ingressd does not support {names}, "
        "and does not serve a route without the protection it asks for\n"
    ).encode()


def simple_response(
    status: int,
    *,
    keep_alive: bool,
    request_id: bytes | None = None,
    extra: Headers = (),
    head_only: bool = False,
    body: bytes | None = None,
) -> bytes:
    """A complete small plain-text response (SPEC §4: each status has a short body)."""
    phrase = HTTPStatus(status).phrase.encode()
    if body is None:
        body = status_body(status)
    lines = [b"HTTP/1.1 %d %s" % (status, phrase), b"Server: " + _SERVER]
    if status == 204:  # no content, and no Content-Length (RFC 9110 §8.6)
        body = b""
    else:
        lines += (b"Content-Type: text/plain; charset=utf-8", b"Content-Length: %d" % len(body))
    lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    if request_id is not None:
        lines.append(b"X-Request-ID: " + request_id)
    lines.extend(n + b": " + v for n, v in extra)
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head if head_only else head + body


def cookie_value(headers: Headers, name: bytes) -> bytes | None:
    """nginx's ``$cookie_NAME``: the first cookie of that name in the Cookie fields.

    Names compare case-insensitively, as nginx compares them.
    """
    wanted = name.lower()
    for field_name, value in headers:
        if field_name != b"cookie":
            continue
        for pair in value.split(b";"):
            key, equals, cookie = pair.strip(b" \t").partition(b"=")
            if equals and key.lower() == wanted:
                return cookie
    return None


def redirect_location(host: str, path: bytes, https_port: int) -> bytes:
    """SPEC §5: ``https://HOST[:PORT]/path?query``, port left out when 443."""
    authority = host if https_port == 443 else f"{host}:{https_port}"
    return b"https://" + authority.encode() + path
