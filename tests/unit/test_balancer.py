"""Round-robin and passive health, with the clock passed in."""

from __future__ import annotations

from ingressd.balancer import DOWN_SECONDS, PassiveHealth, RoundRobin
from ingressd.routes import Endpoint

A, B, C = (Endpoint("127.0.0.1", p) for p in (1, 2, 3))


def test_round_robin_spreads_evenly() -> None:
    picker, health = RoundRobin((A, B, C)), PassiveHealth()
    picks = [picker.pick(health, 0.0) for _ in range(9)]
    assert picks == [A, B, C] * 3


def test_endpoint_marked_down_is_skipped_for_ten_seconds() -> None:
    picker, health = RoundRobin((A, B)), PassiveHealth()
    health.mark_down(A, now=100.0)
    assert {picker.pick(health, 101.0) for _ in range(4)} == {B}
    assert A in {picker.pick(health, 100.0 + DOWN_SECONDS) for _ in range(2)}


def test_excluded_endpoints_are_not_picked_again_within_a_request() -> None:
    picker, health = RoundRobin((A, B, C)), PassiveHealth()
    assert picker.pick(health, 0.0, exclude=(A, B)) == C
    assert picker.pick(health, 0.0, exclude=(A, B, C)) is None


def test_when_every_endpoint_is_down_one_is_tried_anyway() -> None:
    picker, health = RoundRobin((A, B)), PassiveHealth()
    health.mark_down(A, 0.0)
    health.mark_down(B, 0.0)
    assert picker.pick(health, 1.0) in (A, B)


def test_forget_drops_marks_of_removed_endpoints() -> None:
    health = PassiveHealth()
    health.mark_down(A, 0.0)
    health.mark_down(B, 0.0)
    health.forget({B})
    assert health.down(1.0) == [B]
