"""What operators see (SPEC §7, §8): `/metrics` values that move as requests, failures,
reloads and TLS handshakes happen; access-log lines in both formats and their reopen on
SIGUSR1; `/routes` against ``--check``; the health endpoints."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingressd import __version__
from tests import manifests
from tests.integration.conftest import (
    HOST,
    StartBackend,
    StartIngressd,
    app,
    client,
    dead_port,
    wait_until,
)
from tests.integration.rawhttp import RawClient, Response
from tests.proc import Ingressd

LOG_DEADLINE = 2.5  # the access log is written within ~1 s; this leaves room for a slow box

# --- /metrics ---------------------------------------------------------------------


class Metrics:
    """One scrape of ``/metrics``, parsed by prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def matching(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (sample_labels, value)
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and labels.items() <= sample_labels.items()
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` carrying `labels` (0 when there is none)."""
        return sum(value for _, value in self.matching(name, **labels))

    def one(self, name: str, **labels: str) -> tuple[dict[str, str], float]:
        found = self.matching(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0]


def admin(proxy: Ingressd) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{proxy.ports['admin']}", timeout=10.0, trust_env=False
    )


async def scrape(proxy: Ingressd) -> Metrics:
    async with admin(proxy) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Metrics(response.text)


async def routes_json(proxy: Ingressd) -> dict[str, Any]:
    async with admin(proxy) as http:
        response = await http.get("/routes")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def live_and_dead(live: int, dead: int) -> list[dict[str, object]]:
    """``app.test`` → Service app (a live backend); ``dead.test`` → Service dead (nothing)."""
    return [*app(live), *app(dead, host="dead.test", service="dead")]


APP = {"namespace": "default", "ingress": "app-ingress", "service": "app"}
DEAD = {"namespace": "default", "ingress": "dead-ingress", "service": "dead"}
NO_ROUTE = {"namespace": "", "ingress": "", "service": ""}


async def test_requests_durations_and_bytes_move_per_route_and_status_class(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    proxy = await ingressd(live_and_dead(live.port, dead_port()))
    before = await scrape(proxy)
    async with client(proxy) as http:
        for _ in range(3):
            assert (await http.get("/bytes/1000")).status_code == 200
        posted = await http.post("/upload", content=b"x" * 1234)
        assert posted.status_code == 200 and posted.json()["length"] == 1234
        assert (await http.get("/", headers={"host": "nowhere.test"})).status_code == 404
        assert (await http.get("/", headers={"host": "dead.test"})).status_code == 502
    after = await scrape(proxy)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    requests = "ingressd_requests_total"
    assert moved(requests, **APP, method="GET", status="2xx") == 3
    assert moved(requests, **APP, method="POST", status="2xx") == 1
    assert moved(requests, **NO_ROUTE, method="GET", status="4xx") == 1
    assert moved(requests, **DEAD, method="GET", status="5xx") == 1
    assert moved(requests) == 6, "every request counted once"

    app_service = {"namespace": "default", "service": "app"}
    dead_service = {"namespace": "default", "service": "dead"}
    durations = "ingressd_request_duration_seconds"
    assert moved(f"{durations}_count", **app_service) == 4
    assert moved(f"{durations}_count", **dead_service) == 1
    assert moved(f"{durations}_count", namespace="", service="") == 1
    assert moved(f"{durations}_sum", **app_service) > 0
    assert moved(f"{durations}_bucket", **app_service, le="+Inf") == 4
    upstream = "ingressd_upstream_response_seconds"
    assert moved(f"{upstream}_count", **app_service) == 4
    assert moved(f"{upstream}_bucket", **app_service, le="+Inf") == 4
    assert moved(f"{upstream}_count", **dead_service) == 0, "no backend ever answered"

    assert moved("ingressd_request_body_bytes_total", **app_service) == 1234
    sent = moved("ingressd_response_bytes_total", **app_service)
    assert 3 * 1000 < sent < 3 * 1000 + 4 * 1024, sent  # bodies + four heads
    assert moved("ingressd_response_bytes_total", namespace="", service="") > 0


async def test_dead_endpoint_next_to_a_live_one_counts_error_retry_and_ejection(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    dead = dead_port()
    proxy = await ingressd(app(dead, live))
    dead_endpoint, live_endpoint = f"127.0.0.1:{dead}", f"127.0.0.1:{live.port}"
    async with client(proxy) as http:
        # Round-robin reaches the dead endpoint on the first or the second request.
        for _ in range(4):
            assert (await http.get("/")).status_code == 200
    metrics = await scrape(proxy)
    assert metrics.value("ingressd_upstream_connect_errors_total", endpoint=dead_endpoint) == 1
    assert metrics.value("ingressd_upstream_retries_total", endpoint=dead_endpoint) == 1
    assert metrics.value("ingressd_upstream_ejections_total", endpoint=dead_endpoint) == 1
    for name in ("connect_errors", "retries", "ejections"):
        assert metrics.value(f"ingressd_upstream_{name}_total", endpoint=live_endpoint) == 0
    assert metrics.value("ingressd_requests_total", **APP, status="2xx") == 4


async def test_single_dead_endpoint_is_not_counted_as_a_retry(
    ingressd: StartIngressd,
) -> None:
    """With nothing else to try the request fails at once: that is no retry."""
    dead = dead_port()
    proxy = await ingressd(app(dead))
    async with client(proxy) as http:
        assert (await http.get("/")).status_code == 502
    metrics = await scrape(proxy)
    endpoint = f"127.0.0.1:{dead}"
    assert metrics.value("ingressd_upstream_connect_errors_total", endpoint=endpoint) == 1
    assert metrics.value("ingressd_upstream_retries_total") == 0


async def test_connection_gauges_follow_open_client_and_idle_upstream_connections(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    proxy = await ingressd(app(live))
    endpoint = f"127.0.0.1:{live.port}"
    idle = await scrape(proxy)
    assert idle.value("ingressd_client_connections", listener="http") == 0
    async with RawClient(proxy.ports["http"]) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await raw.read_response()).status == 200
        busy = await scrape(proxy)  # the keep-alive connection is still open
        assert busy.value("ingressd_client_connections", listener="http") == 1
        assert busy.value("ingressd_upstream_connections", endpoint=endpoint, state="idle") >= 1
        assert busy.value("ingressd_upstream_connections", endpoint=endpoint, state="open") >= 1

    async def closed() -> bool:
        return (await scrape(proxy)).value("ingressd_client_connections", listener="http") == 0

    deadline = time.monotonic() + 5.0
    while not await closed():
        assert time.monotonic() < deadline, "client connection still counted after its close"
        await asyncio.sleep(0.05)


async def test_reload_metrics_count_ok_and_failed_and_track_the_config_hash(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    proxy = await ingressd(app(live))
    first = await scrape(proxy)
    first_hash = first.one("ingressd_config_info")[0]["hash"]
    assert re.fullmatch(r"[0-9a-f]{16,}", first_hash), first_hash
    assert first.one("ingressd_config_info")[0]["ingresses"] == "1"
    loaded = first.value("ingressd_config_last_reload_success_timestamp_seconds")
    assert abs(loaded - time.time()) < 60

    start = len(proxy.lines)
    manifests.write(proxy.config, [*app(live), *app(live.port, host="two.test", service="two")])
    proxy.signal(signal.SIGHUP)
    await asyncio.to_thread(proxy.wait_for_line, "reloaded:", 10.0, start)
    second = await scrape(proxy)
    assert second.value("ingressd_config_reloads_total", result="ok") == (
        first.value("ingressd_config_reloads_total", result="ok") + 1
    )
    assert second.value("ingressd_config_reloads_total", result="failed") == (
        first.value("ingressd_config_reloads_total", result="failed")
    )
    reloaded = second.value("ingressd_config_last_reload_success_timestamp_seconds")
    assert reloaded > loaded
    info = second.one("ingressd_config_info")[0]
    assert info["hash"] != first_hash
    assert info["ingresses"] == "2"

    start = len(proxy.lines)
    proxy.config.write_text("apiVersion: v1\nkind: Service\nmetadata: [unclosed\n")
    proxy.signal(signal.SIGHUP)
    await asyncio.to_thread(proxy.wait_for_line, "reload failed", 10.0, start)
    third = await scrape(proxy)
    assert third.value("ingressd_config_reloads_total", result="failed") == (
        second.value("ingressd_config_reloads_total", result="failed") + 1
    )
    assert third.value("ingressd_config_reloads_total", result="ok") == (
        second.value("ingressd_config_reloads_total", result="ok")
    )
    assert third.value("ingressd_config_last_reload_success_timestamp_seconds") == reloaded
    assert third.one("ingressd_config_info")[0]["hash"] == info["hash"], "old config still served"


async def test_tls_handshakes_certificate_expiry_and_build_info(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    proxy = await ingressd(app(live), https=True)
    before = await scrape(proxy)
    assert before.one("ingressd_build_info")[0]["version"] == __version__
    (_, not_after) = before.one("ingressd_certificate_not_after_seconds", secret="default")
    assert not_after > time.time() + 86400, "the generated default certificate is valid"
    assert before.matching("ingressd_tls_handshake_errors_total")

    base_url = f"https://127.0.0.1:{proxy.ports['https']}"
    async with httpx.AsyncClient(
        base_url=base_url, verify=False, trust_env=False, timeout=10.0
    ) as https:
        response = await https.get("/", headers={"host": HOST})
        assert response.status_code == 200
    after = await scrape(proxy)
    assert after.value("ingressd_tls_handshakes_total") == (
        before.value("ingressd_tls_handshakes_total") + 1
    )
    assert after.value("ingressd_tls_handshake_errors_total") == (
        before.value("ingressd_tls_handshake_errors_total")
    )
    assert after.value("ingressd_requests_total", **APP, status="2xx") == 1


# --- access log ---------------------------------------------------------------------

COMBINED = re.compile(
    r"^(?P<remote>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "
    r'"(?P<method>\S+) (?P<target>\S+) HTTP/(?P<version>1\.[01])" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" '
    r"(?P<request_time>\d+\.\d{3}) (?P<upstream_addr>\S+) (?P<upstream_status>\S+) "
    r"(?P<upstream_time>\S+) (?P<request_id>\S+) (?P<ingress>\S+) (?P<service>\S+) (?P<canary>\S+)$"
)


def parse_text(line: str) -> dict[str, Any]:
    match = COMBINED.match(line)
    assert match, f"not nginx combined + extras: {line!r}"
    raw = {k: (None if v == "-" else v) for k, v in match.groupdict().items()}
    return {
        **raw,
        "status": int(raw["status"]),
        "bytes": int(raw["bytes"]),
        "request_time": float(raw["request_time"]),
        "upstream_status": None if raw["upstream_status"] is None else int(raw["upstream_status"]),
        "upstream_time": None if raw["upstream_time"] is None else float(raw["upstream_time"]),
    }


def parse_json(line: str) -> dict[str, Any]:
    record = json.loads(line)
    method, target, version = record["request"].split(" ")
    assert version.startswith("HTTP/")
    return {
        "remote": record["remote_addr"],
        "time": record["time"],
        "method": method,
        "target": target,
        "version": version.removeprefix("HTTP/"),
        "status": record["status"],
        "bytes": record["bytes_sent"],
        "referer": record["http_referer"] or None,
        "agent": record["http_user_agent"] or None,
        "request_time": record["request_time"],
        "upstream_addr": record["upstream_addr"],
        "upstream_status": record["upstream_status"],
        "upstream_time": record["upstream_response_time"],
        "request_id": record["request_id"],
        "ingress": record["ingress"],
        "service": record["service"],
    }


PARSERS = {"text": parse_text, "json": parse_json}


async def wait_for_lines(path: Path, count: int, timeout: float = LOG_DEADLINE) -> list[str]:
    """The first `count` lines of the access log, once written (fails after `timeout`)."""
    lines: list[str] = []

    def written() -> bool:
        if path.exists():
            lines[:] = path.read_text().splitlines()
        return len(lines) >= count

    await wait_until(written, timeout, f"{count} line(s) in {path}")
    return lines[:count]


async def exchange(port: int, request: bytes) -> Response:
    async with RawClient(port) as raw:
        await raw.send(request)
        return await raw.read_response()


async def websocket_round_trip(port: int, request_id: bytes) -> str | None:
    """Upgrade through ingressd to the backend's /ws, echo once, close; the 101's X-Request-ID."""
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    async with RawClient(port) as raw:
        await raw.send(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nX-Request-ID: %s\r\n\r\n"
            % (key, request_id)
        )
        head = await raw.read_head()
        assert head.status == 101, head
        assert head.header("sec-websocket-accept") is not None
        await raw.send(b"ping")
        assert await raw.read_exactly(4) == b"ping"
    return head.header("x-request-id")


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_access_log_lines_for_200_404_502_and_websocket(
    log_format: str, tmp_path: Path, backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    dead = dead_port()
    log_path = tmp_path / f"access.{log_format}.log"
    proxy = await ingressd(
        live_and_dead(live.port, dead), "--log-format", log_format, access_log=log_path
    )
    port = proxy.ports["http"]
    parse = PARSERS[log_format]

    sent_at = time.monotonic()
    ok = await exchange(
        port,
        b"GET /page?q=1 HTTP/1.1\r\nHost: app.test\r\nReferer: http://ref.test/page\r\n"
        b"User-Agent: obs-test/1.0\r\nX-Request-ID: obs-req-200\r\n\r\n",
    )
    assert ok.status == 200
    (first,) = await wait_for_lines(log_path, 1)
    assert time.monotonic() - sent_at < LOG_DEADLINE

    missing = await exchange(port, b"GET /nowhere HTTP/1.1\r\nHost: nowhere.test\r\n\r\n")
    assert missing.status == 404
    failed = await exchange(port, b"GET /dead HTTP/1.1\r\nHost: dead.test\r\n\r\n")
    assert failed.status == 502
    await websocket_round_trip(port, b"obs-ws-101")

    lines = await wait_for_lines(log_path, 4)
    assert lines[0] == first
    records = [parse(line) for line in lines]
    by_target = {record["target"]: record for record in records}
    assert set(by_target) == {"/page?q=1", "/nowhere", "/dead", "/ws"}
    for record in records:
        assert record["remote"] == "127.0.0.1"
        assert record["method"] == "GET" and record["version"] == "1.1"
        assert record["request_time"] >= 0
        if record["upstream_time"] is not None:
            assert record["upstream_time"] <= record["request_time"] + 0.001

    live_endpoint = f"127.0.0.1:{live.port}"
    record = by_target["/page?q=1"]
    assert record["status"] == 200
    assert len(ok.body) <= record["bytes"] <= len(ok.body) + 1024
    assert record["referer"] == "http://ref.test/page"
    assert record["agent"] == "obs-test/1.0"
    assert record["upstream_addr"] == live_endpoint
    assert record["upstream_status"] == 200
    assert record["upstream_time"] is not None
    assert record["request_id"] == "obs-req-200" == ok.header("x-request-id")
    assert (record["ingress"], record["service"]) == ("default/app-ingress", "app")

    record = by_target["/nowhere"]
    assert record["status"] == 404
    assert record["bytes"] > 0
    assert record["referer"] is None and record["agent"] is None
    assert record["upstream_addr"] is None
    assert record["upstream_status"] is None and record["upstream_time"] is None
    assert record["ingress"] is None and record["service"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", record["request_id"])
    assert record["request_id"] == missing.header("x-request-id")

    record = by_target["/dead"]
    assert record["status"] == 502
    assert record["upstream_addr"] == f"127.0.0.1:{dead}"
    assert record["upstream_status"] in (None, 502)
    assert (record["ingress"], record["service"]) == ("default/dead-ingress", "dead")
    assert record["request_id"] == failed.header("x-request-id") is not None

    record = by_target["/ws"]
    assert record["status"] == 101
    assert record["upstream_addr"] == live_endpoint
    assert record["upstream_status"] == 101
    assert (record["ingress"], record["service"]) == ("default/app-ingress", "app")
    assert record["request_id"] == "obs-ws-101"


async def test_websocket_101_returns_the_request_id(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    """SPEC §4: the X-Request-ID is "also returned to the client", on a 101 too, so the
    client can find its WebSocket's access-log line."""
    live = await backends("live")
    proxy = await ingressd(app(live))
    returned = await websocket_round_trip(proxy.ports["http"], b"obs-ws-101")
    assert returned == "obs-ws-101", f"101 Switching Protocols carried X-Request-ID {returned!r}"


async def test_text_log_bytes_field_is_the_body_size_as_in_combined(
    tmp_path: Path, backends: StartBackend, ingressd: StartIngressd
) -> None:
    """nginx "combined" logs $body_bytes_sent: the response body, not its head."""
    live = await backends("live")
    log_path = tmp_path / "access.log"
    proxy = await ingressd(app(live), "--log-format", "text", access_log=log_path)
    request = b"GET /bytes/100 HTTP/1.1\r\nHost: app.test\r\n\r\n"
    response = await exchange(proxy.ports["http"], request)
    assert response.status == 200
    (line,) = await wait_for_lines(log_path, 1)
    assert parse_text(line)["bytes"] == 100, line


async def test_sigusr1_reopens_the_log_after_a_rename(
    tmp_path: Path, backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    log_path = tmp_path / "access.log"
    proxy = await ingressd(app(live), "--log-format", "text", access_log=log_path)
    port = proxy.ports["http"]
    assert (await exchange(port, b"GET /before HTTP/1.1\r\nHost: app.test\r\n\r\n")).status == 200
    await wait_for_lines(log_path, 1)

    rotated = tmp_path / "access.log.1"
    log_path.rename(rotated)
    start = len(proxy.lines)
    proxy.signal(signal.SIGUSR1)
    await asyncio.to_thread(proxy.wait_for_line, "access log reopened", 10.0, start)
    assert log_path.exists(), "a new file at the original path"
    assert (await exchange(port, b"GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n")).status == 200

    (new,) = await wait_for_lines(log_path, 1)
    assert parse_text(new)["target"] == "/after"
    old = rotated.read_text().splitlines()
    assert [parse_text(line)["target"] for line in old] == ["/before"]


# --- /routes, --check, health --------------------------------------------------------

CHECK_ROW = re.compile(
    r"^  (?P<host>\S+)  (?P<path>\S+)  (?P<path_type>\S+)  → (?P<backend>\S+) → "
    r"(?P<endpoints>.+?)  \[ingress (?P<ingress>\S+)\]"
)

Row = tuple[str, str, str, str, str, str]


def check_rows(output: str) -> list[Row]:
    """The route rows printed by ``ingressd --check`` (between "Routes:" and "TLS hosts:")."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Routes: "))
    count = int(lines[first].split()[1])
    rows = []
    for line in lines[first + 1 : first + 1 + count]:
        match = CHECK_ROW.match(line)
        assert match, f"not a route row: {line!r}"
        rows.append(tuple(match.groupdict().values()))
    return rows  # type: ignore[return-value]


def json_rows(routes: Iterable[dict[str, Any]]) -> list[Row]:
    rows = []
    for route in routes:
        addresses = [e["address"] for e in route["endpoints"]]
        endpoints = ", ".join(addresses) if addresses else f"(none: {route['problem']}) → 503"
        backend = f"{route['service']}:{route['port']}"
        rows.append(
            (route["host"], route["path"], route["path_type"], backend, endpoints, route["ingress"])
        )
    return rows


async def test_routes_json_matches_check_output_and_shows_endpoint_health(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    dead = dead_port()
    objects = [
        *manifests.service("web", [dead, live.port]),
        *manifests.service("api", [live.port]),
        manifests.ingress("web", HOST, {"/": "web", "/static": "web"}),
        manifests.ingress("api", HOST, {"/api/v1": "api"}, path_type="Exact"),
        manifests.ingress("other", "other.test", {"/": "api", "/gone": "missing"}),
        manifests.ingress("anyhost", None, {"/health": "api"}, namespace="default"),
    ]
    proxy = await ingressd(objects)
    command = [sys.executable, "-m", "ingressd", "--check", "--config", str(proxy.config)]
    checked = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=20
    )
    assert checked.returncode == 0, checked.stderr

    async with client(proxy) as http:  # the dead endpoint is tried within two requests
        for _ in range(2):
            assert (await http.get("/static/app.css")).status_code == 200
    routes = await routes_json(proxy)

    expected = check_rows(checked.stdout)
    assert len(expected) == 6
    assert json_rows(routes["routes"]) == expected
    assert routes["ingresses"] == [
        line.strip() for line in checked.stdout.splitlines()[1 : 1 + len(routes["ingresses"])]
    ]

    states = {
        endpoint["address"]: endpoint["state"]
        for route in routes["routes"]
        if route["service"] == "default/web"
        for endpoint in route["endpoints"]
    }
    assert states == {f"127.0.0.1:{dead}": "down", f"127.0.0.1:{live.port}": "up"}

    metrics = await scrape(proxy)
    assert routes["config_hash"] == metrics.one("ingressd_config_info")[0]["hash"]
    assert routes["files"] == [str(proxy.config)]


async def test_healthz_and_readyz_answer_200_once_loaded(
    backends: StartBackend, ingressd: StartIngressd
) -> None:
    live = await backends("live")
    proxy = await ingressd(app(live))
    for path, status in (("/healthz", 200), ("/readyz", 200), ("/nothing-here", 404)):
        async with admin(proxy) as http:  # one connection each: see the keep-alive test
            assert (await http.get(path)).status_code == status, path


async def test_admin_listener_answers_several_requests_on_one_connection(
    ingressd: StartIngressd,
) -> None:
    """A Prometheus server reuses its connection from one scrape to the next."""
    proxy = await ingressd(app(dead_port()))
    async with RawClient(proxy.ports["admin"]) as raw:
        for path in ("/healthz", "/metrics", "/readyz"):
            await raw.send(b"GET %s HTTP/1.1\r\nHost: admin\r\n\r\n" % path.encode())
            response = await raw.read_response()
            assert response.status == 200, path
            assert (response.header("connection") or "").lower() != "close"
