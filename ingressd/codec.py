"""The data-path HTTP/1.1 codec: bytes in, small frozen events out (sans-I/O).

Owns: finding message boundaries on both sides of the proxy, the strictness checks
that keep those boundaries unambiguous (SPEC §4, RFC 9112 §6), and building the
bytes of outgoing heads and chunks.  It must not do I/O, import asyncio, log, or
decide policy (routing, hop-by-hop removal, body size limits): callers get events
and decide.

How the work is split:

* llhttp (through httptools, strict mode: no leniency flag is ever set) tokenises
  each head and enforces the header grammar: names are tokens, no whitespace
  before the colon, no CTL but HTAB in values, CR and LF only as CRLF, no
  obs-fold, Content-Length is digits and not repeated, never both Content-Length
  and Transfer-Encoding, valid request-target characters, a method it knows (else
  501).  Every llhttp callback lives in `_HeadSink`; no other module sees llhttp.
* This module finds where each head ends (the first CRLFCRLF: strict llhttp
  accepts no other line ending, so the two agree), hands llhttp exactly that head,
  and adds the checks llhttp lacks or makes differently from h11, the oracle the
  codec is tested against: the start line (single spaces, HTTP/1.0 or 1.1 only,
  status 100-599, no leading empty line), Host (exactly one in 1.1, valid
  characters), Transfer-Encoding exactly `chunked`, none in HTTP/1.0, limits.
* Bodies are framed here, not by llhttp: through httptools llhttp cannot learn
  that a response answers HEAD, it hands the body of an Upgrade request to the
  tunnel, and it accepts chunk sizes h11 rejects.  Chunked bodies are parsed one
  chunk at a time, never one byte at a time.

The codec may be stricter than h11, never more lenient (the differential tests
list every place where it is stricter).  Bad client input raises `ProtocolError`
(400, 414, 431, 501, 505); a bad backend response raises `UpstreamProtocolError`.
After an error a parser is dead: every later call raises again.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import httptools

from .errors import IngressError, ProtocolError, UpstreamProtocolError
from .memo import short_cache

__all__ = [
    "END",
    "LAST_CHUNK",
    "Body",
    "EndOfMessage",
    "Framing",
    "RequestEvent",
    "RequestHead",
    "RequestParser",
    "ResponseEvent",
    "ResponseHead",
    "ResponseParser",
    "encode_chunk",
    "serialize_request_head",
    "serialize_response_head",
]


class Framing(enum.Enum):
    """How the end of a message body is found (RFC 9112 §6.3)."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"  # responses only: the body ends when the backend closes


class _Fields:
    """Field access shared by both heads.

    `fields` holds the field lines exactly as received (llhttp checked their
    grammar), each led by its CRLF, plus the CRLF that ends the last one:
    ``b"\r\nHost: a\r\nAccept: */*\r\n"``, or ``b"\r\n"`` with no fields.  A
    proxy forwards most lines untouched, so they stay bytes until someone asks.
    """

    __slots__ = ()
    fields: bytes

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """(lower-case name, value without surrounding whitespace), in order."""
        return split_fields(self.fields)

    def value(self, name: bytes) -> bytes | None:
        """The first value of the field `name` (lower-case), or None."""
        pattern = _VALUE_PATTERNS.get(name)
        if pattern is None:
            pattern = _VALUE_PATTERNS[name] = re.compile(
                rb"\n%s:[ \t]*([^\r]*)" % re.escape(name), re.IGNORECASE
            )
        match = pattern.search(self.fields)
        return None if match is None else match[1].rstrip(b" \t")


_VALUE_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def split_fields(fields: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """A CRLF-led field block (see `RequestHead.fields`) as (name, value) pairs."""
    if len(fields) <= 2:
        return ()
    pairs = []
    for line in fields[2:-2].split(b"\r\n"):
        name, _, value = line.partition(b":")
        pairs.append((name.lower(), value.strip(b" \t")))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class RequestHead(_Fields):
    method: bytes
    target: bytes
    version: bytes
    fields: bytes  # see `_Fields`
    keep_alive: bool
    framing: Framing
    content_length: int | None
    expect_continue: bool
    upgrade: bytes | None
    host: bytes | None  # the Host field's value (the codec checked there is at most one)
    connection: tuple[bytes, ...]  # the Connection field's options, lower-case


@dataclass(frozen=True, slots=True)
class ResponseHead(_Fields):
    status: int
    reason: bytes
    version: bytes
    fields: bytes  # see `_Fields`
    keep_alive: bool
    framing: Framing
    content_length: int | None  # the body length when framing is LENGTH, else None
    connection: tuple[bytes, ...]  # the Connection field's options, lower-case


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    pass


# Module aliases for the hot paths: `Framing.NONE` is a 130 ns lookup on 3.11, a
# global is 10 ns.
_NO_BODY, _BY_LENGTH, _CHUNKED, _UNTIL_CLOSE = Framing

END: Final = EndOfMessage()
LAST_CHUNK: Final = b"0\r\n\r\n"

RequestEvent: TypeAlias = RequestHead | Body | EndOfMessage
ResponseEvent: TypeAlias = ResponseHead | Body | EndOfMessage


# A frozen dataclass __init__ calls object.__setattr__ once per field: 2.0 µs for a
# RequestHead here, the largest single cost of parsing a request, 0.5 µs for a
# Body.  Setting the slots through their descriptors builds the same immutable
# objects in 0.7 and 0.2 µs.
_new = object.__new__


def _slot_setters(cls: type) -> list[Callable[[Any, Any], None]]:
    return [cls.__dict__[name].__set__ for name in cls.__dict__["__slots__"]]


[
    _rq_method,
    _rq_target,
    _rq_version,
    _rq_fields,
    _rq_keep,
    _rq_framing,
    _rq_length,
    _rq_expect,
    _rq_upgrade,
    _rq_host,
    _rq_connection,
] = _slot_setters(RequestHead)
[
    _rs_status,
    _rs_reason,
    _rs_version,
    _rs_fields,
    _rs_keep,
    _rs_framing,
    _rs_length,
    _rs_connection,
] = _slot_setters(ResponseHead)
[_set_data] = _slot_setters(Body)


def _body(data: bytes) -> Body:
    body: Body = _new(Body)
    _set_data(body, data)
    return body


def _request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    fields: bytes,
    keep_alive: bool,
    framing: Framing,
    content_length: int | None,
    expect_continue: bool,
    upgrade: bytes | None,
    host: bytes | None,
    connection: tuple[bytes, ...],
) -> RequestHead:
    head: RequestHead = _new(RequestHead)
    _rq_method(head, method)
    _rq_target(head, target)
    _rq_version(head, version)
    _rq_fields(head, fields)
    _rq_keep(head, keep_alive)
    _rq_framing(head, framing)
    _rq_length(head, content_length)
    _rq_expect(head, expect_continue)
    _rq_upgrade(head, upgrade)
    _rq_host(head, host)
    _rq_connection(head, connection)
    return head


def _response_head(
    status: int,
    reason: bytes,
    version: bytes,
    fields: bytes,
    keep_alive: bool,
    framing: Framing,
    content_length: int | None,
    connection: tuple[bytes, ...],
) -> ResponseHead:
    head: ResponseHead = _new(ResponseHead)
    _rs_status(head, status)
    _rs_reason(head, reason)
    _rs_version(head, version)
    _rs_fields(head, fields)
    _rs_keep(head, keep_alive)
    _rs_framing(head, framing)
    _rs_length(head, content_length)
    _rs_connection(head, connection)
    return head


# --------------------------------------------------------------------------- grammar

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
# RFC 9112 §3: exactly one SP each side of the target (llhttp accepts several).
_REQUEST_LINE: Final = re.compile(rb"([%s]+) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])" % _TCHAR)
# RFC 9112 §4.  The reason may be absent (h11 accepts that too); CTLs but HTAB may not.
_STATUS_LINE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_FIELD_LINE: Final = re.compile(rb"[%s]+:[\t\x20-\x7e\x80-\xff]*" % _TCHAR)
# chunk-size [chunk-ext] OWS CRLF.  At most 16 hex digits keeps a size below 2**64
# (h11 allows 20, llhttp any number of leading zeros); extensions are dropped but
# may not hide CTLs; trailing OWS is accepted as h11 does.
_CHUNK_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\t\x20-\x7e\x80-\xff]*)?[ \t]*\r\n")
# uri-host [":" port] characters (RFC 3986 reg-name, IP-literal, IPv4): no space, "/", "@".
_HOST: Final = re.compile(rb"[A-Za-z0-9\-._~%!$&'()*+,;=:\[\]]*")
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")
_METHOD_START: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_STATUS_START: Final = frozenset(b"H")
_VERSIONS: Final = frozenset((b"1.1", b"1.0"))
# The fields framing and the proxy depend on, found in one C scan of a head's field
# block.  A name match needs the LF before it and the colon after it; values hold
# no CR or LF (llhttp checked), so `[^\r]*` is the whole value.  The lookahead on
# the first letter skips most other lines with one class test (15-20 % faster).
_NOTABLE_FIELD: Final = re.compile(
    rb"\n(?=[cehtuCEHTU])(content-length|transfer-encoding|host|connection|expect|upgrade)"
    rb":[ \t]*([^\r]*)",
    re.IGNORECASE,
)
_FRAMING_FIELDS: Final = frozenset((b"content-length", b"transfer-encoding", b"host"))
_MAX_CONTENT_LENGTH: Final = (1 << 63) - 1
_MAX_CHUNK_LINE: Final = 4096  # size and extensions; anything longer is an attack, not a chunk

Fail: TypeAlias = Callable[[str, int], IngressError]


def _client_error(message: str, status: int) -> IngressError:
    return ProtocolError(message, status=status)


def _upstream_error(message: str, status: int) -> IngressError:
    return UpstreamProtocolError(message)  # the client sees 502 whatever the backend got wrong


def _tokens(values: list[bytes]) -> tuple[bytes, ...]:
    """A comma-separated, case-insensitive list header (Connection, Expect)."""
    joined = values[0].lower() if len(values) == 1 else b",".join(values).lower()
    if b"," not in joined:
        return (joined,)  # the usual single token: no split, already stripped
    return tuple([token.strip(b" \t") for token in joined.split(b",")])


def _content_length(values: list[bytes], fail: Fail) -> int:
    # One header of 1*DIGIT.  h11 also takes identical repeats and "5, 5"; llhttp
    # refuses both and so do we: a list is where smuggling starts.
    if len(values) != 1:
        raise fail("more than one Content-Length header", 400)
    value = values[0]
    if not value.isdigit() or len(value) > 19 or int(value) > _MAX_CONTENT_LENGTH:
        raise fail(f"invalid Content-Length {value[:40]!r}", 400)
    return int(value)


def _check_chunked(values: list[bytes], fail: Fail) -> None:
    """Accept exactly one `Transfer-Encoding: chunked` (any case), as h11 does."""
    if len(values) == 1 and values[0].lower() == b"chunked":
        return
    codings = [coding.strip(b" \t").lower() for v in values for coding in v.split(b",")]
    *before, final = codings
    if final == b"chunked" and all(before) and b"chunked" not in before:
        # Well-formed and chunked last, but a coding we do not implement (RFC 9112 §6.1).
        raise fail(f"unsupported Transfer-Encoding {b', '.join(values)[:60]!r}", 501)
    # chunked missing, not last, repeated, or an empty element: the body length
    # cannot be determined (RFC 9112 §6.3 item 4: 400, then close).
    raise fail(f"invalid Transfer-Encoding {b', '.join(values)[:60]!r}", 400)


def _check_trailers(section: bytes, fail: Fail) -> None:
    # Trailer fields follow the header grammar; they are then dropped because the
    # proxy re-frames bodies and forwards no trailers.
    for line in section.split(b"\r\n"):
        if _FIELD_LINE.fullmatch(line) is None:
            raise fail(f"invalid trailer line {line[:60]!r}", 400)
        name = line.partition(b":")[0].lower()
        if name in _FRAMING_FIELDS:
            # RFC 9110 §6.5.1: framing fields never belong in trailers (h11 refuses
            # some of these; refusing all is the stricter, safe side).
            raise fail(f"{name.decode()} in trailers", 400)


# --------------------------------------------------------------------------- llhttp


class _HeadSink:
    """The httptools protocol object: learns how far llhttp got with one head.

    It has no `on_header` on purpose: llhttp checks every field line either way,
    and one regex scan of the checked block (`_NOTABLE_FIELD`) finds the few
    fields the codec needs for a fraction of the cost of a Python call per field.
    """

    __slots__ = ("progress",)

    def __init__(self) -> None:
        self.progress = 0  # 1: end of head seen, 2: message complete (no body)

    def on_headers_complete(self) -> None:
        self.progress = 1

    def on_message_complete(self) -> None:
        # Fires right after the head when llhttp expects no body: it is back at
        # "start of message", so the same llhttp parser can take the next head.
        self.progress = 2


# --------------------------------------------------------------------------- bodies


class _BodyReader(abc.ABC):
    """Consumes body bytes from `buf[pos:]`, appends `Body` events, returns the new pos.

    Fixed-length bodies, the common case, need no reader: `_Framer` counts them
    down itself.
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    @abc.abstractmethod
    def read(self, buf: bytes | bytearray, pos: int, events: list[Any]) -> int:
        """Consume what belongs to the body; set `done` at its end."""

    def ends_at_eof(self) -> bool:
        """True if the peer closing the connection ends this body, False if it cuts it."""
        return False


class _UntilCloseReader(_BodyReader):
    __slots__ = ()

    def read(self, buf: bytes | bytearray, pos: int, events: list[Any]) -> int:
        events.append(_body(bytes(buf[pos:])))
        return len(buf)

    def ends_at_eof(self) -> bool:
        return True


class _Chunk(enum.Enum):
    SIZE = enum.auto()  # expecting a chunk-size line
    DATA = enum.auto()  # inside chunk data
    CRLF = enum.auto()  # expecting the CRLF after chunk data
    TRAILER = enum.auto()  # after the last chunk: trailer fields, then CRLF


_SIZE, _DATA, _CRLF, _TRAILER = _Chunk


class _ChunkedReader(_BodyReader):
    __slots__ = ("_fail", "_left", "_max_trailers", "_phase")

    def __init__(self, fail: Fail, max_trailers: int) -> None:
        super().__init__()
        self._fail = fail
        self._max_trailers = max_trailers
        self._phase = _SIZE
        self._left = 0

    def read(self, buf: bytes | bytearray, pos: int, events: list[Any]) -> int:
        n = len(buf)
        while pos < n and not self.done:
            phase = self._phase
            if phase is _DATA:
                end = min(pos + self._left, n)
                events.append(_body(bytes(buf[pos:end])))
                self._left -= end - pos
                pos = end
                if not self._left:
                    self._phase = _CRLF
            elif phase is _SIZE:
                line_end = self._size_line(buf, pos)
                if line_end < 0:
                    break
                pos = line_end
            elif phase is _CRLF:
                if buf[pos] != 13 or (pos + 1 < n and buf[pos + 1] != 10):
                    raise self._fail("chunk data not followed by CRLF", 400)
                if pos + 1 == n:
                    break  # only the CR so far
                pos += 2
                self._phase = _SIZE
            else:
                section_end = self._trailer(buf, pos)
                if section_end < 0:
                    break
                pos = section_end
        return pos

    def _size_line(self, buf: bytes | bytearray, pos: int) -> int:
        """Consume one chunk-size line: return where it ends, or -1 if incomplete."""
        lf = buf.find(b"\n", pos, pos + _MAX_CHUNK_LINE)
        if lf < 0:
            if len(buf) - pos >= _MAX_CHUNK_LINE:
                raise self._fail("chunk size line too long", 400)
            return -1
        match = _CHUNK_LINE.fullmatch(buf, pos, lf + 1)
        if match is None:
            raise self._fail(f"invalid chunk size line {bytes(buf[pos : lf + 1])[:40]!r}", 400)
        self._left = int(match[1], 16)
        self._phase = _DATA if self._left else _TRAILER
        return lf + 1

    def _trailer(self, buf: bytes | bytearray, pos: int) -> int:
        """Consume the trailer section: return where it ends, or -1 if incomplete."""
        if buf.startswith(b"\r\n", pos):
            self.done = True
            return pos + 2
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if len(buf) - pos > self._max_trailers:
                raise self._fail("trailer section too large", 431)
            if _BARE_LF.search(buf, pos) is not None:
                raise self._fail("bare LF in trailer section", 400)
            return -1
        if end - pos > self._max_trailers:
            raise self._fail("trailer section too large", 431)
        _check_trailers(bytes(buf[pos:end]), self._fail)
        self.done = True
        return end + 4


# --------------------------------------------------------------------------- parsers


class _State(enum.Enum):
    HEAD = enum.auto()  # before or inside a message head
    LENGTH = enum.auto()  # inside a body of `remaining` more bytes
    BODY = enum.auto()  # inside a chunked or until-close body; `body` knows where it ends
    TUNNEL = enum.auto()  # after an upgrade/CONNECT: the bytes belong to the tunnel
    CLOSED = enum.auto()  # no further message may follow on this connection
    BROKEN = enum.auto()  # a protocol error happened


_HEAD, _LENGTH, _BODY, _TUNNEL, _CLOSED, _BROKEN = _State  # hot-path aliases

HeadHandler: TypeAlias = Callable[["_Framer", bytes, int, list[Any]], None]


class _Framer:
    """One direction of one connection: buffering, head boundaries, llhttp, bodies.

    RequestParser and ResponseParser each own one and differ only in the data
    they give it (`head_handler`, error type, limits).  It is one concrete class on
    purpose: when the two parsers shared this code through a base class, CPython's
    per-type attribute caches thrashed as a proxy alternates requests and
    responses, and a request plus its response cost about 10% more to parse.
    """

    __slots__ = (
        "after",
        "body",
        "broken",
        "excess",
        "fail",
        "head_handler",
        "llhttp",
        "llhttp_type",
        "max_headers",
        "max_headers_size",
        "max_line",
        "method",
        "pending",
        "remaining",
        "scan",
        "sink",
        "start_bytes",
        "state",
        "strict_close",
    )

    def __init__(
        self,
        head_handler: HeadHandler,
        llhttp_type: Any,
        fail: Fail,
        start_bytes: frozenset[int],
        strict_close: bool,
        limits: tuple[int, int, int],
    ) -> None:
        # Plain functions, not bound methods: no reference cycles to collect.
        self.head_handler = head_handler
        self.fail = fail
        self.llhttp_type = llhttp_type
        self.llhttp: Any = None  # created for the first head, reused while llhttp allows
        self.sink = _HeadSink()
        self.start_bytes = start_bytes  # what a message may start with
        self.strict_close = strict_close  # bytes after the last message: `excess`, or ignored
        self.max_line, self.max_headers_size, self.max_headers = limits
        self.method = b""  # responses: the method of the request being answered
        self.pending = bytearray()  # unconsumed bytes: partial head or chunk line, tunnel data
        self.scan = 0  # offset into a partial head where the CRLFCRLF search resumes
        self.state = _HEAD
        self.after = _HEAD  # the state once the current message ends
        self.remaining = 0
        self.body: _BodyReader | None = None
        self.broken: IngressError | None = None
        self.excess = False  # bytes arrived after the last message (responses)

    def check_alive(self) -> None:
        if self.broken is not None:
            raise self.fail(f"parser already failed: {self.broken}", self.broken.status)

    def die(self, error: IngressError) -> IngressError:
        self.state = _BROKEN
        self.broken = error
        self.pending.clear()
        return error

    def take_leftover(self) -> bytes:
        if self.state is not _TUNNEL:
            raise RuntimeError("no upgrade happened")
        leftover = bytes(self.pending)
        self.pending.clear()
        return leftover

    def feed(self, data: bytes) -> list[Any]:
        if self.broken is not None:
            self.check_alive()
        try:
            return self._run(data)
        except IngressError as exc:
            self.die(exc)
            raise

    def _run(self, data: bytes) -> list[Any]:
        state = self.state
        if state is _TUNNEL:
            self.pending += data
            return []
        if state is _CLOSED:
            if data:
                self._after_close()
            return []
        buf: bytes | bytearray
        if self.pending:
            self.pending += data
            buf = self.pending
        else:
            buf = data
        events: list[Any] = []
        pos = 0
        n = len(buf)
        while pos < n:
            state = self.state
            if state is _HEAD:
                end = buf.find(b"\r\n\r\n", pos + self.scan)
                if end < 0:
                    self._partial_head(buf, pos)
                    break
                self.scan = 0
                head = bytes(buf[pos : end + 4])
                line_end = head.find(b"\r\n")
                if line_end > self.max_line or end + 2 - pos - line_end > self.max_headers_size:
                    self._head_too_large(line_end)
                self.head_handler(self, head, line_end, events)
                pos = end + 4
            elif state is _LENGTH:
                end = min(pos + self.remaining, n)
                events.append(_body(bytes(buf[pos:end])))
                self.remaining -= end - pos
                pos = end
                if not self.remaining:
                    self.end_message(events)
            elif state is _BODY:
                body = self.body
                assert body is not None
                pos = body.read(buf, pos, events)
                if not body.done:
                    break
                self.end_message(events)
            elif state is _CLOSED:
                self._after_close()
                pos = n
            else:
                break  # TUNNEL: the rest is held for take_leftover()
        # Keep buf[pos:] for the next call.
        if buf is self.pending:
            del self.pending[:pos]
        elif pos < n:
            self.pending = bytearray(memoryview(buf)[pos:])
        return events

    def _after_close(self) -> None:
        # A server ignores requests after "close" (RFC 9112 §9.6); a backend's bytes
        # after its answer are dropped too (RFC 9112 §6.3), but they mark the
        # connection as unusable: see `ResponseParser.excess`.
        self.excess = self.excess or self.strict_close
        self.pending.clear()

    def _partial_head(self, buf: bytes | bytearray, pos: int) -> None:
        """No end of head yet: fail now if waiting for one can only end in an error."""
        if buf[pos] not in self.start_bytes:
            # A leading empty line (h11 refuses it too), or not HTTP at all (TLS).
            raise self.fail(f"invalid start of message {bytes(buf[pos : pos + 16])!r}", 400)
        if _BARE_LF.search(buf, pos + self.scan) is not None:
            raise self.fail("bare LF in message head", 400)  # its "\n\n" never matches
        lf = buf.find(b"\n", pos, pos + self.max_line + 2)
        if lf < 0:
            if len(buf) - pos > self.max_line + 1:
                raise self.fail("start line too long", 414)
        elif len(buf) - lf - 1 > self.max_headers_size:
            raise self.fail("header section too large", 431)
        self.scan = max(0, len(buf) - pos - 3)

    def _head_too_large(self, line_end: int) -> None:
        if line_end > self.max_line:
            raise self.fail("start line too long", 414)
        raise self.fail("header section too large", 431)

    def fields(
        self, head: bytes, line_end: int, version: bytes
    ) -> tuple[bytes, dict[bytes, list[bytes]], Framing, int | None]:
        """Run llhttp over a head whose start line is valid.

        Returns the field block (see `RequestHead.fields`), the values of the
        `_NOTABLE_FIELD` fields by lower-case name, the framing and the length.
        """
        sink = self.sink
        sink.progress = 0
        parser = self.llhttp if self.llhttp is not None else self.llhttp_type(sink)
        self.llhttp = None
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            pass  # CONNECT, Upgrade or 101: llhttp pauses after the head, all it was given
        except httptools.HttpParserInvalidMethodError as exc:
            # The request line already proved the method a token: it is one llhttp
            # does not know (RFC 9110 §9.1: 501).
            raise self.fail("method not implemented", 501) from exc
        except httptools.HttpParserError as exc:
            # llhttp reports its pause after a 101 without Upgrade headers as an error
            # once the message is complete; any other error is a malformed head.
            if sink.progress != 2:
                raise self.fail(f"malformed head: {exc}", 400) from exc
        else:
            if sink.progress == 2:
                self.llhttp = parser
        if not sink.progress:
            raise self.fail("malformed head", 400)  # cannot happen in strict mode
        block = head[line_end:-2]
        # Each field takes at least 4 bytes of the block (CRLF, name, colon): only a
        # long block can hold too many, so short ones skip the count.
        if len(block) > 4 * self.max_headers and block.count(b"\n") - 1 > self.max_headers:
            raise self.fail(f"more than {self.max_headers} header fields", 431)
        found: dict[bytes, list[bytes]] = {}
        for name, value in _NOTABLE_FIELD.findall(block):
            name = name.lower()
            value = value.rstrip(b" \t")  # h11 strips OWS on both sides; so does the scan
            if name in found:
                found[name].append(value)
            else:
                found[name] = [value]
        te = found.get(b"transfer-encoding")
        cl = found.get(b"content-length")
        if te is not None:
            if cl is not None:  # llhttp refuses this too; h11 lets TE win
                raise self.fail("both Content-Length and Transfer-Encoding", 400)
            if version == b"1.0":  # RFC 9112 §6.1: faulty framing
                raise self.fail("Transfer-Encoding in an HTTP/1.0 message", 400)
            _check_chunked(te, self.fail)
            return block, found, _CHUNKED, None
        if cl is not None:
            return block, found, _BY_LENGTH, _content_length(cl, self.fail)
        return block, found, _NO_BODY, None

    def start_body(self, framing: Framing, length: int | None, events: list[Any]) -> None:
        if length:
            self.remaining = length
            self.state = _LENGTH
        elif framing is _CHUNKED:
            self.body = _ChunkedReader(self.fail, self.max_headers_size)
            self.state = _BODY
        elif framing is _UNTIL_CLOSE:
            self.body = _UntilCloseReader()
            self.state = _BODY
        else:
            self.end_message(events)

    def end_message(self, events: list[Any]) -> None:
        events.append(END)
        self.body = None
        self.state = self.after

    def inside_message(self) -> bool:
        state = self.state
        return state is _LENGTH or state is _BODY or (state is _HEAD and bool(self.pending))


def _parse_request_head(framer: _Framer, head: bytes, line_end: int, events: list[Any]) -> None:
    match = _REQUEST_LINE.fullmatch(head, 0, line_end)
    if match is None:
        raise framer.fail(f"malformed request line {head[: min(line_end, 80)]!r}", 400)
    method, target, version = match.groups()
    if version not in _VERSIONS:
        raise framer.fail(f"unsupported HTTP version {version!r}", 505)
    fields, found, framing, length = framer.fields(head, line_end, version)
    hosts = found.get(b"host")
    _check_host(hosts, version, framer.fail)
    connection = _tokens(found[b"connection"]) if b"connection" in found else ()
    upgrade = None
    if version == b"1.1":
        keep_alive = b"close" not in connection
        expect = b"expect" in found and b"100-continue" in _tokens(found[b"expect"])
        if b"upgrade" in found and b"upgrade" in connection:  # RFC 9110 §7.8
            upgrade = b", ".join(found[b"upgrade"]).lower() or None
    else:
        # HTTP/1.0: keep-alive is opt-in; Expect and Upgrade are ignored
        # (RFC 9110 §10.1.1, §7.8), as h11 does.
        keep_alive = b"keep-alive" in connection and b"close" not in connection
        expect = False
    host = hosts[0] if hosts else None
    events.append(
        _request_head(
            method,
            target,
            version,
            fields,
            keep_alive,
            framing,
            length,
            expect,
            upgrade,
            host,
            connection,
        )
    )
    if not keep_alive:
        framer.llhttp = None  # llhttp is in its closed state; no head follows anyway
    if upgrade is not None or method == b"CONNECT":
        framer.after = _TUNNEL
    else:
        framer.after = _HEAD if keep_alive else _CLOSED
    framer.start_body(framing, length, events)


def _check_host(hosts: list[bytes] | None, version: bytes, fail: Fail) -> None:
    # RFC 9112 §3.2: exactly one Host in 1.1, at most one in 1.0, a valid value.
    if hosts is None:
        if version == b"1.1":
            raise fail("missing Host header", 400)
    elif len(hosts) > 1:
        raise fail("more than one Host header", 400)
    elif not _valid_host(hosts[0]):
        raise fail(f"invalid Host header {hosts[0][:60]!r}", 400)


@short_cache(max_length=300, maxsize=1024)  # clients repeat the same few Host values
def _valid_host(value: bytes) -> bool:
    return _HOST.fullmatch(value) is not None


@short_cache(max_length=64, maxsize=256)  # a backend repeats the same few status lines
def _status_line(line: bytes) -> tuple[bytes, int, bytes | None] | str:
    """(version, status, reason) of a valid status line, else what is wrong with it."""
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        return f"malformed status line {line[:80]!r}"
    version, code, reason = match.groups()
    if version not in _VERSIONS:
        return f"unsupported HTTP version {version!r}"
    status = int(code)
    if not 100 <= status <= 599:  # RFC 9110 §15: other values are invalid
        return f"invalid status code {status}"
    return version, status, reason


def _parse_response_head(framer: _Framer, head: bytes, line_end: int, events: list[Any]) -> None:
    parsed = _status_line(head[:line_end])
    if isinstance(parsed, str):
        raise framer.fail(parsed, 502)
    version, status, reason = parsed
    fields, found, framing, length = framer.fields(head, line_end, version)
    method = framer.method
    switching = status == 101 or (method == b"CONNECT" and 200 <= status < 300)
    if status < 200 or switching or status == 204 or status == 304 or method == b"HEAD":
        framing, length = _NO_BODY, None  # RFC 9112 §6.3 items 1 and 2
    elif framing is _NO_BODY:
        framing = _UNTIL_CLOSE
    connection = _tokens(found[b"connection"]) if b"connection" in found else ()
    if version == b"1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
    keep_alive = keep_alive and framing is not _UNTIL_CLOSE and not switching
    if status < 200 or not keep_alive:
        # llhttp may have entered its closed state (an interim `Connection: close`): the
        # next head, if any, needs a fresh llhttp parser.
        framer.llhttp = None
    events.append(
        _response_head(
            status, reason or b"", version, fields, keep_alive, framing, length, connection
        )
    )
    if switching:
        framer.state = _TUNNEL
    elif status >= 200:
        framer.after = _CLOSED
        framer.start_body(framing, length, events)
    # else: an interim response; the next head follows


class RequestParser:
    """Client side: bytes from a downstream connection -> request events.

    Pipelined requests in one buffer yield events for each, in order.  After a
    request that is not keep-alive, later bytes are dropped (RFC 9112 §9.6).

    Upgrade (`Connection: upgrade` + `Upgrade`, HTTP/1.1) and CONNECT: a body the
    request declares is framed as usual (h11's choice; llhttp would hand it to the
    tunnel), then parsing stops after the EndOfMessage: `upgraded` becomes True
    and later bytes are held for `take_upgrade_leftover()`.  If the switch does not
    happen (the backend answers without 101, or the proxy drops `Upgrade: h2c`),
    `resume()` parses the held bytes as HTTP again.
    """

    __slots__ = ("_framer",)

    def __init__(
        self, *, max_line: int = 8192, max_headers_size: int = 32768, max_headers: int = 100
    ) -> None:
        self._framer = _Framer(
            _parse_request_head,
            httptools.HttpRequestParser,
            _client_error,
            _METHOD_START,
            False,
            (max_line, max_headers_size, max_headers),
        )

    def __repr__(self) -> str:
        return (
            f"<RequestParser state={self._framer.state.name} pending={len(self._framer.pending)}>"
        )

    def feed(self, data: bytes) -> list[RequestEvent]:
        """Parse as much of `data` as possible; raise `ProtocolError` on bad input."""
        return self._framer.feed(data)

    def eof(self) -> None:
        """The client half-closed: fine between requests, a `ProtocolError` inside one."""
        framer = self._framer
        framer.check_alive()
        if framer.inside_message():
            raise framer.die(ProtocolError("client closed the connection inside a request"))

    @property
    def upgraded(self) -> bool:
        """True once an upgrade or CONNECT request ended; see `take_upgrade_leftover`."""
        return self._framer.state is _TUNNEL

    def take_upgrade_leftover(self) -> bytes:
        """The bytes received after the upgrade request (they belong to the tunnel)."""
        return self._framer.take_leftover()

    def resume(self) -> list[RequestEvent]:
        """The upgrade did not happen: parse the held-back bytes as HTTP again."""
        data = self._framer.take_leftover()
        self._framer.state = _HEAD
        return self.feed(data)


class ResponseParser:
    """Upstream side: the backend's answers, one per request -> response events.

    One parser per upstream connection: `next_response` readies it for the answer
    to the next request once an answer ended cleanly.  An interim 1xx head is
    emitted alone (no body, no EndOfMessage) and parsing goes on with the next
    head.  A head that switches protocols (101, or 2xx to CONNECT) is also
    emitted alone; then `upgraded` is True and later bytes are held for
    `take_upgrade_leftover()`.  The caller checks that it asked for the switch.
    Bytes after the final EndOfMessage are dropped and set `excess`: nothing is
    pipelined upstream, so the connection that sent them must not be reused.
    """

    __slots__ = ("_framer",)

    def __init__(
        self,
        request_method: bytes,
        *,
        max_line: int = 8192,
        max_headers_size: int = 65536,
        max_headers: int = 256,
    ) -> None:
        self._framer = framer = _Framer(
            _parse_response_head,
            httptools.HttpResponseParser,
            _upstream_error,
            _STATUS_START,
            True,
            (max_line, max_headers_size, max_headers),
        )
        framer.method = request_method

    def next_response(self, request_method: bytes) -> None:
        """Parse the answer to the next request sent on this connection."""
        framer = self._framer
        if framer.state is not _CLOSED or framer.excess or framer.pending:
            # Only a connection whose last answer ended cleanly is ever reused.
            raise RuntimeError(f"previous response not cleanly finished: {self!r}")
        framer.state = framer.after = _HEAD
        framer.method = request_method

    def __repr__(self) -> str:
        return (
            f"<ResponseParser state={self._framer.state.name} pending={len(self._framer.pending)}>"
        )

    def feed(self, data: bytes) -> list[ResponseEvent]:
        """Parse as much of `data` as possible; raise `UpstreamProtocolError` on bad input."""
        return self._framer.feed(data)

    def eof(self) -> list[ResponseEvent]:
        """The backend closed: ends an until-close body; anywhere else in a response, raises."""
        framer = self._framer
        framer.check_alive()
        state = framer.state
        if state is _CLOSED or state is _TUNNEL:
            return []
        if state is _BODY and framer.body is not None and framer.body.ends_at_eof():
            events: list[ResponseEvent] = []
            framer.end_message(events)
            return events
        raise framer.die(UpstreamProtocolError("backend closed the connection inside a response"))

    @property
    def excess(self) -> bool:
        """The backend sent bytes after its complete answer: deliver it, never reuse."""
        return self._framer.excess

    @property
    def upgraded(self) -> bool:
        """True once a 101 (or a 2xx to CONNECT) arrived; see `take_upgrade_leftover`."""
        return self._framer.state is _TUNNEL

    def take_upgrade_leftover(self) -> bytes:
        """The bytes received after the switching head (they belong to the tunnel)."""
        return self._framer.take_leftover()


# --------------------------------------------------------------------------- serializers


def _check_lines(out: bytes, lines: int) -> bytes:
    # Every line built here ends in exactly one CRLF; any other CR or LF came from a
    # name or value and would split the head (header injection).  Two C scans.
    if out.count(b"\n") != lines or out.count(b"\r") != lines:
        raise ValueError("CR or LF inside a start line or header field")
    return out


def serialize_request_head(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> bytes:
    """`method target HTTP/1.1`, the fields in order, the blank line."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    lines = 2
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    parts.append(b"\r\n")
    return _check_lines(b"".join(parts), lines)


def serialize_response_head(
    status: int, reason: bytes, headers: Iterable[tuple[bytes, bytes]], version: bytes = b"1.1"
) -> bytes:
    """`HTTP/<version> <status> <reason>`, the fields in order, the blank line."""
    parts = [b"HTTP/%s %d %s\r\n" % (version, status, reason)]
    lines = 2
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    parts.append(b"\r\n")
    return _check_lines(b"".join(parts), lines)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body.  b"" gives b"": a zero-size chunk would end the body."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)
