"""One `Runtime`: everything a request needs from the configuration, built to the side.

Owns: loading + compiling a configuration into an immutable snapshot (route
table, one round-robin cursor per backend).  A reload builds a new `Runtime`
completely and the server swaps one reference; a request reads that
reference once and finishes on the snapshot it started with.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass, field

from .balancer import RoundRobin
from .errors import ConfigError
from .gcpause import gc_paused
from .loader import read
from .model import Config
from .routes import Backend, Endpoint, RouteTable, compile_routes
from .settings import Settings
from .tls import Certificate, CertificateStore, build_store


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    table: RouteTable
    balancers: dict[int, RoundRobin]  # by id() of a Backend of `table`
    certs: CertificateStore
    endpoints: frozenset[Endpoint]  # of every backend: the pools a reload keeps
    tls_warnings: tuple[str, ...] = ()
    loaded_at: float = field(default_factory=time.time)

    def balancer(self, backend: Backend) -> RoundRobin:
        return self.balancers[id(backend)]

    @property
    def warnings(self) -> tuple[str, ...]:
        return (*self.config.warnings, *self.table.warnings, *self.tls_warnings)


def build_runtime(settings: Settings, default_certificate: Certificate | None) -> Runtime:
    """Load, validate and compile routes and certificates; `ConfigError` lists every problem.

    Big configurations are parsed in a child process (`loader`).  The result is
    frozen (`gc.freeze`) before the cyclic collector comes back: it lives until
    the next reload, so no collection ever needs to scan it, and the first
    collection after a build would otherwise scan every object the build made,
    stalling the serving thread (about 0.5 s at 10,000 Ingresses).

    A freeze also keeps whatever garbage cycles exist at that moment, the
    serving thread's too, so the pause is as short as it can be: not while the
    child parses (seconds), and it starts on a freshly collected heap.
    """
    make_config = read(settings.config_paths, certs_dir=settings.certs_dir)
    gc.collect()
    with gc_paused():
        runtime = _assemble(make_config(), settings, default_certificate)
        gc.freeze()
    return runtime


def _assemble(
    config: Config, settings: Settings, default_certificate: Certificate | None
) -> Runtime:
    try:
        table = compile_routes(config, ingress_class=settings.ingress_class)
    except ConfigError as exc:
        raise ConfigError(exc.problems, (*config.warnings, *exc.warnings)) from None
    certs = build_store(table.tls_hosts, config.secrets, default_certificate)
    if certs.errors:
        raise ConfigError(certs.errors, (*config.warnings, *table.warnings, *certs.warnings))
    backends = list(table.backends())
    balancers = {id(b): RoundRobin(b.endpoints) for b in backends}
    endpoints = frozenset(e for b in backends for e in b.endpoints)
    return Runtime(config, table, balancers, certs.store, endpoints, tuple(certs.warnings))


def release_in_slices(box: list[Runtime], *, patience: float, slice_size: int = 500) -> None:
    """Free a replaced runtime a slice at a time; run it in a worker thread.

    Freeing 10,000 Ingresses' objects in one go takes ~110 ms with the GIL held,
    a stall of every connection when the loop drops the last reference.  Here
    the members of the big collections are held in a list, the runtime itself is
    dropped (its containers go, cheaply), and the members are let go a slice at
    a time, the GIL handed back in between.  Requests still running on the old
    runtime hold it too: this waits for them, up to `patience` seconds, and
    after that leaves the rest to whoever drops it last.  `box` holds the only
    reference the caller passes, so that the count below can tell.
    """
    runtime = box.pop()
    deadline = time.monotonic() + patience
    while sys.getrefcount(runtime) > 2 and time.monotonic() < deadline:  # ours + the call's
        time.sleep(0.05)
    config, table = runtime.config, runtime.table
    members: list[object] = [
        *config.ingresses, *config.services, *config.endpoints, *config.secrets,
        *table.hosts.values(), *table.wildcards.values(), *runtime.balancers.values(),
    ]  # fmt: skip
    del runtime, config, table
    while members:
        del members[-slice_size:]
        time.sleep(0)  # lets the loop thread take the GIL
