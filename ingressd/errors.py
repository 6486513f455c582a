"""The one error tree of ingressd.

Every error carries the HTTP status a client should see and who caused it
(`Source`), so exactly one place maps failures to responses.  Foreign
exceptions (OSError, ssl.SSLError, yaml.YAMLError, ...) are converted into these
at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class Source(enum.Enum):
    CLIENT = "client"
    UPSTREAM = "upstream"
    INTERNAL = "internal"


class IngressError(Exception):
    """Base of every ingressd error."""

    status: int = 500
    source: Source = Source.INTERNAL

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class ProtocolError(IngressError):
    """The client sent something that is not valid HTTP/1.1 (400, 413, 414, 431, 501...)."""

    status = 400
    source = Source.CLIENT


class ClientTimeout(IngressError):
    """The client was too slow sending its request head or body."""

    status = 408
    source = Source.CLIENT


class UpstreamProtocolError(IngressError):
    """The backend answered with something that is not valid HTTP/1.1."""

    status = 502
    source = Source.UPSTREAM


class UpstreamUnavailable(IngressError):
    """No connection to a backend could be made."""

    status = 502
    source = Source.UPSTREAM


class UpstreamTimeout(IngressError):
    """The backend did not answer (or accept the request body) in time."""

    status = 504
    source = Source.UPSTREAM


class NoEndpoint(IngressError):
    """The route's Service has no ready endpoint."""

    status = 503
    source = Source.INTERNAL


class ConfigError(IngressError):
    """One or more problems in the configuration files; see `problems`.

    `warnings` are those found on the way: a user fixing the errors reads them too.
    """

    def __init__(self, problems: list[str], warnings: Sequence[str] = ()) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.warnings = tuple(warnings)
