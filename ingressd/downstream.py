"""One client connection: parse requests, run their exchanges one at a time, keep alive.

Owns: feeding the request codec, pipelining (later requests wait, in order,
with reading paused), keep-alive, the client timeouts (header, body, idle),
back-pressure flags, the switch to a tunnel, and bad-request answers.  What
happens to a request once its head is known belongs to `proxy.Exchange`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections import deque
from typing import TYPE_CHECKING, cast

from . import http1
from .codec import Body, EndOfMessage, Framing, RequestHead, RequestParser
from .errors import ProtocolError
from .outbox import SEND_AT_ONCE, send
from .proxy import Exchange

if TYPE_CHECKING:
    from .server import ProxyServer

logger = logging.getLogger(__name__)

_NO_BODY, _BY_LENGTH, _CHUNKED, _UNTIL_CLOSE = Framing

Event = RequestHead | Body | EndOfMessage

# Reasons to stop reading from the client; reading resumes when none is left.
_PAUSE_BACKLOG = 1  # a pipelined request waits for the current one
_PAUSE_UPSTREAM = 2  # the backend (or the connect buffer) is full


class Phase(enum.Enum):
    IDLE = "idle"  # between requests: keep-alive timeout
    HEAD = "head"  # part of a request head arrived: header timeout
    BODY = "body"  # request body arriving: body timeout between reads
    WAITING = "waiting"  # request read, response under way
    TUNNEL = "tunnel"
    LINGER = "linger"  # answered and half-closed; discarding the rest of the request
    CLOSED = "closed"


# Enum member lookups cost ~90 ns each on Python 3.11; hot paths use these aliases.
_IDLE, _HEAD, _BODY, _WAITING, _TUNNEL, _LINGER, _CLOSED = Phase


# Lingering close (RFC 9112 §9.6, nginx's lingering_close): after answering a request
# that was not read to its end, read and discard for a while before closing, so the
# client's TCP stack does not throw the answer away on a reset.
_LINGER_IDLE = 2.0
_LINGER_TOTAL = 30.0


# A `BaseProtocol` with `data_received`, not an `asyncio.Protocol`: uvloop hands any
# `Protocol` subclass its bytes unbuffered, and `TLSClientConnection` must be buffered.
class ClientConnection(asyncio.BaseProtocol):
    __slots__ = (
        "__weakref__",
        "_backlog",
        "_dispatching",
        "_linger_until",
        "_out",
        "_paused",
        "_skip_end",
        "bytes_written",
        "client_ip",
        "closing",
        "deadline",
        "exchange",
        "forwarded_lines",
        "handshake",
        "listener",
        "loop",
        "parser",
        "phase",
        "server",
        "transport",
        "trusted",
        "write_paused",
    )

    def __init__(self, server: ProxyServer, listener: http1.Listener) -> None:
        self.server = server
        self.listener = listener
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.trusted: tuple[http1.Network, ...] | None = None
        self.forwarded_lines = b""
        self.handshake: weakref.ref[ClientConnection] | None = None  # set for TLS listeners
        settings = server.settings
        self.parser = RequestParser(
            max_line=settings.max_request_line, max_headers_size=settings.max_header_bytes
        )
        self.phase = _IDLE
        self.exchange: Exchange | None = None
        self.deadline = server.wheel.deadline(self._timed_out)
        self.closing = False
        self.write_paused = False
        self._paused = 0
        self._backlog: deque[Event] = deque()
        self._skip_end = False
        self._dispatching = False
        self._out: list[bytes] = []  # held until the loop iteration ends (outbox.py)
        self.bytes_written = 0
        self._linger_until = 0.0

    def __repr__(self) -> str:
        return f"<ClientConnection {self.client_ip} {self.phase.value}>"

    # --- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        networks = self.server.settings.trusted_proxies
        self.trusted = networks if http1.is_trusted(self.client_ip, networks) else None
        self.forwarded_lines = http1.fields_bytes(
            http1.connection_forwarded(self.client_ip, self.listener)
        )
        if not self.server.connection_opened(self):
            # Over --max-connections (or stopping): say so and close, like a full queue.
            self.phase = _CLOSED
            self.closing = True
            self.transport.write(http1.simple_response(503, keep_alive=False))
            self.transport.close()
            return

        self.deadline.start(self.server.settings.keepalive_timeout)

    def data_received(self, data: bytes) -> None:
        if self.phase is _LINGER:
            if self.loop.time() < self._linger_until:
                self.deadline.start(_LINGER_IDLE)
            return
        if self.phase is _TUNNEL:
            assert self.exchange is not None
            self.exchange.tunnel_from_client(data)
            return
        if self.closing and self.exchange is None:
            return
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self._bad_request(exc)
            return
        phase = self.phase
        if phase is _IDLE:
            if not events:
                # The first bytes of a request head: its timeout starts now.  A complete
                # head goes straight on; its request sets the timer it needs.
                self.phase = _HEAD
                self.deadline.start(self.server.settings.client_header_timeout)
                return
        elif phase is _BODY:
            self.deadline.start(self.server.settings.client_body_timeout)
        self._dispatch(events)

    def eof_received(self) -> bool:
        # Returning False closes the transport: what an answer left held goes first.
        self.flush_output()
        if self.phase is _LINGER:
            return False
        if self.phase is _TUNNEL and self.exchange is not None:
            self.exchange.tunnel_client_eof()
            return True
        if self.phase is _WAITING and not self._backlog:
            # A half-close after a complete request: answer it, then close.
            self.closing = True
            return True
        if self.phase in (_HEAD, _BODY):
            logger.info("client %s closed in the middle of a request", self.client_ip)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = _CLOSED
        self.deadline.close()
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.client_lost()
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.exchange is not None:
            self.exchange.client_paused()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.exchange is not None:
            self.exchange.client_resumed()

    # --- requests --------------------------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        backlog = self._backlog
        if backlog:
            backlog.extend(events)
            return
        self._dispatching = True
        try:
            for index, event in enumerate(events):
                if self._skip_end and type(event) is EndOfMessage:
                    self._skip_end = False
                    continue
                if self.phase in (_WAITING, _TUNNEL, _CLOSED) or self.closing:
                    if self.phase is _WAITING and not self.closing:
                        backlog.extend(events[index:])
                        self._pause(_PAUSE_BACKLOG)
                    return
                self._handle(event)
        finally:
            self._dispatching = False
        if self.exchange is None and backlog and self.phase is _IDLE:
            self._replay_backlog()

    def _handle(self, event: Event) -> None:
        kind = type(event)
        if kind is RequestHead:
            self._begin(cast(RequestHead, event))
            return
        exchange = self.exchange
        if kind is Body:
            if exchange is not None:
                exchange.request_body(cast(Body, event).data)
        else:
            self.phase = _WAITING
            self.deadline.stop()
            if exchange is not None:
                exchange.request_end()

    def _begin(self, head: RequestHead) -> None:
        if head.method == b"CONNECT":
            self._bad_request(ProtocolError("CONNECT is not supported", status=405))
            return
        bodyless = head.framing is _NO_BODY
        self._skip_end = bodyless
        if bodyless:
            self.phase = _WAITING
            if self.write_paused:  # still not reading earlier answers: the send timeout runs
                self.deadline.start(self.server.settings.client_send_timeout)
            else:
                self.deadline.stop()
        else:
            self.phase = _BODY
            self.deadline.start(self.server.settings.client_body_timeout)
        self.exchange = exchange = Exchange(self, head, self.server.runtime)
        exchange.start()

    def exchange_done(self, exchange: Exchange, keep_alive: bool) -> None:
        """The response is written; go on with the next request or close."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        self._resume(_PAUSE_UPSTREAM)  # a backend pause must not outlive its exchange
        if self.phase is _CLOSED:
            return
        if not keep_alive or self.closing or self.phase is _TUNNEL:
            self.close()
            return
        self.phase = _IDLE
        self.deadline.start(self.server.settings.keepalive_timeout)
        if self.parser.upgraded:
            # An upgrade that did not happen (refused, or h2c stripped): the bytes
            # held back after that request are HTTP again.
            try:
                self._backlog.extend(self.parser.resume())
            except ProtocolError as exc:
                self._bad_request(exc)
                return
        if self._dispatching:
            return  # the dispatch loop in progress goes on, then replays the backlog
        self._replay_backlog()

    def _replay_backlog(self) -> None:
        backlog = self._backlog
        if not backlog:
            return
        events = list(backlog)
        backlog.clear()
        self._resume(_PAUSE_BACKLOG)
        self._dispatch(events)

    def _bad_request(self, exc: ProtocolError) -> None:
        """Answer a request ingressd will not forward, then close: its framing is in doubt."""
        logger.info("client %s: %s (%d)", self.client_ip, exc, exc.status)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            started = exchange.response_started
            exchange.abort()
            if started:
                self.close()
                return
        self._reject(exc.status)

    def _reject(self, status: int) -> None:
        """Answer with ingressd's own error, count and log it, then close."""
        answer = http1.simple_response(status, keep_alive=False)
        self.write(answer)
        self.server.request_rejected(self, status, len(answer))
        self.close()

    # --- used by the exchange ---------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send `data` with the rest of this loop iteration's output (see outbox.py)."""
        self.bytes_written += len(data)
        out = self._out
        if not out:
            self.server.outbox.hold(self)
        out.append(data)
        if len(data) >= SEND_AT_ONCE:
            self.flush_output()

    def flush_output(self) -> None:
        if self._out:
            out, self._out = self._out, []
            send(self.transport, out)

    def https_by_proxy(self, head: RequestHead) -> bool:
        """A trusted proxy in front terminated TLS (no http→https redirect then)."""
        if self.trusted is None:
            return False  # before the fields are split: most connections stop here
        return any(n == b"x-forwarded-proto" and v.lower() == b"https" for n, v in head.headers)

    def pause_for_upstream(self) -> None:
        self._pause(_PAUSE_UPSTREAM)
        if self.exchange is not None and self.exchange.upstream is not None:
            self.deadline.start(self.exchange.upstream_send_stalled())
        else:
            self.deadline.stop()  # still connecting: the connect timeout runs

    def resume_for_upstream(self) -> None:
        if self._paused & _PAUSE_UPSTREAM:
            self._resume(_PAUSE_UPSTREAM)
            if self.phase is _BODY:
                self.deadline.start(self.server.settings.client_body_timeout)

    def start_tunnel(self) -> None:
        self.phase = _TUNNEL
        leftover = self.parser.take_upgrade_leftover()
        self._backlog.clear()
        self._resume(_PAUSE_BACKLOG | _PAUSE_UPSTREAM)
        if leftover and self.exchange is not None:
            self.exchange.tunnel_from_client(leftover)

    def close(self) -> None:
        """Close after the writes are flushed; linger if the request was not read to its end."""
        self.closing = True
        self.flush_output()
        transport = self.transport
        if transport is None or transport.is_closing() or self.phase is _LINGER:
            return
        if self.phase in (_HEAD, _BODY) and transport.can_write_eof():
            self.phase = _LINGER
            self._linger_until = self.loop.time() + _LINGER_TOTAL
            transport.write_eof()
            self._paused = 0
            transport.resume_reading()
            self.deadline.start(_LINGER_IDLE)
            return
        transport.close()
        if transport.get_write_buffer_size():
            self.deadline.start(self.server.settings.client_send_timeout)

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else after the current response."""
        self.closing = True
        if self.exchange is None and self.phase in (_IDLE, _HEAD):
            self.close()

    # --- internals ------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def _timed_out(self) -> None:
        phase = self.phase
        transport = self.transport
        if self.closing and transport is not None and transport.is_closing():
            transport.abort()  # closed, but the client never read what was left to send
            return
        if phase is _LINGER:
            if self.transport is not None:
                self.transport.abort()
        elif phase is _IDLE:
            self.close()
        elif self.exchange is not None and (phase is not _BODY or self._paused & _PAUSE_UPSTREAM):
            self.exchange.timed_out(sending=phase is _BODY)
        elif phase in (_HEAD, _BODY):
            logger.info("client %s: timed out reading the request %s", self.client_ip, phase.value)
            exchange, self.exchange = self.exchange, None
            if exchange is not None:
                exchange.abort()
                if exchange.response_started:
                    self.close()
                    return
            self._reject(408)


# One read buffer for every TLS connection of the process: uvloop's TLS layer
# decrypts into it and `buffer_updated` copies the bytes out before anything else
# can read, so sharing it is safe.  As large as uvloop's own reads (256 KiB): a
# smaller one splits a burst of records over loop iterations.
_TLS_READ_BUFFER = memoryview(bytearray(256 * 1024))


class TLSClientConnection(ClientConnection, asyncio.BufferedProtocol):
    """A client connection behind TLS: uvloop hands the decrypted bytes over in a buffer.

    As a plain `Protocol`, uvloop's TLS layer reads each record with
    `SSLObject.read(256 KiB)`: a 256 KiB bytes object for every read, above glibc's
    mmap threshold, so an mmap, an mremap and a munmap per read, plus page faults.
    """

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _TLS_READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_TLS_READ_BUFFER[:nbytes]))
