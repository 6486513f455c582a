"""The fuzz target for the data-path codec: one input → every property checked, or an error.

Shared by the atheris harness (fuzz_codec.py) and the hypothesis run in
test_fuzz_codec.py, so both exercise exactly the same function, `run_one(data)`.

Input layout (plain, so that seeds are written by hand; see `encode`):

    byte 0     bit 0: 0 = request side (RequestParser), 1 = response side
               (ResponseParser); bits 1-2: the method the response answers
    byte 1     n = number of cut points (low 3 bits: 0-7)
    2n bytes   the cut points, uint16 little-endian, each modulo len(payload) + 1
    the rest   the payload, fed in n + 1 pieces, then end of stream

Properties (each failure raises `CodecFinding`, anything unexpected propagates):

* only `ProtocolError` (request side) or `UpstreamProtocolError` (response side)
  leaves the codec, with a status the module documents; a failed parser stays dead;
* events are well-formed: a head first, no empty `Body`, nothing after the end
  of a message but the next head;
* where the bytes were cut does not change whether they are accepted, nor, when
  they are, the messages;
* the codec never completes a message that h11 (the oracle, SPEC "Parsing")
  rejects, and what both accept they read alike: start line, headers, body.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import h11

from ingressd.codec import (
    Body,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
)
from ingressd.errors import IngressError, ProtocolError, UpstreamProtocolError

METHODS = (b"GET", b"HEAD", b"POST", b"CONNECT")
REQUEST_STATUSES = frozenset({400, 413, 414, 431, 501, 505})
MAX_CUTS = 7
_H11_BUFFER = 1 << 20  # h11's 16 KiB default is below the codec's limits: not a disagreement


class CodecFinding(AssertionError):
    """A property of the codec does not hold for this input."""


@dataclass(frozen=True)
class Case:
    response: bool
    method: bytes
    payload: bytes
    cuts: tuple[int, ...]

    def pieces(self) -> list[bytes]:
        points = sorted({cut % (len(self.payload) + 1) for cut in self.cuts})
        edges = [0, *points, len(self.payload)]
        return [self.payload[a:b] for a, b in itertools.pairwise(edges) if b > a]


def decode(data: bytes) -> Case:
    flags = data[0] if data else 0
    count = (data[1] & MAX_CUTS) if len(data) > 1 else 0
    raw_cuts = data[2 : 2 + 2 * count]
    cuts = tuple(v for (v,) in struct.iter_unpack("<H", raw_cuts[: len(raw_cuts) // 2 * 2]))
    payload = data[2 + 2 * count :]
    return Case(bool(flags & 1), METHODS[(flags >> 1) & 3], payload, cuts)


def encode(payload: bytes, *, response: bool = False, method: bytes = b"GET",
           cuts: Sequence[int] = ()) -> bytes:  # fmt: skip
    """The input that `decode` turns into this case (for seeds)."""
    flags = int(response) | METHODS.index(method) << 1
    count = min(len(cuts), MAX_CUTS)
    packed = b"".join(struct.pack("<H", cut & 0xFFFF) for cut in cuts[:count])
    return bytes([flags, count]) + packed + payload


# --------------------------------------------------------------------------- outcomes


@dataclass
class Message:
    start: tuple[object, ...]  # (method, target, version) or (status, reason, version)
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    complete: bool = False


@dataclass
class Outcome:
    messages: list[Message] = field(default_factory=list)
    error: Exception | None = None
    stopped: bool = False  # stopped reading on purpose: close, switch, response done

    def complete(self) -> list[Message]:
        return [m for m in self.messages if m.complete]


def _headers(items: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # h11 lower-cases Transfer-Encoding values: compare them case-insensitively.
    return [
        (bytes(name), bytes(value).lower() if name == b"transfer-encoding" else bytes(value))
        for name, value in items
    ]


def _collect(out: Outcome, events: Sequence[object]) -> None:
    for event in events:
        if isinstance(event, RequestHead | ResponseHead):
            if out.messages and not out.messages[-1].complete:
                raise CodecFinding(f"a head before the end of the previous message: {event!r}")
            if isinstance(event, RequestHead):
                start: tuple[object, ...] = (event.method, event.target, event.version)
                interim = False
            else:
                start = (event.status, event.reason, event.version)
                interim = event.status < 200
            out.messages.append(Message(start, _headers(event.headers), complete=interim))
        elif isinstance(event, Body):
            if not event.data:
                raise CodecFinding("an empty Body event")
            if not out.messages or out.messages[-1].complete:
                raise CodecFinding("a Body event outside a message")
            out.messages[-1].body += event.data
        elif isinstance(event, EndOfMessage):
            if not out.messages or out.messages[-1].complete:
                raise CodecFinding("an EndOfMessage outside a message")
            out.messages[-1].complete = True
        else:
            raise CodecFinding(f"unknown event {event!r}")


def _must_stay_dead(feed: object, error: IngressError) -> None:
    assert callable(feed)
    try:
        feed(b"x")
    except type(error):
        return
    raise CodecFinding(f"the parser accepted more input after {error!r}")


def codec_requests(pieces: list[bytes]) -> Outcome:
    parser = RequestParser()
    out = Outcome()
    try:
        for piece in pieces:
            _collect(out, parser.feed(piece))
            if parser.upgraded:
                out.stopped = True
                return out
        parser.eof()
    except ProtocolError as exc:
        if exc.status not in REQUEST_STATUSES:
            raise CodecFinding(f"ProtocolError with status {exc.status}: {exc}") from exc
        out.error = exc
        _must_stay_dead(parser.feed, exc)
    return out


def codec_response(method: bytes, pieces: list[bytes]) -> Outcome:
    parser = ResponseParser(method)
    out = Outcome()
    try:
        for piece in pieces:
            _collect(out, parser.feed(piece))
            if parser.upgraded:
                out.stopped = True
                return out
        _collect(out, parser.eof())
    except UpstreamProtocolError as exc:
        if exc.status != 502:
            raise CodecFinding(f"UpstreamProtocolError with status {exc.status}") from exc
        out.error = exc
        _must_stay_dead(parser.feed, exc)
    return out


def h11_requests(pieces: list[bytes]) -> Outcome:
    """h11 as a server that answers every request at once (so pipelining goes on)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_H11_BUFFER)
    out = Outcome()
    try:
        for piece in [*pieces, b""]:  # b"": end of stream
            conn.receive_data(piece)
            while not out.stopped:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if isinstance(event, h11.ConnectionClosed):
                    out.stopped = True
                elif isinstance(event, h11.Request):
                    start = (bytes(event.method), bytes(event.target), event.http_version)
                    out.messages.append(Message(start, _headers(event.headers)))
                elif isinstance(event, h11.Data):
                    out.messages[-1].body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    out.messages[-1].complete = True
                    # 405 to CONNECT refuses the tunnel; 200 refuses an Upgrade.
                    status = 405 if out.messages[-1].start[0] == b"CONNECT" else 200
                    conn.send(h11.Response(status_code=status, headers=[("content-length", "0")]))
                    conn.send(h11.EndOfMessage())
                    if conn.our_state is h11.MUST_CLOSE:
                        out.stopped = True
                    else:
                        conn.start_next_cycle()
            if out.stopped:
                break
    except h11.ProtocolError as exc:
        out.error = exc
    return out


def h11_response(method: bytes, pieces: list[bytes]) -> Outcome:
    """h11 as a client that sent `method`, proposing a WebSocket upgrade too.

    The codec emits any 101 and leaves checking that it was asked for to its caller
    (ResponseParser's contract), so the oracle proposes one even with CONNECT.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_H11_BUFFER)
    headers = [(b"host", b"example.com"), (b"connection", b"upgrade"), (b"upgrade", b"websocket")]
    target = b"example.com:443" if method == b"CONNECT" else b"/"
    conn.send(h11.Request(method=method, target=target, headers=headers))
    conn.send(h11.EndOfMessage())
    out = Outcome()
    try:
        for piece in [*pieces, b""]:
            conn.receive_data(piece)
            while not out.stopped:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    break
                if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    out.stopped = True  # switched protocols
                elif isinstance(event, h11.InformationalResponse | h11.Response):
                    start = (event.status_code, bytes(event.reason), event.http_version)
                    message = Message(start, _headers(event.headers))
                    message.complete = isinstance(event, h11.InformationalResponse)
                    out.messages.append(message)
                elif isinstance(event, h11.Data):
                    out.messages[-1].body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    out.messages[-1].complete = True
                    out.stopped = True
            if out.stopped:
                break
    except h11.ProtocolError as exc:
        out.error = exc
    return out


# --------------------------------------------------------------------------- properties


def _same_verdict(whole: Outcome, cut: Outcome, case: Case) -> None:
    if (whole.error is None) != (cut.error is None):
        raise CodecFinding(
            f"the cuts {case.cuts} change the verdict: whole {whole.error!r}, cut {cut.error!r}"
        )
    if whole.error is None and whole.messages != cut.messages:
        raise CodecFinding(f"the cuts {case.cuts} change the messages")


def _not_more_lenient(codec: Outcome, oracle: Outcome) -> None:
    """Everything the codec accepted, h11 accepted identically (or never reached)."""
    for i, mine in enumerate(codec.messages):
        if i >= len(oracle.messages):
            if oracle.stopped and oracle.error is None:
                return
            raise CodecFinding(
                f"codec read message {i} {mine.start!r} that h11 rejected: {oracle.error!r}"
            )
        theirs = oracle.messages[i]
        if mine.start != theirs.start or mine.headers != theirs.headers:
            raise CodecFinding(
                f"message {i}: codec {mine.start!r} {mine.headers!r}, "
                f"h11 {theirs.start!r} {theirs.headers!r}"
            )
        if mine.complete:
            if not theirs.complete:
                raise CodecFinding(
                    f"codec completed message {i} {mine.start!r}, h11 did not: {oracle.error!r}"
                )
            if mine.body != theirs.body:
                raise CodecFinding(f"message {i}: bodies differ")
        elif not theirs.body.startswith(mine.body):
            raise CodecFinding(f"message {i}: partial bodies differ")


def check(case: Case) -> None:
    """Every property for one case; raises `CodecFinding` (or whatever escaped the codec)."""
    pieces = case.pieces()
    if case.response:
        outcome = codec_response(case.method, pieces)
        whole = codec_response(case.method, [case.payload] if case.payload else [])
        oracle = h11_response(case.method, pieces)
    else:
        outcome = codec_requests(pieces)
        whole = codec_requests([case.payload] if case.payload else [])
        oracle = h11_requests(pieces)
    _same_verdict(whole, outcome, case)
    _not_more_lenient(outcome, oracle)


def run_one(data: bytes) -> None:
    """The fuzz target: decode the input, check every property."""
    check(decode(data))


# --------------------------------------------------------------------------- seeds

_H = b"Host: example.com\r\n"
REQUEST_SEEDS = (
    b"GET / HTTP/1.1\r\n" + _H + b"\r\n",
    b"GET /a?b=c HTTP/1.1\r\n" + _H + b"Connection: close\r\n\r\nGARBAGE",
    b"POST /p HTTP/1.1\r\n" + _H + b"Content-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"GET /1 HTTP/1.1\r\n" + _H + b"\r\nPUT /2 HTTP/1.1\r\n" + _H + b"Content-Length: 1\r\n\r\nx"
    b"GET /3 HTTP/1.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\n" + _H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    b"GET / HTTP/1.1\r\n" + _H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + _H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"PUT / HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"
    b"0\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
)
_OK = b"Content-Length: 2\r\n\r\nok"
_WEBSOCKET = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
RESPONSE_SEEDS = (
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    (b"GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the close"),
    (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    (b"GET", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n" + _OK),
    (b"GET", b"HTTP/1.1 101 Switching Protocols\r\n" + _WEBSOCKET + b"\r\n\x81\x00"),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
    (b"POST", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"),
    (b"CONNECT", b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03"),
)


def seeds() -> list[bytes]:
    """Inputs that reach every state of both parsers, whole and cut in a few places."""
    out = []
    for payload in REQUEST_SEEDS:
        out += [encode(payload), encode(payload, cuts=(1, len(payload) // 2, len(payload) - 1))]
    for method, payload in RESPONSE_SEEDS:
        out.append(encode(payload, response=True, method=method))
        out.append(encode(payload, response=True, method=method, cuts=(len(payload) // 3,)))
    return out
