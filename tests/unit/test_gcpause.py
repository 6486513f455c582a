"""The collector pause around config builds: it always comes back as it was."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingressd import loader
from ingressd.config import load_config
from ingressd.gcpause import gc_paused
from ingressd.routes import compile_routes
from ingressd.runtime import build_runtime
from ingressd.settings import Settings

CONFIG = Path(__file__).parents[2] / "config" / "ingress.yaml"


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_enabled_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_enabled_again_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("build failed")
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_enable_once_the_last_leaves() -> None:
    """A reload thread and another builder overlapping out of order."""
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen_after_first_left: list[bool] = []

    def second() -> None:
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen_after_first_left.append(gc.isenabled())

    thread = threading.Thread(target=second)
    thread.start()
    with gc_paused():
        first_in.set()
        assert second_in.wait(5)
    first_out.set()
    thread.join(5)
    assert not thread.is_alive()
    assert seen_after_first_left == [False]  # the first leaving did not re-enable it
    assert gc.isenabled()


def test_loading_and_compiling_leave_the_collector_enabled() -> None:
    gc.enable()
    table = compile_routes(load_config([str(CONFIG)]))
    assert table.hosts
    assert gc.isenabled()


def test_a_built_runtime_is_frozen_before_the_collector_comes_back() -> None:
    """Else the first collection after a reload scans every object the build made
    (about 0.5 s with the GIL held at 10,000 Ingresses: a stall of the serving thread)."""
    gc.enable()
    frozen_before = gc.get_freeze_count()
    try:
        runtime = build_runtime(Settings(config_paths=(str(CONFIG),)), None)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before
        assert gc.get_count()[0] < 100  # nothing young left over from the build
        assert runtime.table.hosts
    finally:
        gc.unfreeze()


def test_garbage_made_while_the_child_parses_is_collected_not_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The serving thread makes garbage cycles while a reload's child parses (seconds
    at 10,000 Ingresses); the freeze that ends the build must not keep them forever."""

    class Node:
        pass

    made: list[weakref.ref[Node]] = []
    real_run_child = loader.run_child

    def run_child_while_the_loop_serves(*args: Any, **kwargs: Any) -> bytes:
        node = Node()
        node.cycle = node  # type: ignore[attr-defined]
        made.append(weakref.ref(node))
        del node
        return real_run_child(*args, **kwargs)

    monkeypatch.setattr(loader, "run_child", run_child_while_the_loop_serves)
    monkeypatch.setattr(loader, "ISOLATE_BYTES", 0)
    gc.enable()
    try:
        runtime = build_runtime(Settings(config_paths=(str(CONFIG),)), None)
        assert runtime.table.hosts
        gc.collect()  # frozen objects are out of its reach
        assert made and made[0]() is None
    finally:
        gc.unfreeze()
