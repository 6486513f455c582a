"""Endpoint pickers: round-robin over the endpoints that passive health allows.

Owns: the cursor of each backend and the "down until" marks of endpoints.
Pure: time is passed in, so tests need no clock.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from .routes import Endpoint

DOWN_SECONDS = 10.0


class PassiveHealth:
    """Endpoints that failed to connect are skipped for `DOWN_SECONDS` (SPEC §4)."""

    __slots__ = ("_down_until",)

    def __init__(self) -> None:
        self._down_until: dict[Endpoint, float] = {}

    def mark_down(self, endpoint: Endpoint, now: float) -> None:
        self._down_until[endpoint] = now + DOWN_SECONDS

    def mark_up(self, endpoint: Endpoint) -> None:
        self._down_until.pop(endpoint, None)

    @property
    def all_up(self) -> bool:
        """No endpoint is marked down (marks that expired still count until checked)."""
        return not self._down_until

    def is_up(self, endpoint: Endpoint, now: float) -> bool:
        until = self._down_until.get(endpoint)
        if until is None:
            return True
        if until <= now:
            del self._down_until[endpoint]
            return True
        return False

    def down(self, now: float) -> list[Endpoint]:
        return [e for e, until in self._down_until.items() if until > now]

    def forget(self, keep: AbstractSet[Endpoint]) -> None:
        """Drop marks of endpoints no longer configured."""
        for endpoint in [e for e in self._down_until if e not in keep]:
            del self._down_until[endpoint]


class RoundRobin:
    """One cursor over a backend's endpoints."""

    __slots__ = ("_cursor", "endpoints")

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self._cursor = 0

    def pick(
        self, health: PassiveHealth, now: float, exclude: tuple[Endpoint, ...] = ()
    ) -> Endpoint | None:
        """The next endpoint that is up and not excluded.

        When every candidate is marked down, the next one is tried anyway: a
        refused connection costs less than failing every request for 10 s
        after one blip of a single-endpoint Service.  None: nothing left.
        """
        endpoints = self.endpoints
        count = len(endpoints)
        if not exclude and health.all_up and count:  # the usual case: the next one
            endpoint = endpoints[self._cursor]
            self._cursor = (self._cursor + 1) % count
            return endpoint
        fallback = None
        for _ in range(count):
            endpoint = endpoints[self._cursor]
            self._cursor = (self._cursor + 1) % count
            if endpoint in exclude:
                continue
            if health.is_up(endpoint, now):
                return endpoint
            if fallback is None:
                fallback = endpoint
        return fallback
