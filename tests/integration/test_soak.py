"""A short soak (benchmarks/soak.py): mixed traffic while the config is reloaded every second.

The soak's own checks are the assertions: no valid request failed, every body was
byte-exact, and ingressd's RSS and open descriptors did not grow.  The full-length run
is ``.venv/bin/python benchmarks/soak.py --seconds 60``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import soak

SECONDS = 12.0
WARMUP = 2.0


async def test_mixed_traffic_with_reloads_fails_nothing_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    report = await soak.run_soak(tmp_path, SECONDS, warmup=WARMUP, seed=20240601)
    summary = report.summary()
    assert not report.problems(), summary
    kinds = {"keepalive-get", "new-conn-get", "upload", "download", "websocket", "error-404-502"}
    assert kinds <= {kind for kind, count in report.tally.requests.items() if count}, summary
    assert report.tally.reloads >= SECONDS - 2, summary
