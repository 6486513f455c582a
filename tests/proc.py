"""Run `ingressd` as a real subprocess on free ports, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

_LISTENING = re.compile(r"ingressd: (\w+) listening on (\S+):(\d+)")


class Ingressd:
    """``python -m ingressd`` with http/admin on port 0; stdout/stderr collected.

    The access log is off unless `access_log` names a path (or ``-``); its format is
    chosen with ``--log-format`` in `extra`.  `preexec_fn` runs in the child before
    ingressd starts (e.g. `resource.setrlimit` to lower its limits).
    """

    def __init__(
        self,
        config: Path | str,
        *extra: str,
        https: bool = False,
        access_log: Path | str = "off",
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        self.config = Path(config)
        self.preexec_fn = preexec_fn
        self.args = [
            sys.executable, "-m", "ingressd", "--config", str(config),
            "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--https", "127.0.0.1:0" if https else "off",
            "--access-log", str(access_log), *extra,
        ]  # fmt: skip
        self.ports: dict[str, int] = {}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(
        self, timeout: float = 15.0, listeners: tuple[str, ...] = ("http", "admin")
    ) -> Ingressd:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=self.preexec_fn,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda: all(name in self.ports for name in listeners), timeout,
                      what=f"listeners {listeners}")  # fmt: skip
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                match = _LISTENING.search(line)
                if match:
                    self.ports[match.group(1)] = int(match.group(3))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: object, timeout: float = 10.0, what: str = "") -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc is not None and self.proc.poll() is not None
                                      and not condition()):  # fmt: skip
                    raise AssertionError(
                        f"ingressd: gave up waiting for {what}; output:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.1))

    def wait_for_line(self, text: str, timeout: float = 10.0, start: int = 0) -> str:
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.lines[start:] if text in line]
            return bool(found)

        self.wait_for(seen, timeout, what=repr(text))
        return found[0]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._close_output()

    def _close_output(self) -> None:
        """After the exit: read the last lines, then close the pipe (no ResourceWarning)."""
        assert self.proc is not None
        if self._reader is not None:
            self._reader.join(5.0)
        if self.proc.stdout is not None and not self._reader_alive():
            self.proc.stdout.close()

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def open_fds(self) -> int:
        """How many file descriptors ingressd holds open (/proc/PID/fd)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))
