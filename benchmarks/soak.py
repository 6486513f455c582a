"""Soak: mixed traffic against a real ingressd while its configuration keeps changing.

For a bounded time, workers drive every kind of request at once through one
ingressd subprocess: keep-alive GETs, GETs on new connections, uploads (random
sizes up to 2 MB, checked by the sha256 the backend echoes), downloads
(``/bytes/N`` and ``/chunked/N`` checked byte for byte), WebSocket echoes, and
requests ingressd must refuse (404 for an unknown host, 502 for a dead
endpoint) — while the config is rewritten and reloaded with SIGHUP every
second.  It checks that no valid request failed, that every response is
byte-exact, and that ingressd's RSS and open descriptors did not grow between
the start (after a warm-up) and the end.

    .venv/bin/python benchmarks/soak.py [--seconds 60] [--warmup 3] [--seed N]

Prints requests by kind, failures, reloads, RSS and fds at start and end; exits 1
on any failure.  tests/integration/test_soak.py runs the same machinery for ~15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `tests` is imported from the checkout
    sys.path.insert(0, str(ROOT))

from tests import manifests  # noqa: E402
from tests.backends import Backend, pattern  # noqa: E402
from tests.integration.rawhttp import RawClient, Response, open_websocket  # noqa: E402
from tests.proc import Ingressd  # noqa: E402

HOST = b"app.test"
DEAD_HOST = b"dead.test"
UNKNOWN_HOST = b"nowhere.test"
MAX_UPLOAD = 2 * 1024 * 1024
MAX_DOWNLOAD = 2 * 1024 * 1024
RSS_SLACK_KIB = 10 * 1024
FD_SLACK = 10
RECONNECT_EVERY = 100  # keep-alive workers open a new connection after this many requests
REQUEST_TIMEOUT = 10.0
_DOWNLOAD = pattern(MAX_DOWNLOAD)  # every /bytes/N body is a prefix of this


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Sample:
    """ingressd's footprint at one moment."""

    rss_kib: int
    fds: int


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    reloads: int = 0

    def ok(self, kind: str) -> None:
        self.requests[kind] += 1

    def fail(self, kind: str, message: str) -> None:
        self.requests[kind] += 1
        self.failures.append(f"{kind}: {message}")


@dataclass
class SoakReport:
    seconds: float
    tally: Tally
    start: Sample
    end: Sample

    @property
    def total(self) -> int:
        return sum(self.tally.requests.values())

    def problems(self) -> list[str]:
        """Everything that makes the soak fail; empty when it passed."""
        found = list(self.tally.failures)
        if self.end.rss_kib > self.start.rss_kib + RSS_SLACK_KIB:
            found.append(f"RSS grew from {self.start.rss_kib} to {self.end.rss_kib} KiB")
        if self.end.fds > self.start.fds + FD_SLACK:
            found.append(f"open fds grew from {self.start.fds} to {self.end.fds}")
        return found

    def summary(self) -> str:
        lines = [f"soak: {self.seconds:.0f} s, {self.total} requests "
                 f"({self.total / max(self.seconds, 1e-9):.0f}/s), "
                 f"{self.tally.reloads} reloads"]  # fmt: skip
        for kind, count in sorted(self.tally.requests.items()):
            lines.append(f"  {kind:<15} {count:>8}")
        lines.append(f"  RSS  start {self.start.rss_kib / 1024:7.1f} MiB   "
                     f"end {self.end.rss_kib / 1024:7.1f} MiB")  # fmt: skip
        lines.append(f"  fds  start {self.start.fds:7d}       end {self.end.fds:7d}")
        problems = self.problems()
        lines.append(f"  failures: {len(self.tally.failures)}")
        lines += [f"    {problem}" for problem in problems[:20]]
        if len(problems) > 20:
            lines.append(f"    ... and {len(problems) - 20} more")
        lines.append("PASS" if not problems else "FAIL")
        return "\n".join(lines)


class Mismatch(Exception):
    """A response that is not the one the request must get."""


# --------------------------------------------------------------------------- configuration


PARKED = -1  # the config variant without endpoints: every upstream pool is retired


def objects(backends: list[Backend], dead_port: int, variant: int) -> list[dict[str, object]]:
    """The served config: app.test over the backends, dead.test over a dead port.

    Variants differ in a timeout annotation and, for odd ones, in one more endpoint,
    so that reloads both add and retire upstream pools.  `PARKED` has no endpoint.
    """
    if variant == PARKED:
        ports: list[int] = []
    else:
        ports = [b.port for b in (backends if variant % 2 else backends[:-1])]
    annotations = {
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(30 + variant % 7),
    }
    return [
        *manifests.service("app", ports),
        manifests.ingress("app", HOST.decode(), {"/": "app"}, annotations=annotations),
        *manifests.service("dead", [dead_port]),
        manifests.ingress("dead", DEAD_HOST.decode(), {"/": "dead"}),
    ]


def free_dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- traffic


def request(method: bytes, path: bytes, host: bytes = HOST, extra: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (method, path, host, extra)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def echo_of(response: Response, target: bytes) -> dict[str, object]:
    expect(response.status == 200, f"{target!r}: status {response.status}")
    echo: object = json.loads(response.body)
    if not isinstance(echo, dict):
        raise Mismatch(f"{target!r}: not a JSON object")
    expect(echo.get("target") == target.decode(), f"{target!r}: echo of {echo.get('target')!r}")
    return echo


def own_answer(response: Response, status: int, target: bytes) -> None:
    expect(response.status == status, f"{target!r}: status {response.status}, not {status}")
    expect(response.body.startswith(b"%d " % status), f"{target!r}: body {response.body[:60]!r}")


class Session:
    """A worker's keep-alive connection: reused, renewed every RECONNECT_EVERY requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.raw: RawClient | None = None
        self.uses = 0

    async def client(self) -> RawClient:
        if self.raw is not None and self.uses >= RECONNECT_EVERY:
            await self.close()
        if self.raw is None:
            self.raw = await RawClient(self.port).__aenter__()
            self.uses = 0
        self.uses += 1
        return self.raw

    async def exchange(self, data: bytes, method: str = "GET") -> Response:
        """Send one request, read its response; follow the server's `Connection: close`."""
        raw = await self.client()
        await raw.send(data)
        response = await raw.read_response(method)
        if (response.header("connection") or "").lower() == "close":
            await self.close()
        return response

    async def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is not None:
            await raw.close()


class Traffic:
    """The workers of one phase; each loops until `deadline` and records into `tally`."""

    def __init__(self, port: int, tally: Tally, rng: random.Random, deadline: float) -> None:
        self.port = port
        self.tally = tally
        self.rng = rng
        self.deadline = deadline
        self.serial = 0

    def next_path(self, prefix: str) -> bytes:
        self.serial += 1
        return b"/%s/%d" % (prefix.encode(), self.serial)

    async def _loop(self, kind: str, step: Callable[[Session], Awaitable[None]]) -> None:
        """Run `step` until the deadline; a failure is recorded and its connection dropped."""
        session = Session(self.port)
        try:
            while time.monotonic() < self.deadline:
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        await step(session)
                    self.tally.ok(kind)
                except Exception as exc:  # any failure of a valid request is a finding
                    self.tally.fail(kind, f"{type(exc).__name__}: {exc}"[:300])
                    await session.close()
        finally:
            await session.close()

    # --- the kinds ------------------------------------------------------------

    async def keepalive(self) -> None:
        async def step(session: Session) -> None:
            path = self.next_path("keepalive")
            echo_of(await session.exchange(request(b"GET", path)), path)

        await self._loop("keepalive-get", step)

    async def new_connection(self) -> None:
        async def step(_: Session) -> None:
            path = self.next_path("fresh")
            close = self.rng.random() < 0.5  # half ask for the close, half just hang up
            async with RawClient(self.port) as raw:
                await raw.send(request(b"GET", path, extra=b"Connection: close\r\n" * close))
                echo_of(await raw.read_response(), path)
                if close:
                    expect(await raw.is_closed_by_peer(5.0), "Connection: close not honoured")

        await self._loop("new-conn-get", step)

    async def upload(self) -> None:
        async def step(session: Session) -> None:
            size = self.rng.randint(0, MAX_UPLOAD)
            body = self.rng.randbytes(size)
            if self.rng.random() < 0.5:
                framing = b"Content-Length: %d\r\n" % size
                wire = body
            else:
                framing = b"Transfer-Encoding: chunked\r\n"
                wire = chunked(body, self.rng)
            head = request(b"POST", b"/upload", extra=framing)
            echo = echo_of(await session.exchange(head + wire), b"/upload")
            expect(echo.get("length") == size, f"upload of {size}: echoed {echo.get('length')}")
            digest = hashlib.sha256(body).hexdigest()
            expect(echo.get("sha256") == digest, f"upload of {size}: sha256 differs")

        await self._loop("upload", step)

    async def download(self) -> None:
        async def step(session: Session) -> None:
            size = self.rng.randint(0, MAX_DOWNLOAD)
            kind = "bytes" if self.rng.random() < 0.5 else "chunked"
            path = b"/%s/%d" % (kind.encode(), size)
            response = await session.exchange(request(b"GET", path))
            expect(response.status == 200, f"{path!r}: status {response.status}")
            expect(len(response.body) == size, f"{path!r}: {len(response.body)} bytes")
            expect(response.body == _DOWNLOAD[:size], f"{path!r}: body differs")

        await self._loop("download", step)

    async def websocket(self) -> None:
        async def step(_: Session) -> None:
            async with RawClient(self.port) as raw:
                await open_websocket(raw)
                for _message in range(self.rng.randint(1, 5)):
                    message = self.rng.randbytes(self.rng.randint(1, 64 * 1024))
                    await raw.send(message)
                    echoed = await raw.read_exactly(len(message))
                    expect(echoed == message, "WebSocket echo differs")

        await self._loop("websocket", step)

    async def errors(self) -> None:
        async def step(session: Session) -> None:
            if self.rng.random() < 0.5:
                path = self.next_path("unknown-host")
                own_answer(await session.exchange(request(b"GET", path, UNKNOWN_HOST)), 404, path)
            else:
                path = self.next_path("dead-endpoint")
                own_answer(await session.exchange(request(b"GET", path, DEAD_HOST)), 502, path)

        await self._loop("error-404-502", step)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for worker in (self.keepalive, self.keepalive, self.new_connection, self.upload,
                           self.download, self.websocket, self.errors):  # fmt: skip
                group.create_task(worker())


def chunked(body: bytes, rng: random.Random) -> bytes:
    """`body` as a chunked request body, cut at random sizes."""
    out = bytearray()
    pos = 0
    while pos < len(body):
        size = min(rng.randint(1, 256 * 1024), len(body) - pos)
        out += b"%x\r\n%s\r\n" % (size, body[pos : pos + size])
        pos += size
    out += b"0\r\n\r\n"
    return bytes(out)


# --------------------------------------------------------------------------- the soak


class Soak:
    """One ingressd, its backends, and the phases: warm-up, measure, soak, measure."""

    def __init__(self, workdir: Path, rng: random.Random) -> None:
        self.workdir = workdir
        self.rng = rng
        self.backends: list[Backend] = []
        self.dead_port = free_dead_port()
        self.proxy: Ingressd | None = None
        self.variant = 0

    async def __aenter__(self) -> Soak:
        for name in ("first", "second", "third"):
            self.backends.append(await Backend(name).start())
        config = manifests.write(self.workdir / "soak.yaml", self.objects())
        self.proxy = Ingressd(config)
        await asyncio.to_thread(self.proxy.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.proxy is not None and self.proxy.proc is not None:
            code = await asyncio.to_thread(self.proxy.stop)
            if code != 0 and exc_info[0] is None:
                raise RuntimeError(f"ingressd exited {code}:\n" + "\n".join(self.proxy.lines))
        for backend in self.backends:
            await backend.stop()

    def objects(self) -> list[dict[str, object]]:
        return objects(self.backends, self.dead_port, self.variant)

    @property
    def ingressd(self) -> Ingressd:
        assert self.proxy is not None
        return self.proxy

    async def reload(self, variant: int) -> None:
        """Rewrite the config, SIGHUP, wait for ingressd to confirm it."""
        proxy = self.ingressd
        self.variant = variant
        start = len(proxy.lines)
        manifests.write(proxy.config, self.objects())
        proxy.signal(signal.SIGHUP)
        await asyncio.to_thread(proxy.wait_for_line, "reloaded:", 10.0, start)

    async def reloader(self, tally: Tally, deadline: float) -> None:
        """A new config every second until `deadline`."""
        tick = time.monotonic()
        while True:
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            if time.monotonic() >= deadline:
                return
            await self.reload_counted(self.variant + 1, tally)

    async def reload_counted(self, variant: int, tally: Tally) -> None:
        try:
            await self.reload(variant)
            tally.reloads += 1
        except AssertionError as exc:  # no "reloaded:" line in time
            tally.failures.append(f"reload: {str(exc)[:300]}")

    async def phase(self, seconds: float, tally: Tally) -> None:
        """All kinds of traffic and the reloads, for `seconds`."""
        deadline = time.monotonic() + seconds
        traffic = Traffic(self.ingressd.ports["http"], tally, self.rng, deadline)
        async with asyncio.TaskGroup() as group:
            group.create_task(traffic.run())
            group.create_task(self.reloader(tally, deadline))

    async def settled(self, tally: Tally) -> Sample:
        """ingressd's footprint once its connections have closed (fd count stable).

        Idle pooled upstream connections legitimately hold descriptors until 60 s
        idle, as many as the traffic's peak concurrency: a reload without endpoints
        retires every pool first, then the first config comes back.
        """
        await self.reload_counted(PARKED, tally)
        await self.reload_counted(0, tally)
        proxy = self.ingressd
        previous = -1
        stable = 0
        for _ in range(50):  # at most 5 s
            fds = proxy.open_fds()
            stable = stable + 1 if fds == previous else 0
            if stable >= 3:
                break
            previous = fds
            await asyncio.sleep(0.1)
        return Sample(rss_kib=proxy.rss_kib(), fds=proxy.open_fds())


async def run_soak(
    workdir: Path, seconds: float, *, warmup: float = 3.0, seed: int | None = None
) -> SoakReport:
    """Start backends and ingressd in `workdir`, warm up, soak for `seconds`, report."""
    rng = random.Random(seed)
    async with Soak(workdir, rng) as soak:
        warm = Tally()
        await soak.phase(warmup, warm)
        start = await soak.settled(warm)
        tally = Tally(failures=[f"warm-up {failure}" for failure in warm.failures])
        began = time.monotonic()
        await soak.phase(seconds, tally)
        elapsed = time.monotonic() - began
        end = await soak.settled(tally)
    return SoakReport(elapsed, tally, start, end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="soak duration (60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up before measuring (3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    with tempfile.TemporaryDirectory(prefix="ingressd-soak-") as workdir:
        report = asyncio.run(run_soak(Path(workdir), args.seconds, warmup=args.warmup, seed=seed))
    print(report.summary())
    print(f"seed {seed}")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
