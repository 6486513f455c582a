"""Counters the data path bumps, and the Prometheus collector that reads them at scrape time.

Owns: `Stats` (plain integers, dicts and fixed-bucket histograms: no locks, no
label look-ups beyond one dict key per request) and `Collector`, which turns
them and the server's live state into ``ingressd_*`` metric families when
``/metrics`` is scraped.  prometheus_client does the exposition format.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as _Collector

from . import __version__

if TYPE_CHECKING:
    from .server import ProxyServer

# Seconds; like ingress-nginx's request duration buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

# (namespace, ingress, service, canary): "" when no route matched; canary "true" when
# the canary side of a route served the request (its Ingress and service), else "false".
RouteLabels = tuple[str, str, str, str]
ServiceLabels = tuple[str, str]  # (namespace, service)


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets


_METHOD_CLASSES = {name.encode(): name for name in _METHODS}


def method_class(method: bytes) -> str:
    """The method as a label; "other" keeps the label set bounded."""
    return _METHOD_CLASSES.get(method, "other")


def status_class(status: int) -> str:
    return _STATUS_CLASSES[status // 100] if 100 <= status < 600 else "other"


@dataclass
class Stats:
    """Everything counted in the data path; read (never reset) by `Collector`."""

    requests: dict[tuple[RouteLabels, str, str], int] = field(default_factory=dict)
    request_seconds: dict[ServiceLabels, Histogram] = field(default_factory=dict)
    upstream_seconds: dict[ServiceLabels, Histogram] = field(default_factory=dict)
    bytes_in: dict[ServiceLabels, int] = field(default_factory=dict)
    bytes_out: dict[ServiceLabels, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    ejections: dict[str, int] = field(default_factory=dict)
    tls_handshakes: int = 0
    tls_handshake_errors: int = 0
    reloads_ok: int = 0
    reloads_failed: int = 0
    last_reload_ok: float = 0.0

    def count_request(
        self, route: RouteLabels, method: str, status: int, seconds: float,
        upstream_seconds: float | None, received: int, sent: int,
    ) -> None:  # fmt: skip
        key = (route, method, status_class(status))
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        service = (route[0], route[2])
        histogram = self.request_seconds.get(service)
        if histogram is None:
            histogram = self.request_seconds[service] = Histogram()
        histogram.observe(seconds)
        if upstream_seconds is not None:
            histogram = self.upstream_seconds.get(service)
            if histogram is None:
                histogram = self.upstream_seconds[service] = Histogram()
            histogram.observe(upstream_seconds)
        self.bytes_in[service] = self.bytes_in.get(service, 0) + received
        self.bytes_out[service] = self.bytes_out.get(service, 0) + sent

    @staticmethod
    def bump(counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1


class Collector(_Collector):
    """Reads `Stats` and the server's live state when Prometheus scrapes."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        for family in (self._requests, self._durations, self._bytes, self._upstreams,
                       self._connections, self._tls, self._config):  # fmt: skip
            yield from family()

    def _requests(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "ingressd_requests", "Requests answered, by route, method and status class.",
            labels=["namespace", "ingress", "service", "canary", "method", "status"],
        )  # fmt: skip
        for (route, method, status), value in self.server.stats.requests.items():
            family.add_metric([*route, method, status], value)
        yield family

    def _durations(self) -> Iterator[Metric]:
        stats = self.server.stats
        for name, data, text in (
            ("ingressd_request_duration_seconds", stats.request_seconds,
             "Time from the request head to the last response byte, by service."),
            ("ingressd_upstream_response_seconds", stats.upstream_seconds,
             "Time from sending the request upstream to the last response byte, by service."),
        ):  # fmt: skip
            family = HistogramMetricFamily(name, text, labels=["namespace", "service"])
            for (namespace, service), histogram in data.items():
                family.add_metric([namespace, service], histogram.cumulative(), histogram.total)
            yield family

    def _bytes(self) -> Iterator[Metric]:
        stats = self.server.stats
        for name, data, text in (
            ("ingressd_request_body_bytes", stats.bytes_in, "Request body bytes received."),
            ("ingressd_response_bytes", stats.bytes_out, "Response bytes sent to clients."),
        ):
            family = CounterMetricFamily(name, text, labels=["namespace", "service"])
            for (namespace, service), value in data.items():
                family.add_metric([namespace, service], value)
            yield family

    def _upstreams(self) -> Iterator[Metric]:
        stats = self.server.stats
        for name, data, text in (
            ("ingressd_upstream_connect_errors", stats.connect_errors,
             "Failed connection attempts to an endpoint."),
            ("ingressd_upstream_retries", stats.retries,
             "Requests retried on another endpoint after this one failed."),
            ("ingressd_upstream_ejections", stats.ejections,
             "Times an endpoint was marked down by passive health checks."),
        ):  # fmt: skip
            family = CounterMetricFamily(name, text, labels=["endpoint"])
            for endpoint, value in data.items():
                family.add_metric([endpoint], value)
            yield family
        upstreams = self.server.upstreams
        open_family = GaugeMetricFamily(
            "ingressd_upstream_connections", "Upstream connections by state.",
            labels=["endpoint", "state"],
        )  # fmt: skip
        for address, pool in upstreams.pools.items():
            open_family.add_metric([str(address), "open"], pool.opened)
            open_family.add_metric([str(address), "idle"], pool.idle_count)
        yield open_family

    def _connections(self) -> Iterator[Metric]:
        counts: dict[str, int] = {"http": 0, "https": 0}
        for connection in self.server.connections:
            scheme = connection.listener.scheme.decode()
            counts[scheme] = counts.get(scheme, 0) + 1
        family = GaugeMetricFamily(
            "ingressd_client_connections", "Open client connections by listener.",
            labels=["listener"],
        )  # fmt: skip
        for listener, value in counts.items():
            family.add_metric([listener], value)
        yield family

    def _tls(self) -> Iterator[Metric]:
        # A failed handshake leaves its connection objects in a reference cycle inside
        # uvloop; collecting cycles here (once per scrape) lets their weak references
        # report the failure (see ProxyServer.handshake_started).
        gc.collect()
        stats = self.server.stats
        yield CounterMetricFamily(
            "ingressd_tls_handshakes", "Completed TLS handshakes.", value=stats.tls_handshakes
        )
        yield CounterMetricFamily(
            "ingressd_tls_handshake_errors", "Failed TLS handshakes.",
            value=stats.tls_handshake_errors,
        )  # fmt: skip
        expiry = GaugeMetricFamily(
            "ingressd_certificate_not_after_seconds",
            "Expiry of each served certificate, Unix time.", labels=["secret"],
        )  # fmt: skip
        certs = self.server.runtime.certs
        for certificate in (certs.default, *certs.certificates):
            if certificate is not None:
                expiry.add_metric([certificate.name], certificate.not_after.timestamp())
        yield expiry

    def _config(self) -> Iterator[Metric]:
        stats = self.server.stats
        reloads = CounterMetricFamily(
            "ingressd_config_reloads", "Configuration reloads by result.", labels=["result"]
        )
        reloads.add_metric(["ok"], stats.reloads_ok)
        reloads.add_metric(["failed"], stats.reloads_failed)
        yield reloads
        yield GaugeMetricFamily(
            "ingressd_config_last_reload_success_timestamp_seconds",
            "When the configuration in use was loaded, Unix time.",
            value=self.server.runtime.loaded_at,
        )
        info = InfoMetricFamily("ingressd_config", "The configuration in use.")
        runtime = self.server.runtime
        info.add_metric([], {"hash": runtime.config.digest,
                             "ingresses": str(len(runtime.table.ingresses))})  # fmt: skip
        yield info
        build = InfoMetricFamily("ingressd_build", "ingressd build information.")
        build.add_metric([], {"version": __version__})
        yield build


def exposition(server: ProxyServer) -> Callable[[], bytes]:
    """A function producing the Prometheus text for `server` (its own registry)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(server))
    return lambda: generate_latest(registry)
