"""h11 as the oracle of the data-path codec, and the codec driven the same way.

Used by the differential tests (tests/unit/test_codec_differential.py) and the fuzz
target (tests/fuzz/codec_target.py): both feed the same pieces to ingressd's codec
and to h11, turn each side's events into `Outcome`s, and check with
`not_more_lenient` that the codec never reads a message h11 rejects and reads what
both accept alike (SPEC "Parsing").  Every broken property raises `CodecFinding`.
"""

from __future__ import annotations

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

REQUEST_STATUSES = frozenset({400, 413, 414, 431, 501, 505})
_H11_BUFFER = 1 << 20  # h11's 16 KiB default is below the codec's limits: not a disagreement


class CodecFinding(AssertionError):
    """A property of the codec does not hold for this input."""


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


def _drive(
    parser: RequestParser | ResponseParser,
    pieces: list[bytes],
    error_type: type[IngressError],
    statuses: frozenset[int],
) -> Outcome:
    """Feed `pieces` then the end of stream; the codec may only fail with `error_type`
    and one of `statuses`, and a failed parser must refuse any further input."""
    out = Outcome()
    try:
        for piece in pieces:
            _collect(out, parser.feed(piece))
            if parser.upgraded:
                out.stopped = True
                return out
        _collect(out, parser.eof() or [])
    except error_type as exc:
        if exc.status not in statuses:
            raise CodecFinding(f"{error_type.__name__} with status {exc.status}: {exc}") from exc
        out.error = exc
        try:
            parser.feed(b"x")
        except error_type:
            return out
        raise CodecFinding(f"the parser accepted more input after {exc!r}") from None
    return out


# --------------------------------------------------------------------------- drivers


def codec_requests(pieces: list[bytes]) -> Outcome:
    return _drive(RequestParser(), pieces, ProtocolError, REQUEST_STATUSES)


def codec_response(method: bytes, pieces: list[bytes]) -> Outcome:
    return _drive(ResponseParser(method), pieces, UpstreamProtocolError, frozenset({502}))


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


# --------------------------------------------------------------------------- the rule


def not_more_lenient(codec: Outcome, oracle: Outcome) -> None:
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
