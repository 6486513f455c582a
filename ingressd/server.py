"""Listeners, reload and graceful stop: ``serve(..., shutdown_trigger)``.

Owns: the `ProxyServer` shared by the connections of one process (current
`Runtime`, upstream pools, the set of open connections, tracked tasks),
opening the listeners, SIGHUP reload (build to the side in a worker thread,
swap one reference on the loop, drain pools of vanished endpoints) and the
stop sequence: close listeners → ask connections to finish → wait up to the
drain timeout → abort the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import uvloop
from prometheus_client import CONTENT_TYPE_LATEST

from . import http1
from .accesslog import AccessLog
from .admin import AdminResponse, AdminServer
from .downstream import ClientConnection, TLSClientConnection
from .errors import ConfigError
from .limits import LimitStore
from .metrics import Stats, exposition, method_class
from .outbox import Outbox
from .pool import Upstreams
from .report import render_json
from .routes import NO_ROUTE_LABELS, Endpoint
from .runtime import Runtime, build_runtime, release_in_slices
from .settings import Settings, settings_from_args
from .timers import TimerWheel
from .tls import CertificateError, default_certificate, listener_context

if TYPE_CHECKING:
    from .proxy import Exchange

logger = logging.getLogger(__name__)

_RELEASE_PATIENCE = 10.0  # seconds a replaced runtime waits for its last requests
Address = tuple[str, int]


class ProxyServer:
    def __init__(
        self, settings: Settings, runtime: Runtime, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.default_certificate = runtime.certs.default
        self.loop = loop
        self.outbox = Outbox(loop)
        self.upstreams = Upstreams(loop, self.outbox)
        self.wheel = TimerWheel(loop)
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stats = Stats()
        self.limits = LimitStore()  # limit-rps/-rpm/-connections state, kept across reloads
        # Password checks (bcrypt: ~100 ms each) run here, off the loop: two threads
        # (bcrypt releases the GIL; more would only queue on two cores) and at most
        # MAX_WAITING_CHECKS waiting; beyond that a request is answered 503 at once
        # rather than queued behind a flood of wrong passwords.
        self.checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingressd-check")
        self.checks_waiting = 0
        self.https_port = 443
        self.access_log: AccessLog | None = None
        self.stopping = False
        self._handshaking: set[weakref.ref[ClientConnection]] = set()
        self._fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        # Each client connection may hold an upstream one too; keep room for listeners.
        self._fd_warning = max(1, (self._fd_limit - 64) // 2)
        self._next_limit_warning = 0.0
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._reloading = False
        self._reload_again = False

    # --- connections -------------------------------------------------------------

    def connection_opened(self, connection: ClientConnection) -> bool:
        """Admit a new client connection, unless stopping or at --max-connections."""
        if connection.handshake is not None:
            self._handshaking.discard(connection.handshake)
            self.stats.tls_handshakes += 1
        if self.stopping or len(self.connections) >= self.settings.max_connections:
            if not self.stopping:
                self._warn_limit("--max-connections", self.settings.max_connections)
            return False
        self.connections.add(connection)
        self._all_closed.clear()
        if len(self.connections) >= self._fd_warning:
            # Past the descriptor limit libuv accepts and closes new connections
            # silently (its EMFILE back-off): say so before it happens.
            self._warn_limit("the open-file limit (RLIMIT_NOFILE)", self._fd_limit)
        return True

    def _warn_limit(self, what: str, limit: int) -> None:
        now = self.loop.time()
        if now >= self._next_limit_warning:
            self._next_limit_warning = now + 10.0
            logger.warning(
                "%d client connections open, close to %s of %d: new connections "
                "are being or will be refused",
                len(self.connections),
                what,
                limit,
            )

    def handshake_started(self, connection: ClientConnection) -> ClientConnection:
        """A TLS connection's protocol exists before its handshake: if it dies unconnected,
        the handshake failed (uvloop reports that nowhere else)."""
        reference = weakref.ref(connection, self._handshake_gone)
        self._handshaking.add(reference)
        connection.handshake = reference
        return connection

    def _handshake_gone(self, reference: weakref.ref[ClientConnection]) -> None:
        if reference in self._handshaking:
            self._handshaking.discard(reference)
            self.stats.tls_handshake_errors += 1
            logger.debug("TLS handshake failed")

    def connection_closed(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- per-request bookkeeping ----------------------------------------------------

    def exchange_finished(self, exchange: Exchange) -> None:
        """Count the request and write its access-log line (the one place that does)."""
        now = self.loop.time()
        labels = exchange.labels
        upstream_seconds = now - exchange.upstream_started if exchange.upstream_started else None
        sent = exchange.client.bytes_written - exchange.sent_mark
        head = exchange.head
        self.stats.count_request(
            labels, method_class(head.method), exchange.status, now - exchange.started,
            upstream_seconds, exchange.body_received, sent,
        )  # fmt: skip
        if self.access_log is not None:
            referer = head.value(b"referer") or b""
            agent = head.value(b"user-agent") or b""
            self.access_log.log(
                exchange.client.client_ip, head.method, head.target, head.version,
                exchange.status, sent, exchange.body_bytes_sent, referer, agent,
                now - exchange.started,
                str(exchange.endpoint) if exchange.endpoint else "", exchange.upstream_status,
                upstream_seconds, exchange.request_id,
                f"{labels[0]}/{labels[1]}" if labels[1] else "", labels[2],
                labels[3] == "true",
            )  # fmt: skip

    def request_rejected(self, connection: ClientConnection, status: int, sent: int) -> None:
        """A request refused before it had an exchange (400, 405, 408...): count and log it."""
        self.stats.count_request(NO_ROUTE_LABELS, "other", status, 0.0, None, 0, sent)
        if self.access_log is not None:
            body = len(http1.status_body(status))
            self.access_log.log(
                connection.client_ip, b"", b"", b"", status, sent, body, b"", b"", 0.0,
                "", 0, None, http1.new_request_id(), "", "",
            )  # fmt: skip

    def endpoint_failed(self, endpoint: Endpoint) -> None:
        """A connect failed: passive health marks the endpoint down (an ejection)."""
        stats = self.stats
        stats.bump(stats.connect_errors, str(endpoint))
        if self.upstreams.health.is_up(endpoint, self.loop.time()):
            stats.bump(stats.ejections, str(endpoint))
            logger.warning("endpoint %s marked down for 10 s after a failed connect", endpoint)
        self.upstreams.health.mark_down(endpoint, self.loop.time())

    # --- reload --------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: build a new runtime beside the old one, then swap it in; on error keep the old.

        The build (YAML, routes, certificates: seconds at 10,000 Ingresses) runs in a
        worker thread so that the loop goes on serving meanwhile; the swap happens on
        the loop.  A SIGHUP during a build asks for one more build after it, since
        the files may have changed again.
        """
        if self._reloading:
            self._reload_again = True
            return
        self._reloading = True
        self._reload_again = False
        started = time.monotonic()
        threading.Thread(
            target=self._build_for_reload, args=(started,), name="ingressd-reload", daemon=True
        ).start()

    def _build_for_reload(self, started: float) -> None:
        """Worker thread: build, then hand the outcome to the loop."""
        outcome: Runtime | BaseException
        try:
            outcome = build_runtime(self.settings, self.default_certificate)
        except BaseException as exc:  # reported on the loop, which keeps the old runtime
            outcome = exc
        else:
            # Here, not on the loop: thousands of lines at 10,000 Ingresses.
            for warning in () if self.stopping else outcome.warnings:
                logger.warning("%s", warning)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to do
            self.loop.call_soon_threadsafe(self._reload_built, outcome, started)

    def _reload_built(self, outcome: Runtime | BaseException, started: float) -> None:
        self._reloading = False
        if not self.stopping:
            self._apply_reload(outcome, time.monotonic() - started)
        if self._reload_again and not self.stopping:
            self.reload()

    def _apply_reload(self, outcome: Runtime | BaseException, seconds: float) -> None:
        if isinstance(outcome, BaseException):
            self.stats.reloads_failed += 1
            logger.error("reload of %s failed", ", ".join(self.settings.config_paths))
            if isinstance(outcome, ConfigError):
                for problem in outcome.problems:
                    logger.error("reload: %s", problem)
                for warning in outcome.warnings:
                    logger.warning("reload: %s", warning)
                count = len(outcome.problems)
            else:
                logger.error("reload: unexpected error", exc_info=outcome)
                count = 1
            logger.error("reload failed with %d error(s); still serving the previous configuration",
                         count)  # fmt: skip
            return
        runtime = outcome
        replaced = [self.runtime]
        self.swap(runtime)
        threading.Thread(
            target=release_in_slices, args=(replaced,), kwargs={"patience": _RELEASE_PATIENCE},
            name="ingressd-release", daemon=True,
        ).start()  # fmt: skip
        self.stats.reloads_ok += 1
        self.stats.last_reload_ok = runtime.loaded_at
        logger.info("reloaded: %d ingresses, config %s, built in %.2f s",
                    len(runtime.table.ingresses), runtime.config.digest[:12], seconds)  # fmt: skip

    def swap(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.upstreams.retain(runtime.endpoints)
        self.limits.retain(runtime.table.limit_zones)

    # --- stop ----------------------------------------------------------------------

    async def drain(self) -> None:
        """Ask every connection to finish its request; abort what is left at the deadline."""
        self.stopping = True
        for connection in list(self.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.settings.drain_timeout):
                await self._all_closed.wait()
        except TimeoutError:
            logger.warning("drain timeout: aborting %d connection(s)", len(self.connections))
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
        self.upstreams.close()
        self.wheel.close()
        self.checks.shutdown(wait=False, cancel_futures=True)
        for task in list(self.tasks):
            task.cancel()

    # --- admin ---------------------------------------------------------------------

    def admin_handlers(self) -> dict[str, Callable[[], AdminResponse]]:
        metrics = exposition(self)
        return {
            "/healthz": lambda: AdminResponse(200, b"ok\n"),
            "/readyz": lambda: (
                AdminResponse(200, b"ready\n")
                if self.runtime is not None and not self.stopping
                else AdminResponse(503, b"not ready\n")
            ),
            "/metrics": lambda: AdminResponse(200, metrics(), CONTENT_TYPE_LATEST.encode()),
            "/routes": lambda: AdminResponse(
                200,
                render_json(self.runtime, self.upstreams.health, self.loop.time()),
                b"application/json",
            ),
        }


@dataclass(frozen=True, slots=True)
class Listeners:
    http: Address | None = ("0.0.0.0", 8080)
    https: Address | None = ("0.0.0.0", 8443)
    admin: Address | None = ("127.0.0.1", 10254)
    reuse_port: bool = False  # --workers: every process binds the data-path ports


async def serve(
    settings: Settings,
    runtime: Runtime,
    listeners: Listeners,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]],
    on_ready: Callable[[ProxyServer, dict[str, Address]], None] | None = None,
) -> ProxyServer:
    """Serve until `shutdown_trigger()` returns, then stop gracefully."""
    loop = asyncio.get_running_loop()
    server = ProxyServer(settings, runtime, loop)
    if settings.access_log is not None:
        server.access_log = AccessLog(settings.access_log, settings.log_format, loop)
    servers: list[asyncio.Server] = []
    bound: dict[str, Address] = {}
    try:
        if listeners.http is not None:
            host, port = listeners.http
            servers.append(await loop.create_server(
                lambda: ClientConnection(server, http1.Listener(b"http", bound["http"][1])),
                host, port, reuse_address=True, reuse_port=listeners.reuse_port,
                backlog=1024))  # fmt: skip
            bound["http"] = _bound_address(servers[-1])
        if listeners.https is not None:
            assert server.default_certificate is not None  # made whenever https is on
            context = listener_context(server.default_certificate, lambda: server.runtime.certs)
            host, port = listeners.https
            servers.append(await loop.create_server(
                lambda: server.handshake_started(
                    TLSClientConnection(server, http1.Listener(b"https", bound["https"][1]))),
                host, port, ssl=context, ssl_handshake_timeout=settings.client_header_timeout,
                reuse_address=True, reuse_port=listeners.reuse_port, backlog=1024))  # fmt: skip
            bound["https"] = _bound_address(servers[-1])
            server.https_port = bound["https"][1]
        if listeners.admin is not None:
            admin = AdminServer(server.admin_handlers())
            host, port = listeners.admin
            servers.append(await asyncio.start_server(admin.handle, host, port, reuse_address=True))
            bound["admin"] = _bound_address(servers[-1])
        if on_ready is not None:
            on_ready(server, bound)
        await shutdown_trigger()
    finally:
        for listener in servers:
            listener.close()
        await server.drain()
        for listener in servers:
            await listener.wait_closed()
        if server.access_log is not None:
            server.access_log.close()
    return server


def _bound_address(server: asyncio.Server) -> Address:
    sockname = server.sockets[0].getsockname()
    return sockname[0], sockname[1]


def run(args: argparse.Namespace) -> int:
    """The ``ingressd --config ...`` process: exit 1 on a bad config, 0 after a graceful stop."""
    settings = settings_from_args(args)
    try:
        default = None
        if args.https is not None or args.default_cert:
            default = default_certificate(args.default_cert, args.default_key)
        runtime = build_runtime(settings, default)
    except (ConfigError, CertificateError, OSError) as exc:
        if not isinstance(exc, ConfigError):
            print(f"ingressd: default certificate: {exc}", file=sys.stderr)
            return 1
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} error(s); not starting", file=sys.stderr)
        for warning in exc.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 1
    for warning in runtime.warnings:
        logger.warning("%s", warning)
    listeners = Listeners(http=args.http, https=args.https, admin=args.admin)
    if args.workers == 1:
        return _serve_process(settings, runtime, listeners)
    return _supervise(args.workers, settings, runtime, listeners)


def _serve_process(settings: Settings, runtime: Runtime, listeners: Listeners) -> int:
    try:
        uvloop.run(_main(settings, runtime, listeners))
    except OSError as exc:
        print(f"ingressd: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def _supervise(count: int, settings: Settings, runtime: Runtime, listeners: Listeners) -> int:
    """``--workers N``: N forked processes share the data-path ports (SO_REUSEPORT).

    The first worker also serves the admin listener (its metrics are its own).
    The parent forwards SIGHUP, SIGTERM, SIGINT and SIGUSR1 to every worker and
    exits when all have stopped: 0 if all exited 0.  A worker that dies is not
    restarted.
    """
    shared = replace(listeners, reuse_port=True)
    children: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            own = shared if index == 0 else replace(shared, admin=None)
            os._exit(_serve_process(settings, runtime, own))
        children.append(pid)

    def forward(signum: int, _: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or int(os.waitstatus_to_exitcode(code) != 0)
    return status


async def _main(settings: Settings, runtime: Runtime, listeners: Listeners) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    holder: list[ProxyServer] = []

    def on_ready(server: ProxyServer, bound: dict[str, Address]) -> None:
        holder.append(server)
        loop.add_signal_handler(signal.SIGHUP, server.reload)
        if server.access_log is not None:
            loop.add_signal_handler(signal.SIGUSR1, server.access_log.reopen)
        for name, (host, port) in bound.items():
            # One write per line: workers share stdout, and unbuffered (-u) print()
            # writes the text and the newline separately, so lines could interleave.
            print(f"ingressd: {name} listening on {host}:{port}\n", end="", flush=True)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(settings, runtime, listeners, shutdown_trigger=stop.wait, on_ready=on_ready)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            loop.remove_signal_handler(signum)
    logger.info("stopped")
