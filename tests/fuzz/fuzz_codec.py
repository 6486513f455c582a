"""atheris (libFuzzer) harness for the data-path codec: ingressd.codec against h11.

    .venv/bin/python tests/fuzz/fuzz_codec.py -max_total_time=30 [libFuzzer flags] [CORPUS_DIR]

The target and the properties it checks are in codec_target.py (the pytest run in
test_fuzz_codec.py uses the same function): random bytes, cut at random points, fed to
`RequestParser` or `ResponseParser`; only `ProtocolError` / `UpstreamProtocolError` may
escape, and the codec must never complete a message h11 rejects.  ingressd and h11 are
instrumented for coverage.  Built-in seeds (valid requests and responses of every
framing) are passed with ``-seed_inputs`` from a temporary directory; a crash is saved
by libFuzzer as ``crash-<sha1>`` (``-artifact_prefix=DIR/`` to choose where) and
replayed by giving that file as the only argument.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import this checkout
    sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["ingressd", "h11"]):
    from tests.fuzz import codec_target


def main(argv: list[str]) -> int:
    """Fuzz in a child process, so the seed directory is removed when libFuzzer exits
    (it ends the process itself: no `finally` of ours would run)."""
    with tempfile.TemporaryDirectory(prefix="ingressd-fuzz-seeds-") as directory:
        names = []
        for number, seed in enumerate(codec_target.seeds()):
            path = Path(directory) / f"seed-{number:03d}"
            path.write_bytes(seed)
            names.append(str(path))
        args = [*argv, "-seed_inputs=" + ",".join(names)]
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            atheris.Setup(args, codec_target.run_one)
            atheris.Fuzz()
            os._exit(0)  # not reached: libFuzzer exits by itself
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
