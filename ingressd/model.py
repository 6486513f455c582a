"""The Kubernetes objects ingressd understands, as frozen dataclasses.

Owns: the shapes only.  Raw YAML never appears here; `config.py` builds these
and `routes.py` reads them.  Every object keeps its `Origin` so later stages
can name file and line in warnings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Origin:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class PathType(enum.Enum):
    EXACT = "Exact"
    PREFIX = "Prefix"
    IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass(frozen=True, slots=True)
class ServiceBackend:
    """An Ingress backend: a Service and a port given by number or by name."""

    service: str
    port_number: int | None = None
    port_name: str | None = None

    @property
    def port(self) -> str:
        return str(self.port_number) if self.port_number is not None else str(self.port_name)

    def __str__(self) -> str:
        return f"{self.service}:{self.port}"


@dataclass(frozen=True, slots=True)
class IngressPath:
    path: str
    path_type: PathType
    backend: ServiceBackend
    origin: Origin


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None
    paths: tuple[IngressPath, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class Ingress:
    ref: ObjectRef
    origin: Origin
    created: datetime | None = None
    class_name: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    default_backend: ServiceBackend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()

    def annotation(self, key: str) -> str | None:
        for name, value in self.annotations:
            if name == key:
                return value
        return None


@dataclass(frozen=True, slots=True)
class IngressClass:
    name: str
    origin: Origin
    is_default: bool = False
    controller: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str | None = None
    target_port: int | str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    ref: ObjectRef
    origin: Origin
    ports: tuple[ServicePort, ...] = ()
    external_name: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointAddress:
    ip: str
    ready: bool = True
    serving: bool = True


@dataclass(frozen=True, slots=True)
class EndpointPort:
    port: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """Addresses that share a port list: an Endpoints subset or an EndpointSlice."""

    service: ObjectRef
    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class TLSSecret:
    ref: ObjectRef
    origin: Origin
    certificate: bytes
    key: bytes


@dataclass(frozen=True, slots=True)
class Config:
    """Everything read from the files: the input of the route compiler."""

    ingresses: tuple[Ingress, ...] = ()
    ingress_classes: tuple[IngressClass, ...] = ()
    services: tuple[Service, ...] = ()
    endpoints: tuple[EndpointGroup, ...] = ()
    secrets: tuple[TLSSecret, ...] = ()
    files: tuple[str, ...] = ()
    digest: str = ""
    warnings: tuple[str, ...] = field(default=())
