"""Same-run A/B of CPU per request: this checkout's ingressd against another checkout's.

The machine is shared and its speed drifts by tens of percent between runs, so "did
this change make the plain route slower?" is answered by running both versions at once:
one ingressd process each, on the same route and nginx backend, measured alternately
with ``wrk -t1 -c50``.  The other checkout is typically a worktree of an older commit:

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/bench_ab.py --old /tmp/before [--rounds 10] [--duration 6]

Needs nginx and wrk, as bench_proxy.py (which this reuses).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import bench_proxy as bench

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the other checkout (a directory)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=int, default=6)
    args = parser.parse_args()
    bench.ensure_tools()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as an unprivileged user
        (work / "big.bin").write_bytes(b"x")
        ports = {name: bench.free_port() for name in ("backend", "old", "new")}
        (work / "backend.conf").write_text(
            bench.NGINX_BACKEND.format(dir=work, port=ports["backend"])
        )
        (work / "ingress.yaml").write_text(
            bench.INGRESS.format(backend=ports["backend"], host=bench.HOST)
        )

        def ingressd(port: int) -> list[str]:
            return [
                sys.executable, "-m", "ingressd", "--config", str(work / "ingress.yaml"),
                "--http", f"127.0.0.1:{port}", "--https", "off", "--admin", "127.0.0.1:0",
                "--access-log", "off", "--log-level", "warning",
            ]  # fmt: skip

        old_env = {**os.environ, "PYTHONPATH": args.old}  # its ingressd, not this one
        with (
            bench.process(["nginx", "-c", str(work / "backend.conf"), "-p", str(work)]),
            bench.process(ingressd(ports["old"]), cwd=args.old, env=old_env) as old,
            bench.process(ingressd(ports["new"]), cwd=ROOT) as new,
        ):
            for port in ports.values():
                bench.wait_port(port)
            pids = {"old": old.pid, "new": new.pid}
            for name in pids:
                bench.wrk(f"http://127.0.0.1:{ports[name]}/", 2, 50)  # warm-up
            cpu: dict[str, list[float]] = {"old": [], "new": []}
            for round_number in range(args.rounds):
                order = ("old", "new") if round_number % 2 == 0 else ("new", "old")
                for name in order:
                    url = f"http://127.0.0.1:{ports[name]}/"
                    _, micros = bench.cpu_per_request(pids[name], url, args.duration)
                    cpu[name].append(micros)
    med = statistics.median
    for name, values in cpu.items():
        print(f"{name}: CPU µs/request {[round(v, 1) for v in values]}, median {med(values):.1f}")
    print(f"new/old: {med(cpu['new']) / med(cpu['old']):.3f}")


if __name__ == "__main__":
    main()
