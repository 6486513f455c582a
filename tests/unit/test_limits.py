"""limit-rps / limit-rpm / limit-connections accounting (nginx's limit_req with burst and
nodelay, limit_conn), its memory bound, and the store that outlives reloads."""

from __future__ import annotations

import pytest

from ingressd import limits
from ingressd.limits import ConnectionZone, LimitStore, RateZone


def test_a_burst_passes_at_once_then_the_rate_refills_it() -> None:
    zone = RateZone(rate=2.0, burst=4)  # limit-rps 2 with limit-burst-multiplier 2
    assert [zone.allow("a", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert zone.allow("b", 0.0)  # per client address
    assert not zone.allow("a", 0.4)  # 0.8 requests drained: still over
    assert zone.allow("a", 0.5)  # one request's worth drained
    assert not zone.allow("a", 0.5)
    assert [zone.allow("a", 10.0) for _ in range(6)] == [True] * 5 + [False]  # all drained


def test_refused_requests_do_not_count() -> None:
    zone = RateZone(rate=1.0, burst=0)
    assert zone.allow("a", 0.0)
    assert not any(zone.allow("a", 0.1 * i) for i in range(1, 10))
    assert zone.allow("a", 1.0)  # as if the refused ones never came


def test_rate_state_is_bounded_and_forgets_the_least_recent_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "RATE_STATES", 100)
    zone = RateZone(rate=1.0, burst=0)
    zone.allow("kept", 0.0)
    for n in range(99):
        zone.allow(f"10.0.0.{n}", 0.0)
    assert not zone.allow("kept", 0.0)  # seen again: now the most recent
    for n in range(99, 1000):
        zone.allow(f"10.0.{n}.1", 0.0)
    assert len(zone.states) == 100 and "kept" not in zone.states


def test_requests_in_progress_are_counted_and_released() -> None:
    zone = ConnectionZone(limit=2)
    assert zone.acquire("a") and zone.acquire("a") and not zone.acquire("a")
    assert zone.acquire("b")
    zone.release("a")
    assert zone.acquire("a")
    for _ in range(3):
        zone.release("a")
    zone.release("b")
    assert zone.counts == {}  # nothing kept for clients with nothing in progress


def test_the_store_keeps_zones_across_reloads_and_forgets_gone_ingresses() -> None:
    store = LimitStore()
    zone = store.rate_zone(("shop/web", "rps"), 1.0, 5)
    zone.allow("a", 0.0)
    connections = store.connection_zone(("shop/web", "connections"), 3)
    assert store.rate_zone(("shop/web", "rps"), 2.0, 10) is zone  # a reload changed the rate
    assert (zone.rate, zone.burst, "a" in zone.states) == (2.0, 10, True)
    store.retain({("shop/web", "rps")})
    assert store.connection_zone(("shop/web", "connections"), 3) is not connections
    store.retain(set())
    assert not store.rates and not store.connections
