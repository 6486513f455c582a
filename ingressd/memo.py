"""A cache for hot-path checks of bytes that peers send (Host values, status lines).

Owns: `short_cache`, an `lru_cache` that only keeps short arguments.  Clients and
backends repeat the same few values, so caching pays; a peer sending long distinct
values must not fill memory (4,096 values of 32 KiB would pin 128 MB), so long
arguments are computed each time and never stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ShortCached(Protocol[T_co]):
    def __call__(self, value: bytes) -> T_co: ...
    def cache_info(self) -> functools._CacheInfo: ...


def short_cache(max_length: int, maxsize: int) -> Callable[[Callable[[bytes], T]], ShortCached[T]]:
    """Decorate `function(value: bytes)`: cached when ``len(value) <= max_length``."""

    def decorate(function: Callable[[bytes], T]) -> ShortCached[T]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        # A plain closure, not an object with __call__: this runs on every request.
        def call(value: bytes) -> T:
            return cached(value) if len(value) <= max_length else function(value)

        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return cast(ShortCached[T], functools.update_wrapper(call, function))

    return decorate
