"""Request rates and requests in progress per Ingress and client address (limit-rps,
limit-rpm, limit-connections), with state that outlives a reload.

Owns: nginx's ``limit_req`` accounting (the leaky bucket of ngx_http_limit_req_module
with ``burst`` and ``nodelay``, as ingress-nginx configures it), ``limit_conn``'s count
of requests in progress, and the `LimitStore` that keeps one zone per Ingress and kind
across reloads.  Pure: the caller passes the time.

Memory is bounded whatever the number of client addresses: a rate zone keeps at most
`RATE_STATES` addresses (about 120 bytes each), forgetting the least recently seen
first, as nginx does when its zone is full; a connection zone only holds addresses with
a request in progress.  So the store holds at most ``zones x RATE_STATES`` entries.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

RATE_STATES = 16_384  # per Ingress and rate: ~2 MB at worst


class RateZone:
    """``limit_req rate=R burst=B nodelay``: a request is refused when the client's
    excess (requests above the rate, draining at R per second) would pass B."""

    __slots__ = ("burst", "rate", "states")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate  # requests per second
        self.burst = burst
        self.states: OrderedDict[str, tuple[float, float]] = OrderedDict()  # excess, last

    def allow(self, key: str, now: float) -> bool:
        states = self.states
        state = states.get(key)
        if state is None:
            excess = 0.0
        else:
            excess = max(0.0, state[0] - self.rate * (now - state[1]) + 1.0)
            states.move_to_end(key)
            if excess > self.burst:
                return False  # as nginx: a refused request does not count
        states[key] = (excess, now)
        if len(states) > RATE_STATES:
            states.popitem(last=False)
        return True


class ConnectionZone:
    """``limit_conn N``: at most N requests of one client in progress at once."""

    __slots__ = ("counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        count = self.counts.get(key, 0)
        if count >= self.limit:
            return False
        self.counts[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self.counts.get(key, 0) - 1
        if count > 0:
            self.counts[key] = count
        else:
            self.counts.pop(key, None)


ZoneKey = tuple[str, str]  # (namespace/name of the Ingress, "rps" | "rpm" | "connections")


class LimitStore:
    """The zones of every limited Ingress; the server keeps one across reloads."""

    def __init__(self) -> None:
        self.rates: dict[ZoneKey, RateZone] = {}
        self.connections: dict[ZoneKey, ConnectionZone] = {}

    def rate_zone(self, key: ZoneKey, rate: float, burst: int) -> RateZone:
        zone = self.rates.get(key)
        if zone is None:
            zone = self.rates[key] = RateZone(rate, burst)
        elif zone.rate != rate or zone.burst != burst:  # changed by a reload: keep the state
            zone.rate, zone.burst = rate, burst
        return zone

    def connection_zone(self, key: ZoneKey, limit: int) -> ConnectionZone:
        zone = self.connections.get(key)
        if zone is None:
            zone = self.connections[key] = ConnectionZone(limit)
        zone.limit = limit
        return zone

    def retain(self, keys: Collection[ZoneKey]) -> None:
        """After a reload: forget the zones of Ingresses (or limits) that are gone."""
        for key in [k for k in self.rates if k not in keys]:
            del self.rates[key]
        for key in [k for k in self.connections if k not in keys]:
            del self.connections[key]
