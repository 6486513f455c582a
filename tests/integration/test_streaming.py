"""Bodies are streamed with back-pressure (memory bounded whatever the size) and backend
connections are kept alive and reused (SPEC §4)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from tests.backends import CHUNK, pattern
from tests.integration.conftest import StartBackend, StartIngressd, app, client
from tests.integration.rawhttp import RawClient
from tests.proc import Ingressd

SIZE = 50 * 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 40 * 1024
UNLIMITED_BODY = {"nginx.ingress.kubernetes.io/proxy-body-size": "0"}


STALL_SECONDS = 1.0  # long enough for a backend to push all 50 MB if nothing holds it back


class RssWatch:
    """The largest growth of ingressd's resident set over a baseline, sampled by the test."""

    def __init__(self, proxy: Ingressd) -> None:
        self.proxy = proxy
        self.baseline = proxy.rss_kib()
        self.peak = self.baseline

    def sample(self) -> None:
        self.peak = max(self.peak, self.proxy.rss_kib())

    async def sample_for(self, seconds: float) -> None:
        """Sample every 50 ms for `seconds`: a stalled peer, watched while it stalls."""
        for _ in range(round(seconds / 0.05)):
            self.sample()
            await asyncio.sleep(0.05)

    @property
    def growth_kib(self) -> int:
        return self.peak - self.baseline


@pytest.mark.parametrize("kind", ["bytes", "chunked"])
async def test_50mb_download_is_byte_exact_in_bounded_memory(
    backends: StartBackend, ingressd: StartIngressd, kind: str
) -> None:
    proxy = await ingressd(app(await backends()))
    expected = hashlib.sha256(pattern(SIZE)).hexdigest()
    async with client(proxy) as http:
        assert (await http.get("/warm-up")).status_code == 200
        rss = RssWatch(proxy)
        digest, received = hashlib.sha256(), 0
        async with http.stream("GET", f"/{kind}/{SIZE}") as response:
            assert response.status_code == 200
            async for data in response.aiter_raw(CHUNK):
                if received == 0:
                    # The client stops reading: back-pressure must stop the backend, not
                    # buffer its 50 MB in ingressd.
                    await rss.sample_for(STALL_SECONDS)
                digest.update(data)
                received += len(data)
                if received % (16 * CHUNK) < len(data):
                    rss.sample()
        rss.sample()
    assert received == SIZE
    assert digest.hexdigest() == expected
    assert rss.growth_kib < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {rss.growth_kib} KiB"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_50mb_upload_is_byte_exact_in_bounded_memory(
    backends: StartBackend, ingressd: StartIngressd, framing: str
) -> None:
    proxy = await ingressd(app(await backends(), annotations=UNLIMITED_BODY))
    data = pattern(SIZE)
    async with client(proxy) as http:
        assert (await http.get("/warm-up")).status_code == 200
        rss = RssWatch(proxy)

        async def body() -> AsyncIterator[bytes]:
            for offset in range(0, SIZE, CHUNK):
                if offset % (16 * CHUNK) == 0:
                    rss.sample()
                yield data[offset : offset + CHUNK]

        headers = {"content-length": str(SIZE)} if framing == "content-length" else {}
        # The backend reads nothing for a while: back-pressure must stop the client.
        target = f"/slow-upload/{STALL_SECONDS}"
        response = await http.post(target, content=body(), headers=headers)
        rss.sample()
    assert response.status_code == 200, response.text
    assert response.json()["length"] == SIZE
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert rss.growth_kib < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {rss.growth_kib} KiB"


async def test_backend_connections_are_kept_alive_and_reused(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    backend = await backends()
    proxy = await ingressd(app(backend))
    async with RawClient(proxy.ports["http"]) as raw:  # one client connection
        for i in range(1000):
            await raw.send(b"GET /reuse/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % i)
            response = await raw.read_response()
            assert response.status == 200, response
    assert backend.requests == 1000
    assert backend.connections <= 2, f"{backend.connections} backend connections for 1000 requests"
