"""Forward one request: route → pick → pool → stream both bodies → release.

Owns: the `Exchange` of one request with one backend (or ingressd's own
answer), retries on connect failure, the response's framing towards the
client, upstream back-pressure, backend timeouts and the switch to a byte
tunnel after a 101.  The client side (parsing, keep-alive, pipelining,
client timeouts) belongs to `downstream.ClientConnection`; they talk
through the small methods below.  Every failure becomes an `IngressError`
and is answered in `_fail`, the one place that maps errors to statuses.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from . import http1
from .codec import (
    LAST_CHUNK,
    Body,
    EndOfMessage,
    Framing,
    RequestHead,
    ResponseHead,
    ResponseParser,
    encode_chunk,
    serialize_response_head,
)
from .errors import (
    IngressError,
    NoEndpoint,
    ProtocolError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .policy import Answer, Pending, Request
from .pool import EndpointPool, UpstreamConnection
from .routes import NO_ROUTE_LABELS, Backend, Endpoint, Route, normalize_path

if TYPE_CHECKING:
    from .downstream import ClientConnection
    from .runtime import Runtime

logger = logging.getLogger(__name__)

_NO_BODY, _BY_LENGTH, _CHUNKED, _UNTIL_CLOSE = Framing

_PENDING_LIMIT = 64 * 1024  # request bytes buffered while connecting
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_WAITING_CHECKS = 256  # password checks queued for the worker threads (see server.py)
_NO_FIELDS: list[tuple[bytes, bytes]] = []  # shared, never appended to (see _request)


class Phase(enum.Enum):
    CONNECTING = "connecting"
    WAITING = "waiting"  # request (being) sent, no final response head yet
    RESPONDING = "responding"  # response head sent to the client, body streaming
    TUNNEL = "tunnel"
    DONE = "done"


# Enum member lookups cost ~90 ns each on Python 3.11; hot paths use these aliases.
_CONNECTING, _WAITING, _RESPONDING, _TUNNEL, _DONE = Phase


class Exchange:
    __slots__ = (
        "backend",
        "body_bytes_sent",
        "body_received",
        "body_sent",
        "client",
        "client_chunked",
        "endpoint",
        "finish_hooks",
        "head",
        "head_bytes",
        "head_sent",
        "keep_client",
        "labels",
        "pending",
        "pending_size",
        "phase",
        "request_complete",
        "request_id",
        "response_bytes",
        "response_fields",
        "response_parser",
        "reused",
        "route",
        "runtime",
        "sent_mark",
        "started",
        "status",
        "tried",
        "upstream",
        "upstream_chunked",
        "upstream_reusable",
        "upstream_started",
        "upstream_status",
    )

    def __init__(self, client: ClientConnection, head: RequestHead, runtime: Runtime) -> None:
        self.client = client
        self.head = head
        self.runtime = runtime
        self.request_id = http1.request_id_of(head.value(b"x-request-id"))
        self.route: Route | None = None
        self.backend: Backend | None = None  # the route's, or its canary's
        self.labels = NO_ROUTE_LABELS
        self.finish_hooks: list[Callable[[], None]] | None = None
        self.response_fields: list[tuple[bytes, bytes]] = _NO_FIELDS
        self.phase = _CONNECTING
        self.upstream: UpstreamConnection | None = None
        self.endpoint: Endpoint | None = None
        self.tried: tuple[Endpoint, ...] = ()
        self.head_bytes = b""
        self.head_sent = False
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.body_received = 0
        self.body_bytes_sent = 0
        self.body_sent = 0
        self.request_complete = head.framing is _NO_BODY
        self.upstream_chunked = head.framing is _CHUNKED
        self.client_chunked = False
        self.keep_client = head.keep_alive
        self.response_parser: ResponseParser | None = None
        self.started = client.loop.time()
        self.sent_mark = client.bytes_written
        self.status = 0
        self.upstream_status = 0
        self.upstream_started = 0.0
        self.response_bytes = 0
        self.reused = False
        self.upstream_reusable = False

    def __repr__(self) -> str:
        return f"<Exchange {self.head.method.decode()} {self.head.target!r} {self.phase.value}>"

    @property
    def response_started(self) -> bool:
        return self.phase in (_RESPONDING, _TUNNEL)

    # --- start ---------------------------------------------------------------

    def start(self) -> None:
        """Route the request; answer it locally or start connecting."""
        try:
            self._start()
        except IngressError as exc:
            self._fail(exc)

    def _start(self) -> None:
        head = self.head
        target = http1.split_target(head.method, head.target, head.host or b"")
        path = normalize_path(target.path)
        route = self.runtime.table.match(target.host, path)
        if route is None:
            self._answer(404)
            return
        self.route = route
        self.labels = route.labels
        if route.steps and self._run_steps(route, self._request(target, path), 0):
            return
        self._forward(route, target, path)

    def _request(self, target: http1.Target, path: str) -> Request:
        """What the route's steps may read of this request."""
        client = self.client
        head = self.head
        secure = client.listener.scheme != b"http" or client.https_by_proxy(head)
        port = client.server.settings.https_redirect_port or client.server.https_port
        address = client.client_ip
        if client.trusted is not None:
            address = http1.client_address(head.headers, address, client.trusted)
        hooks = self.finish_hooks = []
        fields = self.response_fields = []
        return Request(head, target, path, secure, port, address, self.started,
                       client.server.limits, hooks, fields)  # fmt: skip

    def _run_steps(self, route: Route, request: Request, first: int) -> bool:
        """Run the route's request steps from `first`: True when one answered, or will
        (a `Pending` verdict is worked out in a thread, then the steps go on)."""
        steps = route.steps
        for index in range(first, len(steps)):
            verdict = steps[index](request)
            if verdict is None:
                continue
            if isinstance(verdict, Pending):
                self.client.server.spawn(self._await_step(verdict, route, request, index + 1))
                return True
            self._answer(verdict.status, extra=verdict.headers, body=verdict.body)
            return True
        return False

    async def _await_step(
        self, pending: Pending, route: Route, request: Request, then: int
    ) -> None:
        server = self.client.server
        if server.checks_waiting >= MAX_WAITING_CHECKS:
            logger.warning("%d checks waiting: answering 503", server.checks_waiting)
            answer: Answer | None = Answer(503)
        else:
            server.checks_waiting += 1
            try:
                answer = await self.client.loop.run_in_executor(server.checks, pending.work)
            except Exception:
                logger.exception("request %s: a request step failed", self.request_id.decode())
                answer = Answer(500)
            finally:
                server.checks_waiting -= 1
        if self.phase is not _CONNECTING:
            return  # the client went away meanwhile
        try:
            if answer is not None:
                self._answer(answer.status, extra=answer.headers, body=answer.body)
            elif not self._run_steps(route, request, then):
                self._forward(route, request.target, request.path)
        except IngressError as exc:
            self._fail(exc)

    def _forward(self, route: Route, target: http1.Target, path: str) -> None:
        """The request goes to a backend: body limit, backend choice, rewrite, connect."""
        head = self.head
        # The limit is the engine's: it also ends a body that streams past it.
        limit = route.policy.body_limit
        if limit and head.content_length is not None and head.content_length > limit:
            self._answer(413, close=True)
            return
        backend = route.backend
        canary = route.canary
        if canary is not None and canary.rule.serves(head):
            backend = canary.backend
            self.labels = canary.labels
        self.backend = backend
        if not backend.endpoints:
            raise NoEndpoint(f"{backend.key}: {backend.problem}")
        if route.rewrite is not None:
            rewritten = route.rewrite.apply(path, target.forward_target)
            if not rewritten:
                raise IngressError(f"rewrite-target {route.rewrite.target}: an empty URI")
            target = http1.Target(target.host, target.path, rewritten, target.host_header)
        self.head_bytes = self._upstream_head(route, target)
        if head.expect_continue and not self.request_complete:
            self.client.write(_CONTINUE)
        self._connect_next()

    def _upstream_head(self, route: Route, target: http1.Target) -> bytes:
        """The request head for the backend, built as bytes in one pass over the fields."""
        head = self.head
        connection = head.connection
        if route.replaced_fields:  # removed like the fields Connection names
            connection = (*connection, *route.replaced_fields)
        client = self.client
        host = target.host_header
        if client.trusted is None:
            # The same for every request of the connection, but for the Host.
            forwarded = client.forwarded_lines + b"x-forwarded-host: " + host + b"\r\n"
        else:
            forwarded = http1.fields_bytes(
                http1.forwarded_headers(
                    head.headers, client.client_ip, client.listener, host, client.trusted
                )
            )
        parts = [
            head.method, b" ", target.forward_target, b" HTTP/1.1\r\nhost: ",
            route.upstream_host or host,
            http1.upstream_fields(head.fields, connection), forwarded, route.upstream_lines,
            b"x-request-id: ", self.request_id, b"\r\n",
        ]  # fmt: skip
        if route.format_field:  # a default-backend learns what the client accepts
            parts += (b"x-format: ", head.value(b"accept") or b"", b"\r\n")
        if head.framing is _BY_LENGTH:
            parts.append(b"content-length: %d\r\n" % (head.content_length or 0))
        elif head.framing is _CHUNKED:
            parts.append(b"transfer-encoding: chunked\r\n")
        if head.upgrade is not None and head.upgrade != b"h2c":
            # h2c is never tunnelled: ingressd speaks HTTP/1.1 to backends (SPEC §4).
            parts += (b"connection: upgrade\r\nupgrade: ", head.upgrade, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    # --- connecting ----------------------------------------------------------

    def _connect_next(self) -> None:
        backend = self.backend
        assert backend is not None
        server = self.client.server
        upstreams = server.upstreams
        now = upstreams.loop.time()
        endpoint = self.runtime.balancer(backend).pick(upstreams.health, now, self.tried)
        if endpoint is None:
            raise UpstreamUnavailable(f"{backend.key}: no endpoint left to try")
        if self.endpoint is not None:  # a retry: count it against the endpoint that failed
            server.stats.bump(server.stats.retries, str(self.endpoint))
        self.endpoint = endpoint
        self.tried += (endpoint,)
        pool = upstreams.pool(endpoint)
        connection = pool.acquire()
        if connection is not None:
            self._attach(connection)
        else:
            server.spawn(self._connect(pool))

    async def _connect(self, pool: EndpointPool) -> None:
        assert self.route is not None
        try:
            connection = await pool.connect(self.route.policy.connect_timeout)
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            self.client.server.endpoint_failed(pool.endpoint)
            logger.warning("%s (request %s)", exc, self.request_id.decode())
            self._retry_or_fail(exc)
            return
        if self.phase is not _CONNECTING:  # the client went away meanwhile
            pool.release(connection)
            return
        self._attach(connection)

    def _retry_or_fail(self, exc: IngressError) -> None:
        if self.phase is not _CONNECTING:
            return
        assert self.route is not None
        tries = self.route.policy.next_upstream_tries
        if (tries == 0 or len(self.tried) < tries) and self.body_sent == 0:
            try:
                self._connect_next()
            except IngressError:
                self._fail(exc)  # no endpoint left: the connect error is the answer
            return
        self._fail(exc)

    def _attach(self, connection: UpstreamConnection) -> None:
        assert self.route is not None
        self.upstream = connection
        connection.owner = self
        self.reused = connection.uses > 1
        self.phase = _WAITING
        self.upstream_started = self.client.loop.time()
        self.head_sent = False
        parser = connection.response_parser
        if parser is None:
            parser = connection.response_parser = ResponseParser(self.head.method)
        else:
            parser.next_response(self.head.method)
        self.response_parser = parser
        # Resume first: a big pending body can pause the client again as it is sent.
        self.client.resume_for_upstream()
        self._flush_upstream()
        if self.client.write_paused and connection.transport is not None:
            # The client is not reading: do not read the backend faster than it.
            connection.transport.pause_reading()
        if self.request_complete:
            self._touch()

    # --- request bytes towards the backend ---------------------------------------

    def _to_upstream(self, data: bytes) -> None:
        """Request bytes go to the upstream connection now, or once it is connected."""
        self.pending.append(data)
        self.pending_size += len(data)
        if self.upstream is not None:
            self._flush_upstream()
        elif self.pending_size > _PENDING_LIMIT:
            self.client.pause_for_upstream()

    def _flush_upstream(self) -> None:
        """Write the head (once) and the pending body bytes in one call."""
        upstream = self.upstream
        if upstream is None:
            return
        pending = self.pending
        if not self.head_sent:
            self.head_sent = True
            pending.insert(0, self.head_bytes)
        elif not pending:
            return
        upstream.write(b"".join(pending) if len(pending) > 1 else pending[0])
        self.body_sent += self.pending_size
        self.pending = []
        self.pending_size = 0

    def request_body(self, data: bytes) -> None:
        assert self.route is not None
        self.body_received += len(data)
        limit = self.route.policy.body_limit
        if limit and self.body_received > limit:
            self._fail(ProtocolError("request body over the limit", status=413))
            return
        if self.phase in (_CONNECTING, _WAITING, _RESPONDING):
            self._to_upstream(encode_chunk(data) if self.upstream_chunked else data)

    def request_end(self) -> None:
        self.request_complete = True
        if self.upstream_chunked and self.phase in (
            _CONNECTING,
            _WAITING,
            _RESPONDING,
        ):
            self._to_upstream(LAST_CHUNK)
        if self.upstream is not None:
            self._touch()

    def upstream_send_stalled(self) -> float:
        """The send timeout to run while the backend accepts no more request bytes."""
        assert self.route is not None
        return self.route.policy.send_timeout

    # --- the response ---------------------------------------------------------

    def upstream_data(self, data: bytes) -> None:
        if self.phase is _TUNNEL:
            self.client.write(data)
            self._touch()
            return
        parser = self.response_parser
        assert parser is not None
        self.response_bytes += len(data)
        try:
            events = parser.feed(data)
        except UpstreamProtocolError as exc:
            self._fail(exc)
            return
        for event in events:
            kind = type(event)
            if kind is Body:
                self._response_body(cast(Body, event).data)
            elif kind is ResponseHead:
                if self._response_head(cast(ResponseHead, event)):
                    break  # now a tunnel: the rest of the bytes belong to it
            elif kind is EndOfMessage:
                self._response_end()
                return  # the exchange is over: the client connection's timer is its own
        if self.phase is not _DONE:
            self._touch()  # the backend is alive: its read timeout starts again

    def _touch(self) -> None:
        # One deadline per client connection; here it is the backend read timeout.
        if self.route is not None and not self.client.write_paused:
            self.client.deadline.start(self.route.policy.read_timeout)

    def _response_head(self, response: ResponseHead) -> bool:
        """Forward a response head; True when it switched the connection to a tunnel."""
        status = response.status
        if status < 200:
            self._interim(response)
            return self.phase is _TUNNEL
        head = self.head
        client = self.client
        self.upstream_reusable = response.keep_alive and response.framing is not _UNTIL_CLOSE
        keep = self.keep_client and not client.closing
        framing = response.framing
        connection = response.connection
        added = self.response_fields
        if added:  # ingressd's (CORS) fields replace the backend's of the same names
            connection = (*connection, *(name.lower() for name, _ in added))
        parts = [
            b"HTTP/1.1 %d %s" % (status, response.reason),
            http1.downstream_fields(response.fields, connection),
            b"x-request-id: ", self.request_id, b"\r\n",
        ]  # fmt: skip
        if added:
            parts.append(http1.fields_bytes(added))
        if framing is _CHUNKED or framing is _UNTIL_CLOSE:
            if head.version == b"1.1":
                self.client_chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                keep = False  # an HTTP/1.0 client learns the end from the close
        elif head.method == b"HEAD" and response.value(b"transfer-encoding") is not None:
            parts.append(b"transfer-encoding: chunked\r\n")  # what a GET would have got
        self.keep_client = keep
        if head.version == b"1.0":
            parts.append(
                b"connection: keep-alive\r\n\r\n" if keep else b"connection: close\r\n\r\n"
            )
        else:
            parts.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
        self.phase = _RESPONDING
        self.status = self.upstream_status = status
        client.write(b"".join(parts))
        return False

    def _interim(self, response: ResponseHead) -> None:
        if response.status == 101:
            if self.head.upgrade in (None, b"h2c"):
                self._fail(UpstreamProtocolError("101 Switching Protocols without an Upgrade"))
                return
            self._start_tunnel(response)
        elif response.status != 100 and self.head.version == b"1.1":
            # 100 Continue was ingressd's to give; other 1xx (103 Early Hints) pass through.
            headers = http1.end_to_end(response.headers)
            self.client.write(serialize_response_head(response.status, response.reason, headers))

    def _response_body(self, data: bytes) -> None:
        self.body_bytes_sent += len(data)
        if self.client_chunked:
            self.client.write(encode_chunk(data))
        else:
            self.client.write(data)

    def _response_end(self) -> None:
        if self.client_chunked:
            self.client.write(LAST_CHUNK)
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            parser = self.response_parser
            clean = self.request_complete and self.upstream_reusable
            # Request bytes still queued (the backend answered early) or bytes after
            # its answer: that connection's state is unknown, never reuse it.
            if (
                clean
                and not (parser and parser.excess)
                and upstream.transport is not None
                and not upstream.has_unsent
            ):
                upstream.pool.release(upstream)
            else:
                upstream.close()
        self._finish(self.keep_client and self.request_complete)

    # --- tunnel (after 101) ----------------------------------------------------

    def _start_tunnel(self, response: ResponseHead) -> None:
        assert self.response_parser is not None and self.upstream is not None
        headers = http1.end_to_end(response.headers)
        upgrade = next(
            (v for n, v in response.headers if n == b"upgrade"), self.head.upgrade or b""
        )
        headers += [
            (b"connection", b"upgrade"),
            (b"upgrade", upgrade),
            (b"x-request-id", self.request_id),
        ]
        self.phase = _TUNNEL
        self.status = self.upstream_status = 101
        self.client.write(serialize_response_head(101, response.reason, headers))
        leftover = self.response_parser.take_upgrade_leftover()
        if leftover:
            self.client.write(leftover)
        self.client.start_tunnel()

    def tunnel_from_client(self, data: bytes) -> None:
        if self.upstream is not None:
            self.upstream.write(data)
            self._touch()

    def tunnel_client_eof(self) -> None:
        if self.upstream is not None:
            self.upstream.write_eof()

    # --- events from the upstream connection ----------------------------------

    def upstream_lost(self) -> None:
        """The backend closed (or the connection broke)."""
        self.upstream = None
        if self.phase is _TUNNEL:
            self._finish(False)
            return
        if self.phase is _DONE:
            return
        parser = self.response_parser
        assert parser is not None
        try:
            events = parser.eof()
        except UpstreamProtocolError as exc:
            if self._retry_stale():
                return
            self._fail(exc)
            return
        for event in events:
            if type(event) is EndOfMessage:
                self._response_end()

    def _retry_stale(self) -> bool:
        """A reused keep-alive connection closed by the backend as we sent: once more, fresh.

        Only when nothing came back and no body byte was sent, so the backend
        cannot have acted on the request (RFC 9110 §9.2.2 retry rule).
        """
        if not self.reused or self.response_bytes or self.body_sent or not self.request_complete:
            return False
        assert self.endpoint is not None
        self.phase = _CONNECTING
        self.response_parser = None
        self.reused = False
        self.head_sent = False
        self.client.server.spawn(self._connect(self.client.server.upstreams.pool(self.endpoint)))
        return True

    def upstream_paused(self) -> None:
        self.client.pause_for_upstream()

    def upstream_resumed(self) -> None:
        self.client.resume_for_upstream()

    # --- events from the client connection -------------------------------------

    def client_paused(self) -> None:
        """The client stopped reading: stop reading the backend; the send timeout runs."""
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()
        self.client.deadline.start(self.client.server.settings.client_send_timeout)

    def client_resumed(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()
        self._touch()

    def client_lost(self) -> None:
        """The client went away: nothing more can be delivered."""
        if self.phase is _DONE:
            return
        self.phase = _DONE
        self._close_upstream()
        self._run_finish_hooks()

    def abort(self) -> None:
        """The client connection ends the exchange (client timeout, protocol error)."""
        self.client_lost()

    # --- endings --------------------------------------------------------------

    def timed_out(self, *, sending: bool) -> None:
        """The client connection's deadline expired while this exchange owned it."""
        if self.client.write_paused:
            logger.info("client %s stopped reading the response; closing", self.client.client_ip)
            self._fail(UpstreamTimeout("client send timeout"))
        elif self.phase is _TUNNEL:
            self._finish(False)
        elif sending:
            self._fail(UpstreamTimeout(f"backend {self.endpoint} stopped reading the request"))
        else:
            self._fail(UpstreamTimeout(f"backend {self.endpoint} did not answer in time"))

    def _fail(self, exc: IngressError) -> None:
        """The one place where a failed exchange becomes a status (or a cut connection)."""
        if self.phase is _DONE:
            return
        self._close_upstream()
        if self.phase in (_CONNECTING, _WAITING):
            if exc.status >= 500:
                logger.warning("%s %s: %s → %d", self.head.method.decode(),
                               self.head.target.decode("latin-1"), exc, exc.status)  # fmt: skip
            self._answer(
                exc.status, close=exc.status in (400, 408, 413) or not self.request_complete
            )
        else:
            logger.warning(
                "%s %s: %s after the response started; closing the client connection",
                self.head.method.decode(),
                self.head.target.decode("latin-1"),
                exc,
            )
            self._finish(False)

    def _answer(
        self,
        status: int,
        *,
        close: bool = False,
        extra: http1.Headers = (),
        body: bytes | None = None,
    ) -> None:
        client = self.client
        keep = not close and self.keep_client and self.request_complete and not client.closing
        self.status = status
        if body is None:
            body = http1.status_body(status)
        if self.response_fields:
            extra = (*extra, *self.response_fields)
        if self.head.method != b"HEAD" and status != 204:
            self.body_bytes_sent = len(body)
        client.write(
            http1.simple_response(
                status,
                keep_alive=keep,
                request_id=self.request_id,
                extra=extra,
                head_only=self.head.method == b"HEAD",
                body=body,
            )
        )
        self._finish(keep)

    def _run_finish_hooks(self) -> None:
        """What the steps asked to undo at the end (a request in progress released)."""
        hooks, self.finish_hooks = self.finish_hooks, None
        if hooks:
            for hook in hooks:
                hook()

    def _close_upstream(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.close()

    def _finish(self, keep_client: bool) -> None:
        if self.phase is _DONE:
            return
        self.phase = _DONE
        self._close_upstream()
        if self.finish_hooks:
            self._run_finish_hooks()
        self.client.server.exchange_finished(self)
        self.client.exchange_done(self, keep_client)
