"""A reload of 10,000 Ingresses under load: what clients see meanwhile.

Writes the manifest of `bench_routes.py` (10,000 Ingresses by default, with a
real certificate in its TLS Secrets) plus one Ingress routed to an nginx
backend, starts ingressd on it, then runs ``wrk -t1 -c50 --latency`` twice
against that Ingress: once undisturbed, once with a SIGHUP 3 s in.  Prints
req/s, p50, p99 and the worst latency of both runs, the build time of the
reload (from ingressd's log line) and ingressd's RSS after start and after
the reload.

    .venv/bin/python benchmarks/bench_reload.py [--size 10000] [--duration 50]

The wrk run must outlast the reload (about 30-45 s at 10,000 Ingresses here):
the script says so when it did not.  Needs nginx and wrk (installed with
apt-get when missing; root only).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_proxy import HOST, INGRESS, NGINX_BACKEND, ensure_tools, free_port, process, wait_port
from bench_proxy import wrk as run_wrk
from bench_routes import generate_manifest

from ingressd.tls import generate_self_signed

SIGHUP_AFTER = 3.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for_line(log: Path, pattern: str, start: int, timeout: float) -> re.Match[str] | None:
    """The first match of `pattern` in the log after offset `start`, polling until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text()[start:])
        if match:
            return match
        time.sleep(0.2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="Ingresses (default 10,000)")
    parser.add_argument("--duration", type=int, default=50, help="seconds per wrk run")
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # nginx's worker reads its files
        config = work / "config"
        config.mkdir()
        tls_pair = generate_self_signed(["*.example.com"])
        manifest = generate_manifest(args.size, str(config), tls_pair)
        backend_port, http_port, admin_port = free_port(), free_port(), free_port()
        (work / "backend.conf").write_text(NGINX_BACKEND.format(dir=work, port=backend_port))
        (config / "zz-bench.yaml").write_text(INGRESS.format(backend=backend_port, host=HOST))
        print(
            f"bench_reload: {args.size:,} Ingresses ({manifest.documents:,} documents, "
            f"{manifest.size_bytes / 2**20:.1f} MB of YAML), wrk -c50 for {args.duration} s"
        )
        log = work / "ingressd.log"
        with (
            process(["nginx", "-c", str(work / "backend.conf")]),
            open(log, "wb") as log_file,
        ):
            wait_port(backend_port)
            command = [
                sys.executable, "-m", "ingressd", "--config", str(config),
                "--http", f"127.0.0.1:{http_port}", "--admin", f"127.0.0.1:{admin_port}",
                "--access-log", "off",
            ]  # fmt: skip
            started = time.monotonic()
            ingressd = subprocess.Popen(command, stdout=log_file, stderr=log_file)
            try:
                wait_port(http_port, timeout=600)
                print(f"ingressd serving after {time.monotonic() - started:.1f} s, "
                      f"RSS {rss_mb(ingressd.pid):.0f} MB")  # fmt: skip
                url = f"http://127.0.0.1:{http_port}/"
                quiet = run_wrk(url, args.duration, 50)
                mark = len(log.read_text())
                hup = threading.Timer(SIGHUP_AFTER, ingressd.send_signal, (signal.SIGHUP,))
                hup.start()
                loaded = run_wrk(url, args.duration, 50)
                done = wait_for_line(log, r"reloaded: .* built in ([\d.]+) s", mark, 600)
                report(quiet, loaded, done, args.duration, rss_mb(ingressd.pid))
            finally:
                ingressd.send_signal(signal.SIGTERM)
                ingressd.wait(30)


def report(
    quiet: dict[str, float],
    loaded: dict[str, float],
    done: re.Match[str] | None,
    duration: int,
    rss: float,
) -> None:
    print(f"\n{'run':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, stats in (("no reload", quiet), ("reload 3 s in", loaded)):
        print(
            f"{name:<22}{stats['rps']:>9,.0f}{stats['p50']:>9.1f}"
            f"{stats['p99']:>9.1f}{stats['max']:>9.1f}"
        )
    if done is None:
        print("\nthe reload did not finish (no 'reloaded:' line); see ingressd's log")
        return
    built = float(done.group(1))
    print(f"\nreload built in {built:.1f} s; RSS after it {rss:.0f} MB")
    if SIGHUP_AFTER + built > duration:
        print(f"note: the reload ended after the wrk run: use --duration {int(built) + 10}")


if __name__ == "__main__":
    main()
