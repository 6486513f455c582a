"""Send each connection's output once per event-loop iteration.

Owns: `Outbox`.  A send to a socket whose reader sleeps wakes that reader up,
and the sender pays for the wake-up; on a machine with few CPUs it is an
inter-processor interrupt, and with every event's output sent at once it was
16 % of ingressd's CPU (`sock_def_readable` in `perf`).  uvloop runs
`call_soon` callbacks after the I/O callbacks of one poll, so output held
until then goes out as one burst per iteration: a backend or a client that the
first send woke is usually still awake for the next one, and one connection's
output from several events leaves in one send.  Under `wrk -c50` this cut
ingressd's CPU per request by about a third.

A writer holds its own bytes and says so here once; `flush_output` sends them.
A chunk of `SEND_AT_ONCE` bytes or more is sent at once with what is held:
that is a body streaming, where the wake-ups do not matter, and its writes
must meet the transport's flow control at once.  Held, libuv's up to 32 reads
per poll of a fast backend would all pile up here before the client's
`pause_writing` could stop them (48 MB peak RSS for a 10 MB download instead of
34 MB).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

logger = logging.getLogger(__name__)


def send(transport: asyncio.Transport | None, chunks: list[bytes]) -> None:
    """Write `chunks` in one call, unless the connection is closing or gone (dropped then)."""
    if transport is not None and not transport.is_closing():
        transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])


SEND_AT_ONCE = 16 * 1024


class Writer(Protocol):
    def flush_output(self) -> None: ...


class Outbox:
    __slots__ = ("_call_soon", "_held")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._call_soon = loop.call_soon
        self._held: list[Writer] = []

    def hold(self, writer: Writer) -> None:
        """Call `writer.flush_output()` once the callbacks of this iteration have run."""
        held = self._held
        if not held:
            self._call_soon(self.flush)
        held.append(writer)

    def flush(self) -> None:
        """Send what is held now (the loop calls this; so can a caller without a loop turn)."""
        held, self._held = self._held, []
        for writer in held:
            try:
                writer.flush_output()
            except Exception:  # one broken connection must not keep the others' bytes
                logger.exception("sending the output of %r failed", writer)
