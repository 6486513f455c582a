"""Fuzzing the data-path codec against h11 (codec_target.py), bounded in time.

With atheris installed (the ``test`` extra), the libFuzzer harness runs for
FUZZ_SECONDS in a subprocess and must end without a finding.  Without it, hypothesis
drives the same target for the same time instead.  A short hypothesis run always
checks the target itself, with or without atheris.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import codec_target

FUZZ_SECONDS = 20
HARNESS = Path(__file__).with_name("fuzz_codec.py")
ROOT = Path(__file__).resolve().parents[2]
HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """A seed with a few bytes replaced, inserted or deleted (where HTTP bugs live)."""
    data = bytearray(draw(st.sampled_from(codec_target.seeds())))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(2, max(2, len(data))))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from(b"\r\n \t:;,0159aAfFzZ\x00\x7f\xff"))
        if action == "insert" or at >= len(data):
            data[at:at] = bytes([byte])
        elif action == "replace":
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


INPUTS = st.one_of(mutated_seed(), st.sampled_from(codec_target.seeds()), st.binary(max_size=300))


_QUICK = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
_ROUND = settings(_QUICK, derandomize=False)  # each round of the time-bounded run differs


@_ROUND
@given(INPUTS)
def _fuzz_round(data: bytes) -> None:
    codec_target.run_one(data)


_CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
_CHUNKED_200 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

# Inputs the fuzzer found, reduced by hand: each must pass the target from now on.
FINDINGS = {
    # The codec checks only the field grammar of trailers; h11 also validates the
    # framing fields there, so it rejects these and the codec must not accept them.
    "request-trailer-transfer-encoding": codec_target.encode(
        _CHUNKED_POST + b"0\r\nTransfer-Encoding: gzip\r\n\r\n"
    ),
    "request-trailer-bad-content-length": codec_target.encode(
        _CHUNKED_POST + b"0\r\nContent-Length: x\r\n\r\n"
    ),
    "request-trailer-conflicting-content-length": codec_target.encode(
        _CHUNKED_POST + b"0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    ),
    "response-trailer-transfer-encoding": codec_target.encode(
        _CHUNKED_200 + b"0\r\nTransfer-Encoding: gzip\r\n\r\n", response=True
    ),
}


@pytest.mark.parametrize("data", FINDINGS.values(), ids=FINDINGS.keys())
def test_past_finding_passes_the_target(data: bytes) -> None:
    codec_target.run_one(data)


def test_every_seed_passes_the_target() -> None:
    for seed in codec_target.seeds():
        codec_target.run_one(seed)


@_QUICK
@given(INPUTS)
def test_hypothesis_drives_the_fuzz_target(data: bytes) -> None:
    """A quick, reproducible run of the target (it is checked even without atheris)."""
    codec_target.run_one(data)


@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not installed")
def test_atheris_finds_nothing(tmp_path: Path) -> None:
    """``python tests/fuzz/fuzz_codec.py -max_total_time=N`` exits 0: no crash, no finding."""
    result = subprocess.run(
        [sys.executable, str(HARNESS), f"-max_total_time={FUZZ_SECONDS}", "-timeout=10",
         "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={tmp_path}/"],
        cwd=ROOT, capture_output=True, text=True, timeout=FUZZ_SECONDS + 40,
    )  # fmt: skip
    output = result.stdout + result.stderr
    crashes = [path.name for path in tmp_path.iterdir()]
    assert result.returncode == 0 and not crashes, f"{crashes}\n{output[-6000:]}"
    assert "Done " in output, output[-2000:]


@pytest.mark.skipif(HAVE_ATHERIS, reason="atheris runs the harness instead")
def test_hypothesis_instead_of_atheris_finds_nothing() -> None:
    """The same target, the same time budget, when atheris cannot be installed."""
    deadline = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < deadline:
        _fuzz_round()
