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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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

# What ingress-nginx generates for one Ingress, reduced to what the data path does.
NGINX_PROXY = """
worker_processes 1; daemon off; pid {dir}/proxy.pid; error_log {dir}/proxy.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 320; }}
  server {{
    listen 127.0.0.1:{port};
    server_name {host};
    location / {{
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
    }}
  }}
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


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    mbps: list[float] = field(default_factory=list)
    rss: float = 0.0


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
    assert match, text
    return float(match.group(1)) * _DURATION[match.group(2)]


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
        "p50": _millis(re.search(r"50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _millis(re.search(r"99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
    }
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if transfer:
        scale = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}[transfer.group(2)]
        result["mbps"] = float(transfer.group(1)) * scale
    return result


def measure(pid: int, url: str, args: argparse.Namespace, result: Result) -> None:
    before = cpu_seconds(pid)
    stats = wrk(url + "/", args.duration, 50)
    used = cpu_seconds(pid) - before
    result.rps.append(stats["rps"])
    result.p50.append(stats["p50"])
    result.p99.append(stats["p99"])
    result.cpu_us.append(used / stats["requests"] * 1e6)
    big = wrk(url + "/big", max(3, args.duration // 2), 1)
    result.mbps.append(big.get("mbps", 0.0))
    result.rss = max(result.rss, peak_rss_mb(pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as an unprivileged user
        (work / "big.bin").write_bytes(os.urandom(BIG))
        (work / "big.bin").chmod(0o644)
        backend, nginx_port, ingressd_port = free_port(), free_port(), free_port()
        (work / "backend.conf").write_text(NGINX_BACKEND.format(dir=work, port=backend))
        (work / "proxy.conf").write_text(
            NGINX_PROXY.format(dir=work, port=nginx_port, backend=backend, host=HOST)
        )
        (work / "ingress.yaml").write_text(INGRESS.format(backend=backend, host=HOST))
        ingressd_cmd = [
            sys.executable, "-m", "ingressd", "--config", str(work / "ingress.yaml"),
            "--http", f"127.0.0.1:{ingressd_port}", "--https", "off", "--admin", "127.0.0.1:0",
            "--access-log", "off", "--log-level", "warning",
        ]  # fmt: skip
        with (
            process(["nginx", "-c", str(work / "backend.conf"), "-p", str(work)]),
            process(["nginx", "-c", str(work / "proxy.conf"), "-p", str(work)]) as nginx,
            process(ingressd_cmd, cwd=ROOT) as ingressd,
        ):
            for port in (backend, nginx_port, ingressd_port):
                wait_port(port)
            nginx_pid = nginx_worker(nginx.pid)
            results = {"ingressd": Result(), "nginx": Result()}
            targets = {"ingressd": (ingressd.pid, ingressd_port), "nginx": (nginx_pid, nginx_port)}
            wrk(f"http://127.0.0.1:{ingressd_port}/", 2, 50)  # warm-up
            for round_number in range(1, args.rounds + 1):
                for name in ("ingressd", "nginx") if round_number % 2 else ("nginx", "ingressd"):
                    pid, port = targets[name]
                    measure(pid, f"http://127.0.0.1:{port}", args, results[name])
                print(f"round {round_number}/{args.rounds} done", file=sys.stderr)
    report(results)


def report(results: dict[str, Result]) -> None:
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
        ("peak RSS MB", ing.rss, ngx.rss, ing.rss / ngx.rss, "ingressd < 40 MB", None),
    ]  # fmt: skip
    print(f"{'metric':<22}{'ingressd':>12}{'nginx':>12}{'ratio':>9}  target")
    for name, a, b, ratio, target, check in rows:
        verdict = ""
        if check is not None:
            verdict = "PASS" if check(ratio) else "FAIL"
        elif name.startswith("peak RSS"):
            verdict = "PASS" if a < 40 else "FAIL"
        print(f"{name:<22}{a:>12.1f}{b:>12.1f}{ratio:>9.2f}  {target} {verdict}")
    print(f"(medians of {len(ing.rps)} rounds; wrk -t1 -c50; CPU = process user+sys time)")


if __name__ == "__main__":
    main()
