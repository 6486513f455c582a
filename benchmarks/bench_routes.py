"""Route-table benchmark: load, compile, memory and lookup cost for 10 to 10,000 Ingresses.

    .venv/bin/python benchmarks/bench_routes.py [--sizes 10,1000,10000]

For each size it writes a realistic manifest (not timed) into a temporary
directory, then measures `load_config`, `compile_routes`, the memory of the
Config and of the compiled table (tracemalloc), and `RouteTable.match` over a
fixed mix of 100,000 requests.  It prints a table and a PASS/FAIL verdict per
target (see benchmarks/README.md).  It is a benchmark, not a test: the exit
status is 0 whatever the verdicts.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from ingressd.config import load_config
from ingressd.model import Config
from ingressd.routes import RouteTable, compile_routes, normalize_path

T = TypeVar("T")

SEED = 20261128
LOOKUPS = 100_000
LOOKUP_REPEATS = 5
INGRESS_CLASS = "nginx"

# The route table's targets (see benchmarks/README.md).
COMPILE_TARGET_S = 2.0  # 10,000 Ingresses
MEMORY_TARGET_MB = 200.0  # compiled table of 10,000 Ingresses
LOOKUP_RATIO_TARGET = 1.5  # lookup at 10,000 / lookup at 10
HOT_SITES = 5  # the diagnostic small working set: this many sites of each kind
TARGET_SIZE = 10_000

MB = 1024 * 1024

# --- manifest generation (not timed) ------------------------------------------

_EXACT_WORDS = ("status", "version", "me", "session")
_WILDCARD_WORDS = ("shop", "blog", "docs", "portal")
_DUMMY_PEM = "-----BEGIN CERTIFICATE-----\\nMIIBbenchmarkplaceholder\\n-----END CERTIFICATE-----\\n"
_DUMMY_KEY = "-----BEGIN PRIVATE KEY-----\\nMIIBbenchmarkplaceholder\\n-----END PRIVATE KEY-----\\n"


@dataclass(frozen=True, slots=True)
class Site:
    """A served Ingress with hosts, as the lookup mix needs to know it."""

    index: int
    hosts: tuple[str, ...]  # exact hosts, or the one "*.tenant-<k>.example.com"
    wildcard: bool
    exact_path: str  # its Exact path, always three segments deep
    has_root: bool  # a "/" Prefix rule
    has_default: bool  # a defaultBackend


@dataclass(slots=True)
class Manifest:
    directory: str
    ingresses: int = 0
    documents: int = 0
    size_bytes: int = 0
    sites: list[Site] = field(default_factory=list)
    no_host: list[str] = field(default_factory=list)  # names of served host-less Ingresses


@dataclass(frozen=True, slots=True)
class _Path:
    path: str
    path_type: str
    service: str
    port: str  # "name: http" or "number: 80"


def _escaped(pem: bytes) -> str:
    """PEM as a double-quoted YAML scalar's content."""
    return pem.decode().replace("\n", "\\n")


def _timestamp(index: int, rng: random.Random) -> str:
    base = datetime(2023, 1, 2, tzinfo=UTC)
    moment = base + timedelta(minutes=37 * index, seconds=rng.randrange(60))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _service_yaml(
    name: str, namespace: str, app: str, ports: Sequence[tuple[str, int, str]]
) -> str:
    port_lines = "".join(
        f"    - name: {port_name}\n"
        f"      protocol: TCP\n"
        f"      port: {port}\n"
        f"      targetPort: {target}\n"
        for port_name, port, target in ports
    )
    return (
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        f"  labels: {{app.kubernetes.io/name: {app}, app.kubernetes.io/part-of: {namespace}}}\n"
        "spec:\n"
        "  type: ClusterIP\n"
        f"  selector: {{app.kubernetes.io/name: {app}}}\n"
        "  ports:\n" + port_lines
    )


def _slice_yaml(
    service: str,
    namespace: str,
    ports: Sequence[tuple[str, int]],
    rng: random.Random,
    subnet: int,
) -> str:
    suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
    endpoints = []
    for _ in range(rng.choice((2, 2, 3))):
        ready = rng.random() >= 0.12  # about one endpoint in eight is not ready
        terminating = not ready and rng.random() < 0.5
        ip = f"10.{subnet % 250}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        pod = f"{service}-{rng.randrange(16**8):08x}-{rng.randrange(16**5):05x}"
        endpoints.append(
            f'  - addresses: ["{ip}"]\n'
            f"    conditions: {{ready: {str(ready).lower()}, serving: "
            f"{str(ready or terminating).lower()}, terminating: {str(terminating).lower()}}}\n"
            f"    nodeName: node-{rng.randrange(40)}\n"
            f"    targetRef: {{kind: Pod, namespace: {namespace}, name: {pod}}}\n"
        )
    port_lines = "".join(
        f"  - name: {name}\n    protocol: TCP\n    port: {port}\n" for name, port in ports
    )
    return (
        "apiVersion: discovery.k8s.io/v1\n"
        "kind: EndpointSlice\n"
        "metadata:\n"
        f"  name: {service}-{suffix}\n"
        f"  namespace: {namespace}\n"
        "  labels:\n"
        f"    kubernetes.io/service-name: {service}\n"
        "    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n"
        "addressType: IPv4\n"
        "ports:\n" + port_lines + "endpoints:\n" + "".join(endpoints)
    )


def _paths_yaml(paths: Sequence[_Path], indent: str) -> str:
    return "".join(
        f"{indent}- path: {p.path}\n"
        f"{indent}  pathType: {p.path_type}\n"
        f"{indent}  backend:\n"
        f"{indent}    service:\n"
        f"{indent}      name: {p.service}\n"
        f"{indent}      port: {{{p.port}}}\n"
        for p in paths
    )


def _ingress_yaml(
    name: str,
    namespace: str,
    created: str | None,
    class_name: str | None,
    annotations: Sequence[tuple[str, str]],
    hosts: Sequence[str | None],
    paths: Sequence[_Path],
    default_backend: _Path | None,
    tls_secret: str | None,
) -> str:
    lines = [
        "apiVersion: networking.k8s.io/v1\n",
        "kind: Ingress\n",
        "metadata:\n",
        f"  name: {name}\n",
        f"  namespace: {namespace}\n",
    ]
    if created is not None:
        lines.append(f'  creationTimestamp: "{created}"\n')
    lines.append(f"  labels: {{app.kubernetes.io/name: {name}}}\n")
    if annotations:
        lines.append("  annotations:\n")
        lines.extend(f'    {key}: "{value}"\n' for key, value in annotations)
    lines.append("spec:\n")
    if class_name is not None:
        lines.append(f"  ingressClassName: {class_name}\n")
    if default_backend is not None:
        lines.append(
            "  defaultBackend:\n"
            f"    service: {{name: {default_backend.service}, port: {{{default_backend.port}}}}}\n"
        )
    if tls_secret is not None:
        host_list = ", ".join(f'"{h}"' for h in hosts if h is not None)
        lines.append(f"  tls:\n  - hosts: [{host_list}]\n    secretName: {tls_secret}\n")
    lines.append("  rules:\n")
    for host in hosts:
        if host is None:
            lines.append("  - http:\n")
        else:
            lines.append(f'  - host: "{host}"\n    http:\n')
        lines.append("      paths:\n" + _paths_yaml(paths, "      "))
    return "".join(lines)


def _port(service: str, named: bool) -> str:
    """A backend port by name, or by the number that Service gives that name."""
    if named:
        return "name: http"
    return "number: 8080" if service.endswith("-api") else "number: 80"


def generate_manifest(
    size: int, directory: str, tls_pair: tuple[bytes, bytes] | None = None
) -> Manifest:
    """Write `size` Ingresses with their Services and EndpointSlices; deterministic per size.

    The TLS Secrets hold placeholder PEM (routes never parse it) unless `tls_pair`
    gives a certificate and key, which a server needs.

    Per index ``i`` (namespace ``team-<i mod N>``):
    - about 0.1% host-less (``i % 997 == 3``), 5% wildcard ``*.tenant-<i>.example.com``
      (``i % 20 == 1``), the rest ``app-<i>.team-<j>.example.com`` (10% also ``.example.org``);
    - 3-6 paths: ``/api/v1/users`` Prefix, one three-segment Exact path, then 1-4 of
      ``/static``, ``/healthz``, ``/assets/img/icons``, ``/api/v2/orders``, ... (even ``i``
      always also get ``/`` Prefix);
    - backends by port name or number, 0.5% to a Service that does not exist (503);
    - ingressClassName ``nginx`` (11% none, which the default IngressClass takes;
      1% ``traefik``, not served); TLS on a third; a few annotations and defaultBackends.
    """
    rng = random.Random(SEED)
    namespaces = max(3, min(50, size // 200))
    files: dict[str, list[str]] = {f"team-{j}": [] for j in range(namespaces)}
    manifest = Manifest(directory)

    pem, key = (_DUMMY_PEM, _DUMMY_KEY) if tls_pair is None else map(_escaped, tls_pair)
    for namespace, documents in files.items():
        documents.append(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\n"
            f"metadata:\n  name: {namespace}-tls\n  namespace: {namespace}\n"
            f'stringData:\n  tls.crt: "{pem}"\n  tls.key: "{key}"\n'
        )

    for i in range(size):
        j = i % namespaces
        namespace = f"team-{j}"
        name = f"app-{i}"
        documents = files[namespace]
        no_host = i % 997 == 3
        wildcard = not no_host and i % 20 == 1
        class_name: str | None = INGRESS_CLASS
        if i % 100 == 50:
            class_name = "traefik"
        elif i % 9 == 4:
            class_name = None
        served = class_name != "traefik"

        web = f"{name}-web"
        has_api_service = i % 4 in (0, 1)
        api = f"{name}-api" if has_api_service else web
        if i % 200 == 7:
            api = f"{name}-api-v0"  # a stale reference: no such Service

        if no_host:
            hosts: list[str | None] = [None]
            paths = [
                _Path(f"/internal/{name}", "Prefix", web, "name: http"),
                _Path(f"/internal/{name}/healthz", "Exact", web, "number: 80"),
                _Path(f"/metrics/{name}", "Exact", web, "name: http"),
            ]
            exact_path = ""
        else:
            if wildcard:
                hosts = [f"*.tenant-{i}.example.com"]
            else:
                hosts = [f"app-{i}.team-{j}.example.com"]
                if i % 10 == 5:
                    hosts.append(f"app-{i}.team-{j}.example.org")
            exact_path = f"/api/v1/{rng.choice(_EXACT_WORDS)}"
            paths = [
                _Path("/api/v1/users", "Prefix", api, _port(api, rng.random() < 0.5)),
                _Path(exact_path, "Exact", api, _port(api, rng.random() < 0.5)),
            ]
            pool = [
                _Path("/static", "Prefix", web, _port(web, True)),
                _Path("/healthz", "Exact", web, _port(web, False)),
                _Path("/assets/img/icons", "Prefix", web, _port(web, True)),
                _Path("/api/v2/orders", "Prefix", api, _port(api, True)),
                _Path(f"/{name}/dashboard", "Prefix", web, _port(web, False)),
                _Path("/login", "Exact", web, _port(web, True)),
                _Path("/.well-known/security.txt", "Exact", web, _port(web, True)),
            ]
            extra = rng.randint(1, 4)
            if i % 2 == 0:
                paths.append(_Path("/", "Prefix", web, _port(web, True)))
                extra -= 1
            paths.extend(rng.sample(pool, extra))

        default_backend = None
        if not no_host and i % 25 == 0:
            default_backend = _Path("", "", web, "name: http")
        annotations = [("meta.helm.sh/release-name", name)]
        if i % 4 == 0:
            annotations.append(("nginx.ingress.kubernetes.io/ssl-redirect", "false"))
        if i % 7 == 0:
            annotations.append(("nginx.ingress.kubernetes.io/proxy-body-size", "8m"))
        if i % 11 == 0:
            annotations.append(("nginx.ingress.kubernetes.io/proxy-read-timeout", "120"))
        tls = f"{namespace}-tls" if not no_host and i % 3 == 0 else None
        created = None if i % 50 == 49 else _timestamp(i, rng)

        documents.append(
            _ingress_yaml(
                name,
                namespace,
                created,
                class_name,
                annotations,
                hosts,
                paths,
                default_backend,
                tls,
            )
        )
        documents.append(
            _service_yaml(web, namespace, web, (("http", 80, "http"), ("metrics", 9102, "9102")))
        )
        documents.append(_slice_yaml(web, namespace, (("http", 8080), ("metrics", 9102)), rng, i))
        if has_api_service:
            api_name = f"{name}-api"
            documents.append(
                _service_yaml(
                    api_name, namespace, api_name, (("http", 8080, "8080"), ("grpc", 9090, "grpc"))
                )
            )
            documents.append(
                _slice_yaml(api_name, namespace, (("http", 8080), ("grpc", 9090)), rng, i)
            )

        manifest.ingresses += 1
        if not served:
            continue
        if no_host:
            manifest.no_host.append(name)
        else:
            manifest.sites.append(
                Site(
                    index=i,
                    hosts=tuple(h for h in hosts if h is not None),
                    wildcard=wildcard,
                    exact_path=exact_path,
                    has_root=i % 2 == 0,
                    has_default=default_backend is not None,
                )
            )

    classes = [
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\n"
        '  annotations:\n    ingressclass.kubernetes.io/is-default-class: "true"\n'
        "spec:\n  controller: k8s.io/ingress-nginx\n",
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: traefik\n"
        "spec:\n  controller: traefik.io/ingress-controller\n",
    ]
    outputs = {"00-ingress-classes.yaml": classes}
    outputs.update({f"{ns}.yaml": docs for ns, docs in files.items()})
    for filename, docs in outputs.items():
        text = "---\n".join(docs)
        with open(os.path.join(directory, filename), "w", encoding="utf-8") as handle:
            handle.write(text)
        manifest.documents += len(docs)
        manifest.size_bytes += len(text.encode())
    return manifest


# --- the lookup mix -------------------------------------------------------------

Request = tuple[str, str]
Expected = tuple[str | None, str | None] | None  # (Route.host, Route.path) or None: 404


@dataclass(frozen=True, slots=True)
class Kind:
    label: str
    percent: int


# The same proportions and path depths at every size: only the table changes.
KINDS = (
    Kind("exact host, Exact path (3 segments)", 25),
    Kind("exact host, deep Prefix (5 segments, match at 3)", 30),
    Kind("exact host, falls back to '/' Prefix (3 segments)", 10),
    Kind("wildcard host, deep Prefix (5 segments)", 10),
    Kind("wildcard host, Exact path (3 segments)", 5),
    Kind("unknown host, host-less rule (4 segments)", 5),
    Kind("miss -> 404: unknown host (5 segments)", 10),
    Kind("miss -> 404: known host, no path matches (5 segments)", 5),
)


@dataclass(frozen=True, slots=True)
class _Pools:
    """The sites each kind of request draws from."""

    exact: list[Site]
    with_root: list[Site]
    wildcard: list[Site]
    path_miss: list[Site]  # no "/" rule and no defaultBackend: an unknown path is a 404
    no_host: list[str]

    @classmethod
    def of(cls, manifest: Manifest, hot: int | None = None) -> _Pools:
        """Every site, or only the first `hot` of each pool (a small working set)."""
        exact = [s for s in manifest.sites if not s.wildcard]
        return cls(
            exact=exact[:hot],
            with_root=[s for s in exact if s.has_root][:hot],
            wildcard=[s for s in manifest.sites if s.wildcard][:hot],
            path_miss=[s for s in exact if not s.has_root and not s.has_default][:hot],
            no_host=manifest.no_host[:hot],
        )


def _request(kind: int, serial: int, pools: _Pools, rng: random.Random) -> tuple[Request, Expected]:
    n = rng.randrange(1_000_000)
    query = "?page=2" if serial % 10 == 0 else ""
    if kind == 0:
        site = rng.choice(pools.exact)
        host = rng.choice(site.hosts)
        return (host, site.exact_path), (host, site.exact_path)
    if kind == 1:
        site = rng.choice(pools.exact)
        host = rng.choice(site.hosts)
        return (host, f"/api/v1/users/{n}/orders{query}"), (host, "/api/v1/users")
    if kind == 2:
        site = rng.choice(pools.with_root)
        host = rng.choice(site.hosts)
        return (host, f"/products/{n}/reviews{query}"), (host, "/")
    if kind in (3, 4):
        site = rng.choice(pools.wildcard)
        pattern = site.hosts[0]
        host = f"{rng.choice(_WILDCARD_WORDS)}-{n}{pattern[1:]}"
        if kind == 3:
            return (host, f"/api/v1/users/{n}/orders{query}"), (pattern, "/api/v1/users")
        return (host, site.exact_path), (pattern, site.exact_path)
    if kind == 5:
        name = rng.choice(pools.no_host)
        prefix = f"/internal/{name}"
        return (f"web-{n}.example.net", f"{prefix}/jobs/{n}{query}"), (None, prefix)
    if kind == 6:
        host = f"app-{n}.team-{n % 97}.example.net"
        return (host, f"/api/v1/users/{n}/orders{query}"), None
    site = rng.choice(pools.path_miss)
    return (rng.choice(site.hosts), f"/catalog/{n}/items/{n % 13}/view{query}"), None


def build_requests(
    manifest: Manifest, hot: int | None = None
) -> tuple[list[Request], list[Expected]]:
    """`LOOKUPS` requests in the fixed proportions of `KINDS`, shuffled with a fixed seed.

    With `hot`, the requests go to the first `hot` sites of each kind only, at
    every size: the same small working set, so the table's size is the only change.
    """
    rng = random.Random(SEED + 1)
    pools = _Pools.of(manifest, hot)
    pairs: list[tuple[Request, Expected]] = []
    for kind, spec in enumerate(KINDS):
        for serial in range(LOOKUPS * spec.percent // 100):
            pairs.append(_request(kind, serial, pools, rng))
    rng.shuffle(pairs)
    # Each request gets its own host and path objects, allocated in request order, like
    # strings fresh from the HTTP parser.  Otherwise the host strings would be shared by
    # many requests at size 10 and scattered at 10,000: a workload difference, not a table one.
    requests = [(_fresh(host), _fresh(path)) for (host, path), _ in pairs]
    return requests, [p[1] for p in pairs]


def _fresh(text: str) -> str:
    """An equal string that is a new object (no shared cached hash, no shared memory)."""
    return text.encode().decode()


def check_requests(table: RouteTable, requests: list[Request], expected: list[Expected]) -> None:
    """Every request routes where the generator meant it to, or the numbers mean nothing."""
    for (host, path), want in zip(requests, expected, strict=True):
        route = table.match(host, normalize_path(path))
        got = None if route is None else (route.host, route.path)
        if got != want:
            raise SystemExit(f"benchmark bug: {host}{path} routed to {got}, expected {want}")


def time_lookups(table: RouteTable, requests: list[Request]) -> float:
    """Seconds for one pass over `requests`, as the proxy calls it."""
    match = table.match
    normalize = normalize_path
    start = time.perf_counter()
    for host, path in requests:
        match(host, normalize(path))
    return time.perf_counter() - start


# --- measurements ---------------------------------------------------------------


@dataclass(slots=True)
class Result:
    size: int
    manifest: Manifest
    ingresses: int = 0  # served after class filtering
    routes: int = 0
    warnings: int = 0
    load_s: float = 0.0
    compile_s: float = 0.0
    config_mb: float = 0.0
    config_peak_mb: float = 0.0
    table_mb: float = 0.0
    table_peak_mb: float = 0.0
    lookup_samples: list[float] = field(default_factory=list)  # ns per lookup, one per pass
    hot_samples: list[float] = field(default_factory=list)  # the same, `hot_requests`
    table: RouteTable | None = None
    requests: list[Request] = field(default_factory=list)
    hot_requests: list[Request] = field(default_factory=list)  # HOT_SITES sites only

    @property
    def lookup_ns(self) -> float:
        return min(self.lookup_samples)


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Best wall time of `repeat` runs."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        result = None  # let the previous result go before the next run
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def traced(fn: Callable[[], T]) -> tuple[float, float, T]:
    """(retained MB, peak MB, result) of `fn` under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current / MB, peak / MB, result


def count_routes(table: RouteTable) -> int:
    routes = sum(
        len(list(vhost.routes())) + (vhost.default is not None) for vhost in table.virtual_hosts()
    )
    return routes + (table.catch_all is not None)


def measure(size: int, directory: str, repeat: int) -> tuple[Result, Config]:
    manifest = generate_manifest(size, directory)
    result = Result(size, manifest)
    certs = os.path.join(directory, "certs")  # empty: every secret is a Secret object
    os.makedirs(certs, exist_ok=True)

    def load() -> Config:
        return load_config([directory], certs_dir=certs)

    load_repeat = repeat if size < TARGET_SIZE else 1
    result.load_s, config = best_of(load_repeat, load)

    def compile_() -> RouteTable:
        return compile_routes(config, ingress_class=INGRESS_CLASS)

    result.compile_s, table = best_of(repeat, compile_)
    del table
    result.config_mb, result.config_peak_mb, _ = traced(load)
    result.table_mb, result.table_peak_mb, table = traced(compile_)
    result.table = table
    result.ingresses = len(table.ingresses)
    result.routes = count_routes(table)
    result.warnings = len(config.warnings) + len(table.warnings)
    result.requests, expected = build_requests(manifest)
    check_requests(table, result.requests, expected)
    result.hot_requests, expected = build_requests(manifest, HOT_SITES)
    check_requests(table, result.hot_requests, expected)
    return result, config


def print_profile(title: str, fn: Callable[[], object], sorts: Sequence[str]) -> None:
    """Profile one call of `fn`; print its top 10 entries for each sort key."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    fn()
    profiler.disable()
    for sort in sorts:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(sort).print_stats(10)
        body = out.getvalue()
        # Drop the preamble ("Ordered by", "List reduced") down to the column header.
        start = body.find("   ncalls")
        print(f"\n{title} (cProfile, top 10 by {sort})")
        print(body[start:].rstrip() if start >= 0 else body.rstrip())


def profile(size: int, directory: str, config: Config, *, load_dominates: bool) -> None:
    if load_dominates:
        certs = os.path.join(directory, "certs")
        print_profile(
            f"load_config at {size:,} Ingresses",
            partial(load_config, [directory], certs_dir=certs),
            ("cumulative", "tottime"),
        )
    print_profile(
        f"compile_routes at {size:,} Ingresses",
        partial(compile_routes, config, ingress_class=INGRESS_CLASS),
        ("tottime",),
    )


# --- report -----------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(results: list[Result]) -> None:
    base = results[0]
    print()
    header = (
        f"{'size':>6} {'ingresses':>9} {'routes':>7} {'load s':>8} {'compile s':>9} "
        f"{'load+compile s':>14} {'table MB':>8} {'config MB':>9} {'lookup ns':>9} "
        f"{'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.size:>6} {r.ingresses:>9} {r.routes:>7} {r.load_s:>8.3f} {r.compile_s:>9.3f} "
            f"{r.load_s + r.compile_s:>14.3f} {r.table_mb:>8.1f} {r.config_mb:>9.1f} "
            f"{r.lookup_ns:>9.0f} {r.lookup_ns / base.lookup_ns:>6.2f}"
        )
    print(
        f"\nratio: lookup ns / lookup ns at size {base.size}; lookup ns is the best of "
        f"{LOOKUP_REPEATS} passes over {LOOKUPS:,} requests, normalize_path included."
    )
    print("table MB / config MB: tracemalloc, memory still held after compile_routes / load_config")
    for r in results:
        samples = sorted(r.lookup_samples)
        print(
            f"  size {r.size}: {r.manifest.documents} documents, "
            f"{r.manifest.size_bytes / MB:.1f} MB of YAML, {r.warnings} warnings; "
            f"peak during load {r.config_peak_mb:.1f} MB, during compile {r.table_peak_mb:.1f} MB; "
            f"lookup ns best/median/worst {samples[0]:.0f}/{samples[len(samples) // 2]:.0f}/"
            f"{samples[-1]:.0f}"
        )

    target = next((r for r in results if r.size == TARGET_SIZE), None)
    print()
    if target is None:
        print(f"Verdicts: n/a (the targets are for size {TARGET_SIZE}; add it to --sizes)")
        return
    total = target.load_s + target.compile_s
    ratio = target.lookup_ns / base.lookup_ns
    lines = [
        (
            target.compile_s < COMPILE_TARGET_S,
            f"compile_routes, {TARGET_SIZE:,} Ingresses < {COMPILE_TARGET_S:g} s",
            f"{target.compile_s:.3f} s",
        ),
        (
            total < COMPILE_TARGET_S,
            f"load_config + compile_routes, {TARGET_SIZE:,} Ingresses < {COMPILE_TARGET_S:g} s",
            f"{total:.3f} s",
        ),
        (
            target.table_mb < MEMORY_TARGET_MB,
            f"compiled table, {TARGET_SIZE:,} Ingresses < {MEMORY_TARGET_MB:g} MB",
            f"{target.table_mb:.1f} MB (peak {target.table_peak_mb:.1f} MB)",
        ),
        (
            target.table_mb + target.config_mb < MEMORY_TARGET_MB,
            f"table + Config, {TARGET_SIZE:,} Ingresses < {MEMORY_TARGET_MB:g} MB",
            f"{target.table_mb + target.config_mb:.1f} MB",
        ),
    ]
    if base.size == 10:
        lines.append(
            (
                ratio <= LOOKUP_RATIO_TARGET,
                f"lookup at {TARGET_SIZE:,} within {LOOKUP_RATIO_TARGET:g}x of lookup at 10",
                f"{ratio:.2f}x ({target.lookup_ns:.0f} ns vs {base.lookup_ns:.0f} ns)",
            )
        )
        hot_ratio = min(target.hot_samples) / min(base.hot_samples)
        print(
            f"diagnostic: the same mix over only {HOT_SITES} sites of each kind at every size "
            f"(a cache-resident working set): {hot_ratio:.2f}x "
            f"({min(target.hot_samples):.0f} ns vs {min(base.hot_samples):.0f} ns); "
            "the rest of the uniform mix's ratio is memory latency"
        )
    else:
        print("lookup ratio: n/a (the target compares with size 10; add it to --sizes)")
    print("Verdicts:")
    for ok, what, value in lines:
        print(f"  {_verdict(ok)}  {what}: {value}")
    if target.load_s > target.compile_s:
        print(
            f"  note: load_config is {target.load_s / total:.0%} of load+compile "
            f"at {TARGET_SIZE:,}; see the profile above."
        )


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers such as 10,1000,10000: {exc}") from exc
    if not sizes or sizes[0] < 10:
        raise argparse.ArgumentTypeError("sizes must be >= 10")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[10, 1_000, 10_000],
        help="comma-separated Ingress counts (default: 10,1000,10000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="best of N for load and compile (load at 10,000+: once)",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help=f"skip the cProfile runs at {TARGET_SIZE:,}"
    )
    args = parser.parse_args(argv)

    print(
        f"bench_routes: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, sizes {args.sizes}"
    )
    print(f"load average: {_loadavg()}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-routes-") as tmp:
        for size in args.sizes:
            directory = os.path.join(tmp, str(size))
            os.makedirs(directory)
            print(f"size {size}: generating, loading, compiling ...", flush=True)
            result, config = measure(size, directory, args.repeat)
            print(
                f"  load {result.load_s:.3f} s, compile {result.compile_s:.3f} s, "
                f"{result.routes} routes, table {result.table_mb:.1f} MB",
                flush=True,
            )
            results.append(result)
            if size == TARGET_SIZE and not args.no_profile:
                profile(size, directory, config, load_dominates=result.load_s > result.compile_s)
            del config

    # Interleave the sizes so machine noise (2 shared cores) hits them alike.
    print(
        f"\nlookups: {LOOKUP_REPEATS} rounds x {len(results)} sizes x {LOOKUPS:,} ...", flush=True
    )
    print(f"load average before lookups: {_loadavg()}")
    for _ in range(LOOKUP_REPEATS):
        for r in results:
            assert r.table is not None
            gc.collect()
            elapsed = time_lookups(r.table, r.requests)
            r.lookup_samples.append(elapsed / len(r.requests) * 1e9)
            elapsed = time_lookups(r.table, r.hot_requests)
            r.hot_samples.append(elapsed / len(r.hot_requests) * 1e9)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
