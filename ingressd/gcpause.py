"""Pause the cyclic garbage collector while a config is built.

Owns: `gc_paused`.  Loading and compiling 10,000 Ingresses allocates millions of
objects that all stay alive, none of them garbage cycles; each allocation burst
triggers collections that walk the whole growing heap again, which more than
doubled `compile_routes` at that size (0.8 s paused, 1.8-2.2 s not).  Reference
counting still frees everything as usual; only the cycle search waits.

Builds run in the reload thread while the loop thread serves, so the pause is
counted: the collector comes back when the last pauser leaves, and only if it
was enabled when the first one came.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
