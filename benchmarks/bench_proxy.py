"""ingressd against nginx configured like ingress-nginx, same machine, same run.

Starts an nginx backend (``return 200`` and a 10 MB file), ingressd, and an
nginx reverse proxy set up as ingress-nginx sets it up (one worker, upstream
``keepalive 320``, ``proxy_http_version 1.1``, X-Forwarded-* and X-Request-ID
headers), then alternates them for several rounds of ``wrk -t1 -c50 -d10s
--latency`` and a 10 MB download, and prints req/s, p50/p99, MB/s, peak RSS
and CPU µs per request (the proxy process's CPU time ÷ requests), with the
ingressd/nginx ratios and the targets of the data-path issue.

    sudo .venv/bin/python benchmarks/bench_proxy.py [--rounds 3] [--duration 10]

Needs nginx and wrk (installed with apt-get when missing; root only).  The
machine is shared and noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import policy_routes

from ingressd.tls import generate_self_signed

ROOT = Path(__file__).resolve().parent.parent
HOST = "bench.example"
BIG = 10 * 1024 * 1024


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {missing}: install them (apt-get install -y nginx wrk)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx", "wrk"], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def nginx_worker(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


NGINX_BACKEND = """
worker_processes 1; daemon off; pid {dir}/backend.pid; error_log {dir}/backend.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "hello from the nginx backend\\n"; }}
    location /big {{ alias {dir}/big.bin; }}
  }}
}}
"""

# What ingress-nginx generates for one Ingress, reduced to what the data path does;
# the same location for plain and TLS, so both do the work ingressd does.
NGINX_LOCATION = """\
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Request-ID $request_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering on;
    }
"""
NGINX_PROXY = """
worker_processes 1; daemon off; pid {dir}/proxy.pid; error_log {dir}/proxy.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 320; }}
  server {{
    listen 127.0.0.1:{port};
    server_name {host};
{location}  }}
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    server_name {host};
    ssl_certificate {dir}/tls.crt;
    ssl_certificate_key {dir}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
{location}  }}
}}
"""

INGRESS = """
apiVersion: v1
kind: Service
metadata: {{name: backend}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: backend}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: http, port: {backend}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bench
  annotations: {{nginx.ingress.kubernetes.io/proxy-body-size: 20m}}
spec:
  rules:
  - host: {host}
    http: {{paths: [{{path: /, pathType: Prefix,
      backend: {{service: {{name: backend, port: {{number: 80}}}}}}}}]}}
"""


def policy_route(name: str, backend: int) -> str:
    """The benchmark's Ingress with one policy on its route (--policy-routes)."""
    config = INGRESS.format(backend=backend, host=HOST)
    if name == "canary":  # both sides on the same backend
        return config + policy_routes.canary(HOST, backend)
    path, kind, annotation = policy_routes.REWRITE
    return config.replace(
        "proxy-body-size: 20m}", f"proxy-body-size: 20m,\n    {annotation}}}"
    ).replace("{path: /, pathType: Prefix,", f"{{path: {path}, pathType: {kind},")


POLICY_ROUTES = ("canary", "rewrite")


@dataclass
class Result:
    tls_rps: list[float] = field(default_factory=list)
    tls_cpu_us: list[float] = field(default_factory=list)
    handshake_rps: list[float] = field(default_factory=list)
    handshake_cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    mbps: list[float] = field(default_factory=list)
    rss: float = 0.0
    tls_rss: float = 0.0


@contextmanager
def process(args: list[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_DURATION = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(match.group(1)) * _DURATION[match.group(2)] if match else math.nan


def _percentile(out: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+(\S+)", out, re.MULTILINE)
    return _millis(match.group(1)) if match else math.nan


def _max_latency(out: str) -> float:
    match = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.MULTILINE)
    return _millis(match.group(1)) if match else math.nan


def wrk(url: str, duration: int, connections: int, extra: tuple[str, ...] = ()) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-H", f"Host: {HOST}", *extra, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    result = {
        "requests": float(requests),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _percentile(out, "50"),
        "p99": _percentile(out, "99"),
        "max": _max_latency(out),
    }
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if transfer:
        scale = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}[transfer.group(2)]
        result["mbps"] = float(transfer.group(1)) * scale
    return result


def cpu_per_request(
    pid: int, url: str, duration: int, extra: tuple[str, ...] = ()
) -> tuple[dict[str, float], float]:
    """wrk against `url`; also the process's CPU µs per request during the run."""
    before = cpu_seconds(pid)
    stats = wrk(url, duration, 50, extra)
    return stats, (cpu_seconds(pid) - before) / stats["requests"] * 1e6


def measure(
    pid: int, url: str, tls_pid: int, tls_url: str, args: argparse.Namespace, result: Result
) -> None:
    stats, cpu = cpu_per_request(pid, url + "/", args.duration)
    result.rps.append(stats["rps"])
    result.p50.append(stats["p50"])
    result.p99.append(stats["p99"])
    result.cpu_us.append(cpu)
    big = wrk(url + "/big", max(3, args.duration // 2), 1)
    result.mbps.append(big.get("mbps", 0.0))
    result.rss = max(result.rss, peak_rss_mb(pid))
    stats, cpu = cpu_per_request(tls_pid, tls_url + "/", args.duration)
    result.tls_rps.append(stats["rps"])
    result.tls_cpu_us.append(cpu)
    close = ("-H", "Connection: close")
    stats, cpu = cpu_per_request(tls_pid, tls_url + "/", args.duration, close)
    result.handshake_rps.append(stats["rps"])
    result.handshake_cpu_us.append(cpu)
    result.tls_rss = max(result.tls_rss, peak_rss_mb(tls_pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--policy-routes",
        action="store_true",
        help="also measure CPU per request of a canary route and a rewrite route",
    )
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as an unprivileged user
        (work / "big.bin").write_bytes(os.urandom(BIG))
        (work / "big.bin").chmod(0o644)
        chain, key = generate_self_signed([HOST])  # the same certificate for both proxies
        (work / "tls.crt").write_bytes(chain)
        (work / "tls.key").write_bytes(key)
        (work / "tls.key").chmod(0o644)
        ports = {name: free_port() for name in ("backend", "nginx", "nginx_tls", "ingressd",
                                               "ingressd_tls", "logged")}  # fmt: skip
        (work / "backend.conf").write_text(NGINX_BACKEND.format(dir=work, port=ports["backend"]))
        (work / "proxy.conf").write_text(
            NGINX_PROXY.format(
                dir=work,
                port=ports["nginx"],
                tls_port=ports["nginx_tls"],
                backend=ports["backend"],
                host=HOST,
                location=NGINX_LOCATION,
            )
        )
        (work / "ingress.yaml").write_text(INGRESS.format(backend=ports["backend"], host=HOST))
        policies = list(POLICY_ROUTES) if args.policy_routes else []
        for name in policies:
            (work / f"{name}.yaml").write_text(policy_route(name, ports["backend"]))
            ports[name] = free_port()

        def ingressd_cmd(
            http: int | None, https: int | None, access_log: str, config: str = "ingress"
        ) -> list[str]:
            """One listener per process, so each one's RSS and CPU are its own."""
            tls = ["--default-cert", str(work / "tls.crt"), "--default-key", str(work / "tls.key")]
            return [
                sys.executable, "-m", "ingressd", "--config", str(work / f"{config}.yaml"),
                "--http", f"127.0.0.1:{http}" if http else "off",
                "--https", f"127.0.0.1:{https}" if https else "off",
                *(tls if https else []), "--admin", "127.0.0.1:0", "--access-log", access_log,
                "--log-level", "warning",
            ]  # fmt: skip

        with contextlib.ExitStack() as extra:
            policy_pids = {
                name: extra.enter_context(
                    process(ingressd_cmd(ports[name], None, "off", name), cwd=ROOT)
                ).pid
                for name in policies
            }
            run(args, work, ports, ingressd_cmd, policy_pids)


def run(
    args: argparse.Namespace,
    work: Path,
    ports: dict[str, int],
    ingressd_cmd: Callable[..., list[str]],
    policy_pids: dict[str, int],
) -> None:
    """Start the backend, nginx and the ingressd processes; measure them in rounds."""
    with (
        process(["nginx", "-c", str(work / "backend.conf"), "-p", str(work)]),
        process(["nginx", "-c", str(work / "proxy.conf"), "-p", str(work)]) as nginx,
        process(ingressd_cmd(ports["ingressd"], None, "off"), cwd=ROOT) as ingressd,
        process(ingressd_cmd(None, ports["ingressd_tls"], "off"), cwd=ROOT) as ingressd_tls,
        process(
            ingressd_cmd(ports["logged"], None, str(work / "access.log")), cwd=ROOT
        ) as logged,  # fmt: skip
    ):
        for port in ports.values():
            wait_port(port)
        nginx_pid = nginx_worker(nginx.pid)
        results = {"ingressd": Result(), "nginx": Result()}
        targets = {
            "ingressd": (
                ingressd.pid,
                ports["ingressd"],
                ingressd_tls.pid,
                ports["ingressd_tls"],
            ),
            "nginx": (nginx_pid, ports["nginx"], nginx_pid, ports["nginx_tls"]),
        }
        logged_cpu: list[float] = []
        policy_cpu: dict[str, list[float]] = {}
        for port in (ports["ingressd"], ports["logged"], *(ports[n] for n in policy_pids)):
            wrk(f"http://127.0.0.1:{port}/", 2, 50)  # warm-up
        for round_number in range(1, args.rounds + 1):
            for name in ("ingressd", "nginx") if round_number % 2 else ("nginx", "ingressd"):
                pid, port, tls_pid, tls_port = targets[name]
                measure(pid, f"http://127.0.0.1:{port}", tls_pid,
                        f"https://127.0.0.1:{tls_port}", args, results[name])  # fmt: skip
            _, cpu = cpu_per_request(logged.pid, f"http://127.0.0.1:{ports['logged']}/",
                                     args.duration)  # fmt: skip
            logged_cpu.append(cpu)
            for name, pid in policy_pids.items():
                _, cpu = cpu_per_request(pid, f"http://127.0.0.1:{ports[name]}/",
                                         args.duration)  # fmt: skip
                policy_cpu.setdefault(name, []).append(cpu)
            print(f"round {round_number}/{args.rounds} done", file=sys.stderr)
    report(results, logged_cpu)
    for name, values in policy_cpu.items():
        plain = statistics.median(results["ingressd"].cpu_us)
        cost = statistics.median(values)
        print(f"ingressd CPU µs/request, {name} route: {cost:.1f} vs {plain:.1f} plain: "
              f"{cost / plain:.2f}x")  # fmt: skip


def report(results: dict[str, Result], logged_cpu: list[float]) -> None:
    ing, ngx = results["ingressd"], results["nginx"]
    med = statistics.median
    rows = [
        ("req/s", med(ing.rps), med(ngx.rps), med(ing.rps) / med(ngx.rps), ">= 0.5",
         lambda r: r >= 0.5),
        ("p50 ms", med(ing.p50), med(ngx.p50), med(ing.p50) / med(ngx.p50), "", None),
        ("p99 ms", med(ing.p99), med(ngx.p99), med(ing.p99) / med(ngx.p99), "<= 2",
         lambda r: r <= 2),
        ("CPU µs/request", med(ing.cpu_us), med(ngx.cpu_us), med(ing.cpu_us) / med(ngx.cpu_us),
         "<= 3", lambda r: r <= 3),
        ("10 MB download MB/s", med(ing.mbps), med(ngx.mbps), med(ing.mbps) / med(ngx.mbps),
         ">= 1", lambda r: r >= 1),
        ("TLS keep-alive req/s", med(ing.tls_rps), med(ngx.tls_rps),
         med(ing.tls_rps) / med(ngx.tls_rps), ">= 0.6", lambda r: r >= 0.6),
        ("TLS CPU µs/request", med(ing.tls_cpu_us), med(ngx.tls_cpu_us),
         med(ing.tls_cpu_us) / med(ngx.tls_cpu_us), "", None),
        ("TLS handshakes/s", med(ing.handshake_rps), med(ngx.handshake_rps),
         med(ing.handshake_rps) / med(ngx.handshake_rps), "", None),
        ("CPU µs/handshake", med(ing.handshake_cpu_us), med(ngx.handshake_cpu_us),
         med(ing.handshake_cpu_us) / med(ngx.handshake_cpu_us), "<= 2", lambda r: r <= 2),
        ("peak RSS MB", ing.rss, ngx.rss, ing.rss / ngx.rss, "ingressd < 40 MB", None),
        ("peak RSS MB, TLS", ing.tls_rss, ngx.tls_rss, ing.tls_rss / ngx.tls_rss, "", None),
    ]  # fmt: skip
    print(f"{'metric':<22}{'ingressd':>12}{'nginx':>12}{'ratio':>9}  target")
    for name, a, b, ratio, target, check in rows:
        verdict = ""
        if check is not None:
            verdict = "PASS" if check(ratio) else "FAIL"
        elif name == "peak RSS MB":
            verdict = "PASS" if a < 40 else "FAIL"
        print(f"{name:<22}{a:>12.1f}{b:>12.1f}{ratio:>9.2f}  {target} {verdict}")
    print(f"(medians of {len(ing.rps)} rounds; wrk -t1 -c50; CPU = process user+sys time)")
    logged = med(logged_cpu)
    cost = logged / med(ing.cpu_us)
    verdict = "PASS" if cost <= 1.15 else "FAIL"
    print(f"ingressd CPU µs/request with the access log to a file: {logged:.1f} "
          f"vs {med(ing.cpu_us):.1f} off: {cost:.2f}x (target <= 1.15) {verdict}; "
          "metrics are always on in both")  # fmt: skip


if __name__ == "__main__":
    main()
