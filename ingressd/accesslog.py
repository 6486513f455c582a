"""The access log: one line per request, text (nginx "combined" + extras) or JSON.

Owns: formatting and buffered writing.  Lines collect in memory and are
written at most once a second (or at 64 KiB), so the event loop never does a
write per request; `reopen` (SIGUSR1) lets logrotate move the file.  Its own
logger is not used: the file is written directly, like nginx's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import BinaryIO

logger = logging.getLogger(__name__)

_FLUSH_SECONDS = 1.0
_FLUSH_BYTES = 64 * 1024


class AccessLog:
    __slots__ = ("_buffer", "_file", "_json", "_last_second", "_last_stamp", "_loop",
                 "_size", "_timer", "path")  # fmt: skip

    def __init__(self, path: str, log_format: str, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path  # "-" is standard output
        self._json = log_format == "json"
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last_second = -1
        self._last_stamp = ""
        self._file: BinaryIO = self._open()

    def _open(self) -> BinaryIO:
        if self.path == "-":
            return sys.stdout.buffer
        return open(self.path, "ab")

    def log(
        self, remote: str, method: bytes, target: bytes, version: bytes, status: int,
        sent: int, body_sent: int, referer: bytes, agent: bytes, request_time: float,
        upstream_addr: str, upstream_status: int, upstream_time: float | None, request_id: bytes,
        ingress: str, service: str, canary: bool = False,
    ) -> None:  # fmt: skip
        now = time.time()
        if self._json:
            request = "-"  # a request ingressd could not parse, as nginx logs it
            if method:
                request = (
                    f"{method.decode('latin-1')} {target.decode('latin-1')} HTTP/{version.decode()}"
                )
            record = {
                "time": self._stamp(now),
                "remote_addr": remote,
                "request": request,
                "status": status,
                "bytes_sent": sent,
                "body_bytes_sent": body_sent,
                "http_referer": referer.decode("latin-1"),
                "http_user_agent": agent.decode("latin-1"),
                "request_time": round(request_time, 3),
                "upstream_addr": upstream_addr or None,
                "upstream_status": upstream_status or None,
                "upstream_response_time": None
                if upstream_time is None
                else round(upstream_time, 3),
                "request_id": request_id.decode(),
                "ingress": ingress or None,
                "service": service or None,
                "canary": canary,
            }
            line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        else:
            request = "-"
            if method:
                request = f"{method.decode('latin-1')} {_quote(target)} HTTP/{version.decode()}"
            line = (
                f'{remote} - - [{self._stamp(now)}] "{request}" {status} {body_sent} '
                f'"{_quote(referer) or "-"}" "{_quote(agent) or "-"}" {request_time:.3f} '
                f"{upstream_addr or '-'} {upstream_status or '-'} "
                f"{'-' if upstream_time is None else f'{upstream_time:.3f}'} "
                f"{request_id.decode()} {ingress or '-'} {service or '-'} "
                f"{'canary' if canary else '-'}\n"
            ).encode()
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(_FLUSH_SECONDS, self.flush)

    def _stamp(self, now: float) -> str:
        second = int(now)
        if second != self._last_second:
            self._last_second = second
            self._last_stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))
        return self._last_stamp

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            logger.error("access log %s: %s (%d bytes lost)", self.path, exc, len(data))

    def reopen(self) -> None:
        """SIGUSR1: after logrotate renamed the file, continue in a new one at `path`."""
        self.flush()
        if self.path == "-":
            return
        try:
            new = self._open()
        except OSError as exc:
            logger.error("access log %s: cannot reopen: %s; keeping the old file", self.path, exc)
            return
        self._file.close()
        self._file = new
        logger.info("access log reopened: %s", self.path)

    def close(self) -> None:
        self.flush()
        if self.path != "-":
            self._file.close()


def _quote(value: bytes) -> str:
    """Like nginx's escaping: '"', '\\' and non-printable bytes as \\xHH."""
    text = value.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c not in '"\\' and ord(c) < 127 else f"\\x{ord(c):02X}"
        for c in text
    )
