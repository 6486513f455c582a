"""Read a big configuration in a child process.

Owns: `load`, which picks in-process or child-process loading, and the child
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
from collections.abc import Sequence

from .cli import LOG_FORMAT
from .config import load_config
from .errors import ConfigError
from .model import Config
from .yamlfile import expand_paths

ISOLATE_BYTES = 1024 * 1024  # about 350 Ingresses with their Services and endpoints


def load(paths: Sequence[str], *, certs_dir: str | None = None) -> Config:
    """`load_config`, in a child process when the files hold over `ISOLATE_BYTES`."""
    if _total_size(paths) <= ISOLATE_BYTES:
        return load_config(paths, certs_dir=certs_dir)
    return load_in_child(paths, certs_dir=certs_dir)


def load_in_child(paths: Sequence[str], *, certs_dir: str | None = None) -> Config:
    """`load_config` run by ``python -m ingressd.loader``; `ConfigError` as in-process."""
    request = json.dumps(
        {"paths": list(paths), "certs_dir": certs_dir, "log_level": logging.root.level}
    )
    child = subprocess.run(
        [sys.executable, "-m", "ingressd.loader", request],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        check=False,
    )
    if child.returncode != 0 or not child.stdout:
        raise ConfigError([f"the config loader process failed (exit status {child.returncode})"])
    outcome = pickle.loads(child.stdout)
    if isinstance(outcome, Config):
        return outcome
    raise ConfigError(outcome)


def _total_size(paths: Sequence[str]) -> int:
    total = 0
    for path in expand_paths(paths):
        with contextlib.suppress(OSError):  # load_config reports it, with the path
            total += os.path.getsize(path)
    return total


def _child(argv: Sequence[str]) -> int:
    # Ctrl-C reaches the whole process group: the server handles it; this child
    # has nothing to clean up and finishes or dies with its parent's pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    result = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the pickle
    request = json.loads(argv[1])
    logging.basicConfig(level=request["log_level"], format=LOG_FORMAT)
    outcome: Config | list[str]
    try:
        outcome = load_config(request["paths"], certs_dir=request["certs_dir"])
    except ConfigError as exc:
        outcome = list(exc.problems)
    result.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv))
