"""`Deadline`: a restartable timeout that is cheap to push later.

The data path restarts its timeouts on every read; cancelling and scheduling a
loop timer each time would cost more than the read.  A `Deadline` only stores
the new expiry when it moves later, and the timer, when it fires early,
re-arms itself for the remaining time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    __slots__ = ("_callback", "_expires", "_handle", "_loop", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._expires: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0

    def start(self, seconds: float) -> None:
        """(Re)start: the callback runs `seconds` from now unless restarted or stopped."""
        expires = self._loop.time() + seconds
        self._expires = expires
        if self._handle is not None:
            if self._when <= expires:
                return
            self._handle.cancel()
        self._when = expires
        self._handle = self._loop.call_at(expires, self._fire)

    def stop(self) -> None:
        """The callback will not run; the timer itself lapses quietly."""
        self._expires = None

    def close(self) -> None:
        """Stop and release the loop timer (the owner is going away)."""
        self._expires = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def active(self) -> bool:
        return self._expires is not None

    def _fire(self) -> None:
        self._handle = None
        expires = self._expires
        if expires is None:
            return
        if self._loop.time() < expires:
            self._when = expires
            self._handle = self._loop.call_at(expires, self._fire)
            return
        self._expires = None
        self._callback()
