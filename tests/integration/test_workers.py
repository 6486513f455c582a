"""``--workers N``: several processes share the listening port; signals reach all of them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests import manifests
from tests.proc import Ingressd

from .conftest import HOST, StartBackend, app, dead_port


async def test_two_workers_share_the_port_reload_together_and_stop_cleanly(
    tmp_path: Path, backends: StartBackend
) -> None:
    backend = await backends("one")
    config = manifests.write(tmp_path / "ingress.yaml", app(backend))
    port = dead_port()  # reuse_port needs a fixed port: with 0 every worker gets its own
    proxy = Ingressd(config, "--workers", "2")
    proxy.args[proxy.args.index("--http") + 1] = f"127.0.0.1:{port}"
    proxy.start(listeners=("admin",))
    try:
        proxy.wait_for(lambda: sum("http listening" in line for line in proxy.lines) == 2, 15,
                       what="two http listeners")  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        for _ in range(20):  # new connections each time: the kernel spreads them
            async with httpx.AsyncClient(headers={"host": HOST}) as client:
                assert (await client.get(url)).status_code == 200
        second = await backends("two")
        manifests.write(config, app(second))
        mark = len(proxy.lines)
        proxy.signal(signal.SIGHUP)
        proxy.wait_for(
            lambda: sum("reloaded" in line for line in proxy.lines[mark:]) == 2, 15,
            what="both workers reloaded",
        )  # fmt: skip
        for _ in range(10):
            async with httpx.AsyncClient(headers={"host": HOST}) as client:
                response = await client.get(url)
                assert response.headers["x-backend"] == "two"
    finally:
        # stop(): SIGTERM, wait (in a thread: the backends keep serving), close the pipe.
        assert await asyncio.to_thread(proxy.stop, 20) == 0
