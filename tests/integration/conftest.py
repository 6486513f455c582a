"""Fixtures of the end-to-end tests: real backends in the test's event loop, ingressd as a
subprocess on port 0 (tests/proc.py), configuration written from Kubernetes objects.

Every test host is ``app.test`` unless it says otherwise; `app()` builds the manifests of
the common case: one Service with the given backends behind one Ingress rule.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests import manifests
from tests.backends import Backend
from tests.proc import Ingressd

Obj = dict[str, object]
StartBackend = Callable[..., Awaitable[Backend]]
StartIngressd = Callable[..., Awaitable[Ingressd]]

HOST = "app.test"


def app(
    *backends: Backend | int,
    host: str | None = HOST,
    paths: Sequence[str] = ("/",),
    service: str = "app",
    annotations: dict[str, str] | None = None,
    ready: Sequence[bool] | None = None,
    tls_secret: str | None = None,
) -> list[Obj]:
    """A Service (+ Endpoints at each backend or bare port) and an Ingress routing to it
    (with `tls_secret`: a TLS section for `host` naming that Secret)."""
    ports = [b if isinstance(b, int) else b.port for b in backends]
    return [
        *manifests.service(service, ports, ready=ready),
        manifests.ingress(
            f"{service}-ingress",
            host,
            dict.fromkeys(paths, service),
            annotations=annotations,
            tls_secret=tls_secret,
        ),
    ]


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def client(
    proxy: Ingressd, headers: dict[str, str] | None = None, max_connections: int = 10
) -> httpx.AsyncClient:
    """An httpx client to ingressd's HTTP listener, sending ``Host: app.test``."""
    return httpx.AsyncClient(
        base_url=proxy.http,
        headers={"host": HOST, **(headers or {})},
        timeout=10.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections),
    )


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` (cheap, in-process state) until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_exit(proxy: Ingressd, timeout: float) -> int:
    """ingressd's exit code, waited for in a thread so the test's backends keep serving."""
    assert proxy.proc is not None
    return await asyncio.to_thread(proxy.proc.wait, timeout)


@pytest.fixture
async def backends() -> AsyncIterator[StartBackend]:
    """``await backends("name")`` → a started `Backend`; all are stopped at the end."""
    started: list[Backend] = []

    async def start(name: str = "backend") -> Backend:
        backend = await Backend(name).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


@pytest.fixture
async def ingressd(tmp_path: Path, backends: StartBackend) -> AsyncIterator[StartIngressd]:
    """``await ingressd(objects, *flags)`` → a running `Ingressd` serving those objects.

    ``https=True`` adds the TLS listener on port 0 (``proxy.ports["https"]``).
    ``access_log=PATH`` turns the access log on (format: a ``--log-format`` flag).
    ``preexec_fn=f`` runs `f` in the child before ingressd starts (resource limits).

    At the end each one still running gets SIGTERM and must exit 0 (before the
    backends stop: this fixture depends on `backends`, so it is torn down first).
    """
    running: list[Ingressd] = []

    async def start(
        objects: Sequence[Obj],
        *flags: str,
        https: bool = False,
        access_log: Path | str = "off",
        preexec_fn: Callable[[], object] | None = None,
    ) -> Ingressd:
        config = manifests.write(tmp_path / f"ingress-{len(running)}.yaml", objects)
        proxy = Ingressd(config, *flags, https=https, access_log=access_log, preexec_fn=preexec_fn)
        running.append(proxy)
        listeners = ("http", "https", "admin") if https else ("http", "admin")
        await asyncio.to_thread(proxy.start, listeners=listeners)
        return proxy

    yield start
    failures = []
    for proxy in running:
        code = await asyncio.to_thread(proxy.stop)
        if code != 0:
            failures.append(f"exit code {code}; output:\n" + "\n".join(proxy.lines))
    assert not failures, "ingressd did not stop cleanly on SIGTERM:\n" + "\n".join(failures)


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listening socket accepts nothing: listen(0) and its queue filled.

    A SYN to it is dropped by the kernel, so a connect hangs until the caller's timeout.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(("127.0.0.1", port))
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
