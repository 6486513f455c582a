"""Read a big configuration in a child process.

Owns: `read`, which picks in-process or child-process loading, and the child
(``python -m ingressd.loader``).  Parsing YAML costs about 2 s of CPU per
1,000 Ingresses and its peak memory is many times the result's (458 MB to keep
53 MB at 10,000 Ingresses).  In the serving process both hurt: the reload
thread holds the GIL for most of that time (through a 28 s reload at 10,000
Ingresses the loop served half its usual rate at twice the latency), and the
peak stays as RSS, since CPython seldom returns freed memory.  A child parses
on another core, sends the finished `Config` back pickled and exits, taking
its peak with it; unpickling costs the server a tenth of the parse.

Small configurations load in-process: starting a child costs more than they do.
The pickle comes from our own child over our own pipe, never from a peer.

The child runs in its own session, so a Ctrl-C or a SIGHUP sent to the
server's process group is the server's alone, and it exits as soon as its
standard input closes: a server that dies never leaves a parser behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import load_config
from .errors import ConfigError
from .logs import LOG_FORMAT  # the server's log lines, also from its child
from .model import Config
from .yamlfile import expand_paths

ISOLATE_BYTES = 1024 * 1024  # about 350 Ingresses with their Services and endpoints

# The directory holding this `ingressd` package: the child imports the same code
# whatever the server's working directory holds.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def read(paths: Sequence[str], *, certs_dir: str | None = None) -> Callable[[], Config]:
    """Do the slow part of loading now; the returned call makes the `Config`.

    Over `ISOLATE_BYTES` the child parses now, while this thread only waits
    (allocating nothing), and the call unpickles its answer; smaller files are
    parsed by the call itself.  The caller decides what surrounds the call (the
    runtime build pauses the cyclic collector around it).  `ConfigError` lists
    every problem, from either step.
    """
    if _total_size(paths) <= ISOLATE_BYTES:
        return lambda: load_config(paths, certs_dir=certs_dir)
    pickled = run_child(paths, certs_dir=certs_dir)
    return lambda: _unpickle(pickled)


def load_in_child(paths: Sequence[str], *, certs_dir: str | None = None) -> Config:
    """`load_config` run by ``python -m ingressd.loader``; `ConfigError` as in-process."""
    return _unpickle(run_child(paths, certs_dir=certs_dir))


def run_child(paths: Sequence[str], *, certs_dir: str | None = None) -> bytes:
    """The child's pickled answer: a `Config`, or the problems and warnings."""
    request = {"paths": list(paths), "certs_dir": certs_dir, "log_level": logging.root.level}
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, (_PACKAGE_ROOT, environment.get("PYTHONPATH")))
    )
    try:
        child = subprocess.Popen(
            [sys.executable, "-P", "-m", "ingressd.loader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
    except OSError as exc:
        problem = f"cannot start the config loader process {sys.executable}: {exc}"
        raise ConfigError([problem]) from exc
    assert child.stdin is not None and child.stdout is not None
    try:
        with contextlib.suppress(BrokenPipeError):  # it died at once: its status says why
            child.stdin.write(json.dumps(request).encode() + b"\n")
            child.stdin.flush()
        pickled = child.stdout.read()
        child.wait()
    finally:
        # Only now: stdin's closing is how the child learns the server is gone.
        with contextlib.suppress(OSError):
            child.stdin.close()
        child.stdout.close()
        if child.returncode is None:
            child.kill()
            child.wait()
    status = child.returncode
    if status != 0 or not pickled:
        raise ConfigError([f"the config loader process failed ({_describe(status)})"])
    return pickled


def _unpickle(pickled: bytes) -> Config:
    outcome = pickle.loads(pickled)
    if isinstance(outcome, Config):
        return outcome
    problems, warnings = outcome
    raise ConfigError(problems, warnings)


def _describe(status: int) -> str:
    if status >= 0:
        return f"exit status {status}"
    name = signal.Signals(-status).name
    return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")


def _total_size(paths: Sequence[str]) -> int:
    total = 0
    for path in expand_paths(paths):
        with contextlib.suppress(OSError):  # load_config reports it, with the path
            total += os.path.getsize(path)
    return total


def _exit_when_orphaned() -> None:
    # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered
    # reader makes the interpreter's shutdown abort.
    while os.read(0, 4096):
        pass  # end of file: the server closed the pipe or died
    os._exit(1)


def _child() -> int:
    result = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the pickle
    request = json.loads(sys.stdin.buffer.readline())
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    logging.basicConfig(level=request["log_level"], format=LOG_FORMAT)
    outcome: Config | tuple[list[str], tuple[str, ...]]
    try:
        outcome = load_config(request["paths"], certs_dir=request["certs_dir"])
    except ConfigError as exc:
        outcome = (list(exc.problems), exc.warnings)
    except Exception:  # a bug: its traceback on stderr, and the server keeps serving
        traceback.print_exc()
        return 1
    result.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
