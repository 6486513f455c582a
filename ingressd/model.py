"""The Kubernetes objects ingressd understands, as frozen dataclasses.

Owns: the shapes only.  Raw YAML never appears here; `config.py` builds these
and `routes.py` reads them.  Every object keeps its `Origin` so later stages
can name file and line in warnings.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def pickled_by_fields(cls: T) -> T:
    """Pickle instances as ``cls(*field values)``.

    dataclasses pickles frozen slotted classes with a ``__getstate__`` and
    ``__setstate__`` that call ``fields()`` for every object: 4.5 s to dump a
    10,000-Ingress `Config` and 1.6 s to load it, against 1.2 s and 0.6 s this
    way.  Big configurations cross a pipe from the loader process (loader.py).
    """
    fields = dataclasses.fields(cls)
    assert all(f.init for f in fields), "cls(*values) needs every field in __init__"
    fetch = operator.attrgetter(*(f.name for f in fields))
    single = len(fields) == 1  # attrgetter of one name gives the value, not a tuple

    def reduce(self: object) -> tuple[type, tuple[Any, ...]]:
        if type(self) is not cls:  # a subclass may have fields this does not know
            raise TypeError(f"{type(self).__name__} does not pickle as {cls.__name__}")
        return (cls, (fetch(self),) if single else fetch(self))

    setattr(cls, "__reduce__", reduce)  # noqa: B010  (mypy refuses assigning a method)
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Origin:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@pickled_by_fields
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


@pickled_by_fields
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


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class IngressPath:
    path: str
    path_type: PathType
    backend: ServiceBackend
    origin: Origin


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None
    paths: tuple[IngressPath, ...]
    origin: Origin


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None
    origin: Origin


@pickled_by_fields
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


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class IngressClass:
    name: str
    origin: Origin
    is_default: bool = False
    controller: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str | None = None
    target_port: int | str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Service:
    ref: ObjectRef
    origin: Origin
    ports: tuple[ServicePort, ...] = ()
    external_name: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class EndpointAddress:
    ip: str
    ready: bool = True
    serving: bool = True


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class EndpointPort:
    port: int
    name: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """Addresses that share a port list: an Endpoints subset or an EndpointSlice."""

    service: ObjectRef
    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...]
    origin: Origin


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TLSSecret:
    ref: ObjectRef
    origin: Origin
    certificate: bytes
    key: bytes


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class DataSecret:
    """A Secret an annotation names (auth-secret): its keys and decoded values."""

    ref: ObjectRef
    origin: Origin
    data: tuple[tuple[str, bytes], ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Config:
    """Everything read from the files: the input of the route compiler."""

    ingresses: tuple[Ingress, ...] = ()
    ingress_classes: tuple[IngressClass, ...] = ()
    services: tuple[Service, ...] = ()
    endpoints: tuple[EndpointGroup, ...] = ()
    secrets: tuple[TLSSecret, ...] = ()
    data_secrets: tuple[DataSecret, ...] = ()  # only those an annotation names
    files: tuple[str, ...] = ()
    digest: str = ""
    warnings: tuple[str, ...] = field(default=())
