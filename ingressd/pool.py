"""Upstream connections and their per-endpoint keep-alive pools.

Owns: the `UpstreamConnection` protocol (a thin relay to whoever owns it for
the current exchange), LIFO reuse of idle connections (at most 320 per
endpoint, closed after 60 s idle), retiring the pools of endpoints that left
the configuration, and passive health.  Decide, then do I/O: pool lists are
changed under no await.  A connection the backend closed, or that ended an
exchange badly, is never handed out again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
from collections import deque
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Protocol, cast

from .balancer import PassiveHealth
from .errors import UpstreamTimeout, UpstreamUnavailable
from .outbox import SEND_AT_ONCE, Outbox, send
from .routes import Endpoint
from .tls import upstream_context

if TYPE_CHECKING:
    from .codec import ResponseParser

logger = logging.getLogger(__name__)

MAX_IDLE = 320
IDLE_SECONDS = 60.0
_SWEEP_SECONDS = 5.0


class Owner(Protocol):
    """What an exchange offers its upstream connection (see proxy.Exchange)."""

    def upstream_data(self, data: bytes) -> None: ...
    def upstream_lost(self) -> None: ...
    def upstream_paused(self) -> None: ...
    def upstream_resumed(self) -> None: ...


class State(enum.Enum):
    CONNECTING = "connecting"
    ACTIVE = "active"
    IDLE = "idle"
    CLOSED = "closed"


# Enum member lookups cost ~90 ns each on Python 3.11; hot paths use these aliases.
_CONNECTING, _ACTIVE, _IDLE, _CLOSED = State


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "endpoint",
        "idle_since",
        "outbox",
        "output",
        "owner",
        "pool",
        "response_parser",
        "state",
        "transport",
        "uses",
    )

    def __init__(self, pool: EndpointPool) -> None:
        self.pool = pool
        self.outbox = pool.outbox
        self.output: list[bytes] = []  # held until the loop iteration ends (outbox.py)
        self.endpoint = pool.endpoint
        self.state = _CONNECTING
        self.transport: asyncio.Transport | None = None
        self.owner: Owner | None = None
        self.idle_since = 0.0
        self.uses = 0
        # The framing state of this connection's answers, kept across exchanges.
        self.response_parser: ResponseParser | None = None

    def __repr__(self) -> str:
        return f"<UpstreamConnection {self.endpoint} {self.state.value} uses={self.uses}>"

    # contract used by the pool and by tests
    @property
    def is_closed(self) -> bool:
        return self.state is _CLOSED

    @property
    def is_idle(self) -> bool:
        return self.state is _IDLE

    def has_expired(self, now: float) -> bool:
        return self.state is _IDLE and now - self.idle_since >= IDLE_SECONDS

    def write(self, data: bytes) -> None:
        """Send `data` with the rest of this loop iteration's output (see outbox.py)."""
        output = self.output
        if not output:
            self.outbox.hold(self)
        output.append(data)
        if len(data) >= SEND_AT_ONCE:
            self.flush_output()

    def flush_output(self) -> None:
        if self.output:
            output, self.output = self.output, []
            send(self.transport, output)

    @property
    def has_unsent(self) -> bool:
        """Request bytes not yet taken by the kernel (then its state is unknown)."""
        if self.output:
            return True
        return self.transport is not None and self.transport.get_write_buffer_size() > 0

    def write_eof(self) -> None:
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            self.flush_output()
            transport.write_eof()

    def close(self) -> None:
        if self.state is not _CLOSED:
            self.state = _CLOSED
            self.owner = None
            self.flush_output()
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        if self.state is not _CLOSED:
            self.state = _CLOSED
            self.owner = None
            if self.transport is not None:
                self.transport.abort()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.opened += 1

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner is not None:
            owner.upstream_data(data)
        else:
            # Bytes from a backend nobody asked: the connection's framing is lost.
            logger.info("%s: unexpected %d bytes on an idle connection; closing",
                        self.endpoint, len(data))  # fmt: skip
            self.close()

    def eof_received(self) -> bool:
        self.flush_output()  # tunnel bytes held for the backend; False closes the transport
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self.pool.opened -= 1
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.upstream_lost()

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_paused()

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_resumed()


class EndpointPool:
    """Idle keep-alive connections to one endpoint, reused last-in first-out."""

    __slots__ = ("_idle", "endpoint", "loop", "opened", "outbox", "retired")

    def __init__(self, endpoint: Endpoint, loop: asyncio.AbstractEventLoop, outbox: Outbox) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.outbox = outbox
        self._idle: deque[UpstreamConnection] = deque()
        self.opened = 0
        self.retired = False

    def __repr__(self) -> str:
        return f"<EndpointPool {self.endpoint} open={self.opened} idle={len(self._idle)}>"

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def acquire(self) -> UpstreamConnection | None:
        """The most recently released live connection, or None."""
        idle = self._idle
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            if connection.state is _IDLE and not connection.has_expired(now):
                connection.state = _ACTIVE
                connection.uses += 1
                return connection
            connection.close()
        return None

    def release(self, connection: UpstreamConnection) -> None:
        """Keep a connection that ended its exchange cleanly, if there is room."""
        connection.owner = None
        if connection.state is not _ACTIVE or self.retired or len(self._idle) >= MAX_IDLE:
            connection.close()
            return
        connection.state = _IDLE
        connection.idle_since = self.loop.time()
        if connection.transport is not None:
            # Reading stops while a client is slow to take a response, and the last
            # bytes of that response can come just before the pause: an idle
            # connection must read to see the backend close it, and the next
            # exchange needs its answer read.
            connection.transport.resume_reading()
        self._idle.append(connection)

    async def connect(self, timeout: float) -> UpstreamConnection:
        """A new connection; `UpstreamUnavailable` or `UpstreamTimeout` on failure."""
        endpoint = self.endpoint
        # HTTPS without SNI (server_hostname ""), as ingress-nginx's proxy_ssl_server_name off.
        tls: dict[str, Any] = {}
        if endpoint.tls:
            tls = {"ssl": upstream_context(), "server_hostname": "",
                   "ssl_handshake_timeout": timeout}  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await self.loop.create_connection(
                    lambda: UpstreamConnection(self), endpoint.address, endpoint.port, **tls
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"connect to {self.endpoint} timed out") from exc
        except (OSError, socket.gaierror) as exc:
            raise UpstreamUnavailable(f"connect to {self.endpoint}: {exc.strerror or exc}") from exc
        assert isinstance(protocol, UpstreamConnection)
        protocol.state = _ACTIVE
        protocol.uses = 1
        return protocol

    def sweep(self, now: float) -> None:
        """Close connections idle too long (oldest are at the left)."""
        idle = self._idle
        while idle and (idle[0].has_expired(now) or idle[0].is_closed):
            idle.popleft().close()

    def retire(self) -> None:
        """The endpoint left the configuration: close idle ones; active ones close on release."""
        self.retired = True
        while self._idle:
            self._idle.pop().close()


class Upstreams:
    """All pools of one process and the passive-health marks; outlive reloads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outbox: Outbox) -> None:
        self.loop = loop
        self.outbox = outbox
        self.pools: dict[Endpoint, EndpointPool] = {}
        self.health = PassiveHealth()
        self._sweeper: asyncio.TimerHandle | None = None

    def pool(self, endpoint: Endpoint) -> EndpointPool:
        pool = self.pools.get(endpoint)
        if pool is None:
            pool = self.pools[endpoint] = EndpointPool(endpoint, self.loop, self.outbox)
            if self._sweeper is None:
                self._sweeper = self.loop.call_later(_SWEEP_SECONDS, self._sweep)
        return pool

    def retain(self, keep: AbstractSet[Endpoint]) -> None:
        """After a reload: drain the pools of endpoints that are gone."""
        for endpoint in [e for e in self.pools if e not in keep]:
            self.pools.pop(endpoint).retire()
        self.health.forget(keep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self.pools.values():
            pool.retire()

    def open_connections(self) -> int:
        return sum(p.opened for p in self.pools.values())

    def idle_connections(self) -> int:
        return sum(p.idle_count for p in self.pools.values())

    def _sweep(self) -> None:
        now = self.loop.time()
        for pool in self.pools.values():
            pool.sweep(now)
        self._sweeper = self.loop.call_later(_SWEEP_SECONDS, self._sweep)
