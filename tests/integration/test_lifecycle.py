"""The process around the data path (SPEC §1, §2, §7): SIGHUP reload under load, a broken
config on reload, graceful stop on SIGTERM, the admin health endpoints."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter

import httpx

from tests import manifests
from tests.integration.conftest import (
    HOST,
    StartBackend,
    StartIngressd,
    app,
    client,
    wait_exit,
    wait_until,
)
from tests.integration.rawhttp import RawClient, assert_echoes, open_websocket
from tests.proc import Ingressd

WORKERS = 10
REQUESTS_PER_WORKER = 200
RECONNECT_EVERY = 50
RELOADS = 5


async def reload(proxy: Ingressd, objects: list[dict[str, object]], expect: str) -> None:
    """Rewrite the config, send SIGHUP, wait for the log line `expect` that follows it."""
    start = len(proxy.lines)
    manifests.write(proxy.config, objects)
    proxy.signal(signal.SIGHUP)
    await asyncio.to_thread(proxy.wait_for_line, expect, 10.0, start)


async def test_reload_under_load_drops_no_request(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    first, second = await backends("first"), await backends("second")
    proxy = await ingressd(app(first))
    port = proxy.ports["http"]
    done = 0
    progress = asyncio.Condition()
    statuses: Counter[int] = Counter()

    async def worker(n: int) -> None:
        nonlocal done
        for batch in range(REQUESTS_PER_WORKER // RECONNECT_EVERY):
            async with RawClient(port) as raw:  # new connections keep arriving, too
                for i in range(RECONNECT_EVERY):
                    await raw.send(b"GET /load/%d/%d/%d HTTP/1.1\r\nHost: app.test\r\n\r\n"
                                   % (n, batch, i))  # fmt: skip
                    statuses[(await raw.read_response()).status] += 1
                    done += 1
                    async with progress:
                        progress.notify_all()

    async def wait_done(count: int) -> None:
        async with progress:
            await progress.wait_for(lambda: done >= count)

    async def reloader() -> list[int]:
        at: list[int] = []
        for i in range(RELOADS):
            await wait_done(150 * (i + 1))
            timeout = {"nginx.ingress.kubernetes.io/proxy-read-timeout": str(60 + i)}
            # The second backend comes (reloads 1, 3, 5) and goes (2, 4): both ways drain.
            pool = (first, second) if i % 2 == 0 else (first,)
            await reload(proxy, app(*pool, annotations=timeout), "reloaded:")
            at.append(done)
        return at

    async with RawClient(port) as websocket:
        await open_websocket(websocket)
        await assert_echoes(websocket, b"before the reloads")
        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            for n in range(WORKERS):
                group.create_task(worker(n))
            reloads = group.create_task(reloader())
        reloaded_at = reloads.result()
        await assert_echoes(websocket, b"after the reloads")
    total = WORKERS * REQUESTS_PER_WORKER
    assert statuses == {200: total}
    assert all(count < total for count in reloaded_at), f"reloads after the load: {reloaded_at}"
    assert second.requests > 0, "the backend added by the reload got no traffic"
    assert first.requests + second.requests == total + 1  # and the WebSocket's


async def test_requests_are_answered_while_a_large_reload_builds(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    """Building a big configuration takes seconds; it happens beside the event loop,
    so traffic goes on meanwhile instead of stalling until the swap."""
    backend = await backends("app")
    proxy = await ingressd(app(backend))
    many = [
        manifests.ingress(f"site-{i}", f"site-{i}.example", {"/": "app", "/api/v1": "app"})
        for i in range(3000)
    ]
    start = len(proxy.lines)
    manifests.write(proxy.config, [*app(backend), *many])
    proxy.signal(signal.SIGHUP)
    reloaded = asyncio.create_task(asyncio.to_thread(proxy.wait_for_line, "reloaded:", 60.0, start))
    answered = 0
    async with client(proxy) as http:
        while not reloaded.done():
            response = await http.get("/during-reload", headers={"host": HOST})
            assert response.status_code == 200
            answered += 1
    line = await reloaded
    built = float(re.search(r"built in ([\d.]+) s", line)[1])  # type: ignore[index]
    assert built >= 0.5, f"the reload was too quick ({built} s) to tell anything"
    assert answered >= 5, f"only {answered} request(s) answered during a {built} s reload"


async def test_broken_config_on_reload_keeps_the_old_one_serving(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    first, second = await backends("first"), await backends("second")
    proxy = await ingressd(app(first, second))
    broken = [
        *manifests.service("app", [first.port]),
        manifests.ingress("app-ingress", HOST, {"/": "app"}, path_type="Sometimes"),
    ]
    await reload(proxy, broken, "reload failed")
    position = re.compile(re.escape(str(proxy.config)) + r":\d+: .*pathType")
    assert any(position.search(line) for line in proxy.lines), "\n".join(proxy.lines)
    async with client(proxy) as http:
        responses = [await http.get(f"/still/{i}") for i in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    assert {r.json()["name"] for r in responses} == {"first", "second"}  # the old config


async def wait_refused(port: int, timeout: float) -> None:
    """Connect until the listener is gone (connection refused); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except (ConnectionRefusedError, ConnectionResetError):
            return  # refused, or reset while queued on the listener being closed
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.02)
    raise AssertionError(f"port {port} still accepts connections after {timeout} s")


async def test_sigterm_finishes_in_flight_request_then_exits_0(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with client(proxy) as http, RawClient(proxy.ports["http"]) as idle:
        await idle.send(b"GET /idle HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await idle.read_response()).status == 200  # now an idle keep-alive connection
        slow = asyncio.create_task(http.get("/sleep/2"))
        await wait_until(lambda: backend.requests == 2, 5.0, "the slow request at the backend")
        proxy.signal(signal.SIGTERM)
        await wait_refused(proxy.ports["http"], 1.5)
        assert await idle.is_closed_by_peer(1.0), "idle connection kept open while draining"
        assert not slow.done(), "the in-flight request ended before the backend answered"
        response = await slow
    assert response.status_code == 200
    assert response.json()["target"] == "/sleep/2"
    assert await wait_exit(proxy, 10.0) == 0


async def test_admin_health_endpoints_answer_200(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    proxy = await ingressd(app(await backends()))
    admin = f"http://127.0.0.1:{proxy.ports['admin']}"
    async with httpx.AsyncClient(base_url=admin, trust_env=False, timeout=5.0) as http:
        for path in ("/healthz", "/readyz"):
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text)
