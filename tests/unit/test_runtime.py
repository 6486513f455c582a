"""A replaced runtime is freed by a worker thread, a slice at a time, once unused."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ingressd.runtime import Runtime, build_runtime, release_in_slices
from ingressd.settings import Settings

CONFIG = Path(__file__).parents[2] / "config" / "ingress.yaml"


def built() -> Runtime:
    return build_runtime(Settings(config_paths=(str(CONFIG),)), None)


def test_the_replaced_runtime_is_freed() -> None:
    runtime = built()
    ingress = runtime.config.ingresses[0]
    before = sys.getrefcount(ingress)
    box = [runtime]
    del runtime
    release_in_slices(box, patience=5.0, slice_size=1)
    assert box == []
    assert sys.getrefcount(ingress) == before - 1  # the Config's tuple held it; it is gone


def test_a_runtime_still_in_use_is_waited_for() -> None:
    """An exchange that started before the reload still holds the old runtime."""
    runtime = built()
    ingress = runtime.config.ingresses[0]
    before = sys.getrefcount(ingress)
    in_use = [runtime]
    box = [runtime]
    del runtime
    releaser = threading.Thread(target=release_in_slices, args=(box,), kwargs={"patience": 30.0})
    releaser.start()
    releaser.join(0.3)
    assert releaser.is_alive(), "it did not wait for the request still using the runtime"
    in_use.clear()  # the request finished
    releaser.join(10.0)
    assert not releaser.is_alive()
    assert sys.getrefcount(ingress) == before - 1
