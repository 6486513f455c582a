"""Timeouts for the data path: a `TimerWheel` of restartable `Deadline`s.

The data path restarts a timeout on nearly every read.  A loop timer per
restart (uvloop: a libuv timer, several µs each) would cost more than the
read itself, so deadlines live in buckets of `resolution` seconds: pushing
a deadline later is one float store, pulling it earlier moves it between two
sets, and one loop timer per wheel checks the due bucket.  A timeout fires
between its expiry and one resolution later.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

RESOLUTION = 0.1


class TimerWheel:
    __slots__ = ("_buckets", "_handle", "_next_tick", "loop", "resolution")

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = RESOLUTION) -> None:
        self.loop = loop
        self.resolution = resolution
        self._buckets: dict[int, set[Deadline]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next_tick = 0

    def deadline(self, callback: Callable[[], object]) -> Deadline:
        return Deadline(self, callback)

    def _file(self, deadline: Deadline, expires: float) -> None:
        tick = math.ceil(expires / self.resolution)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
        bucket.add(deadline)
        deadline._tick = tick
        if self._handle is None or tick < self._next_tick:
            if self._handle is not None:
                self._handle.cancel()
            self._next_tick = tick
            self._handle = self.loop.call_at(tick * self.resolution, self._run)

    def _unfile(self, deadline: Deadline) -> None:
        bucket = self._buckets.get(deadline._tick)
        if bucket is not None:
            bucket.discard(deadline)
            if not bucket:
                del self._buckets[deadline._tick]
        deadline._tick = 0

    def _run(self) -> None:
        self._handle = None
        now = self.loop.time()
        due_tick = math.floor(now / self.resolution + 1e-9)
        due = [t for t in self._buckets if t <= due_tick]
        for tick in sorted(due):
            for deadline in self._buckets.pop(tick, ()):
                deadline._tick = 0
                deadline._check(now)
        if self._handle is not None:  # a deadline re-filed above scheduled one already
            self._handle.cancel()
            self._handle = None
        if self._buckets:
            tick = min(self._buckets)
            self._next_tick = tick
            self._handle = self.loop.call_at(tick * self.resolution, self._run)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buckets.clear()


class Deadline:
    """A timeout that runs `callback` once, unless restarted or stopped first."""

    __slots__ = ("_callback", "_expires", "_tick", "_wheel")

    def __init__(self, wheel: TimerWheel, callback: Callable[[], object]) -> None:
        self._wheel = wheel
        self._callback = callback
        self._expires: float | None = None
        self._tick = 0  # the bucket it is filed in; 0: none

    def start(self, seconds: float) -> None:
        """(Re)start: the callback runs `seconds` from now."""
        expires = self._wheel.loop.time() + seconds
        self._expires = expires
        tick = self._tick
        # Filed in a later bucket, or in none: (re)file.  Filed earlier: the
        # bucket's check will find it not yet due and file it again.
        if tick == 0 or tick * self._wheel.resolution > expires + self._wheel.resolution:
            if tick:
                self._wheel._unfile(self)
            self._wheel._file(self, expires)

    def stop(self) -> None:
        """The callback will not run (the bucket entry lapses quietly)."""
        self._expires = None

    def close(self) -> None:
        self._expires = None
        if self._tick:
            self._wheel._unfile(self)

    @property
    def active(self) -> bool:
        return self._expires is not None

    def _check(self, now: float) -> None:
        expires = self._expires
        if expires is None:
            return
        if now + 1e-9 < expires:
            self._wheel._file(self, expires)
            return
        self._expires = None
        self._callback()
