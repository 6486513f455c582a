"""CPU cost of ingressd's per-request Python code, without sockets.

Drives a real `ClientConnection` and `Exchange` with in-memory transports
(the backend's answer is fed straight back), so the number is the Python
work per proxied request, free of kernel and scheduler noise.  Use it with
``--profile`` to find hot spots before optimising:

    .venv/bin/python benchmarks/bench_codepath.py [--requests 20000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import policy_routes
import uvloop

from ingressd import http1
from ingressd.accesslog import AccessLog
from ingressd.downstream import ClientConnection
from ingressd.policy import BasicAuthCheck
from ingressd.pool import State, UpstreamConnection
from ingressd.runtime import build_runtime
from ingressd.server import ProxyServer
from ingressd.settings import Settings
from ingressd.tls import default_certificate

CONFIG = """
apiVersion: v1
kind: Service
metadata: {name: be}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: be}
subsets: [{addresses: [{ip: 127.0.0.1}], ports: [{name: http, port: 9}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: be}
spec:
  rules:
  - host: bench.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: be, port: {number: 80}}}}]}
"""
ROUTES = ("plain", "canary", *policy_routes.ANNOTATED)  # see policy_routes.py


def config_for(route: str) -> str:
    """The benchmark's configuration with the route's policy (--route)."""
    if route == "canary":
        return CONFIG + policy_routes.canary("bench.example", 9)
    if route == "plain":
        return CONFIG
    path, kind, annotation = policy_routes.ANNOTATED[route]
    secret = policy_routes.BASIC_SECRET if route == "basic" else ""
    return (
        CONFIG.replace(
            "metadata: {name: be}\nspec:\n  rules:",
            f"metadata:\n  name: be\n  annotations: {{{annotation}}}\nspec:\n  rules:",
        ).replace("{path: /, pathType: Prefix", f"{{path: {path}, pathType: {kind}")
        + secret
    )


REQUEST = (
    b"GET /index.html HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 00:45:22 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 25\r\nConnection: keep-alive\r\n\r\n"
    b"hello from nginx backend\n"
)


class MemoryTransport(asyncio.Transport):
    """Collects writes; `on_write` lets the fake backend answer."""

    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.written = 0
        self.on_write: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        if self.on_write is not None:
            self.on_write(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def run(
    requests: int,
    profile: bool,
    access_log: str | None = None,
    metrics: bool = True,
    route: str = "plain",
) -> float:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(config_for(route))
        settings = Settings(config_paths=(str(path),))
        server = ProxyServer(settings, build_runtime(settings, default_certificate()), loop)
    if access_log is not None:
        server.access_log = AccessLog(access_log, "text", loop)
    if not metrics:  # the baseline of the observability cost: nothing counted
        server.stats.count_request = lambda *args: None  # type: ignore[method-assign]
    client = ClientConnection(server, http1.Listener(b"http", 8080))
    client_transport = MemoryTransport(("127.0.0.1", 50000))
    client.connection_made(client_transport)
    endpoint = next(iter(server.runtime.endpoints))
    pool = server.upstreams.pool(endpoint)
    upstream = UpstreamConnection(pool)
    upstream_transport = MemoryTransport(("127.0.0.1", 9))
    upstream.connection_made(upstream_transport)
    upstream.state = State.ACTIVE
    pool.release(upstream)
    answers: list[bytes] = []
    upstream_transport.on_write = lambda data: answers.append(RESPONSE)

    outbox = server.outbox
    request = REQUEST
    if route == "basic":
        authorization = policy_routes.BASIC_AUTHORIZATION
        request = REQUEST.replace(b"\r\n\r\n", b"\r\nAuthorization: " + authorization + b"\r\n\r\n")
        remember_credentials(server, authorization)

    def one() -> None:  # each call is what one loop iteration would send (outbox.py)
        client.data_received(request)
        outbox.flush()
        upstream.data_received(answers.pop())
        outbox.flush()

    for _ in range(1000):
        one()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    start = time.process_time()
    for _ in range(requests):
        one()
    elapsed = time.process_time() - start
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    assert client_transport.written > 0
    return elapsed / requests * 1e6


def remember_credentials(server: ProxyServer, authorization: bytes) -> None:
    """What a client's first request leaves behind (its check ran in a worker thread)."""
    route = server.runtime.table.match("bench.example", "/")
    assert route is not None
    (check,) = [step for step in route.steps if isinstance(step, BasicAuthCheck)]
    assert check._check(authorization, "bench", "bench") is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--route",
        choices=ROUTES,
        default="plain",
        help="the route's policy: none, a canary rule, a regex rewrite, a request step",
    )
    parser.add_argument(
        "--access-log-cost",
        action="store_true",
        help="alternate runs without metrics and access log, with metrics, with both",
    )
    args = parser.parse_args()
    if not args.access_log_cost:
        micros = uvloop.run(run(args.requests, args.profile, route=args.route))
        print(f"{micros:.1f} µs of CPU per proxied request (Python path, no sockets)")
        return
    bare: list[float] = []
    counted: list[float] = []
    logged: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "access.log")
        for _ in range(5):
            bare.append(uvloop.run(run(args.requests, False, None, False)))
            counted.append(uvloop.run(run(args.requests, False, None, True)))
            logged.append(uvloop.run(run(args.requests, False, log, True)))
    med = statistics.median
    print(
        "Python path, µs per request (medians of 5 alternating runs): "
        f"metrics and access log off {med(bare):.1f}; metrics on {med(counted):.1f} "
        f"(+{med(counted) - med(bare):.1f}); metrics and access log to a file "
        f"{med(logged):.1f} (+{med(logged) - med(bare):.1f})"
    )


if __name__ == "__main__":
    main()
