"""Kubernetes objects for tests, in their real schema, as plain dicts.

Tests build their configuration the way users do: YAML that `load_config` reads.
These builders return the dicts `kubectl get -o yaml` would print (only the
fields ingressd reads), `dump` turns them into a multi-document file, and
`line_of` finds the line a test expects an error message to name.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import yaml

from ingressd.model import Config
from ingressd.routes import RouteTable

Obj = dict[str, Any]
Port = int | str  # a Service port by number, or by name

# The fixtures of tests/unit/conftest.py, for annotations.
WriteYaml = Callable[..., str]
LoadYaml = Callable[..., Config]
CompileYaml = Callable[..., RouteTable]
ProblemsOf = Callable[[str], tuple[str, list[str]]]


def meta(
    name: str,
    namespace: str | None = None,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    created: str | None = None,
) -> Obj:
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if created is not None:
        metadata["creationTimestamp"] = created
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def backend(service: str, port: Port = 80) -> Obj:
    number_or_name = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": service, "port": number_or_name}}


def path(path: str, service: str, port: Port = 80, path_type: str = "Prefix") -> Obj:
    return {"path": path, "pathType": path_type, "backend": backend(service, port)}


def rule(host: str | None, *paths: Obj) -> Obj:
    item: Obj = {} if host is None else {"host": host}
    if paths:
        item["http"] = {"paths": list(paths)}
    return item


def ingress(
    name: str,
    *rules: Obj,
    namespace: str | None = None,
    default: tuple[str, Port] | None = None,
    class_name: str | None = None,
    annotations: dict[str, str] | None = None,
    tls: list[Obj] | None = None,
    created: str | None = None,
) -> Obj:
    spec: Obj = {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default is not None:
        spec["defaultBackend"] = backend(*default)
    if tls:
        spec["tls"] = tls
    if rules:
        spec["rules"] = list(rules)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(name, namespace, annotations=annotations, created=created),
        "spec": spec,
    }


def ingress_class(name: str, *, default: bool = False) -> Obj:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta(name, annotations=annotations),
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }


def service_port(port: int, name: str | None = None, target: int | str | None = None) -> Obj:
    item: Obj = {"port": port, "protocol": "TCP"}
    if name is not None:
        item["name"] = name
    if target is not None:
        item["targetPort"] = target
    return item


def service(
    name: str, *ports: Obj, namespace: str | None = None, external_name: str | None = None
) -> Obj:
    spec: Obj = {"ports": list(ports)}
    if external_name is not None:
        spec.update(type="ExternalName", externalName=external_name)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace), "spec": spec}


def endpoint_port(port: int, name: str | None = None) -> Obj:
    return {"port": port, "protocol": "TCP"} | ({"name": name} if name is not None else {})


def endpoints(
    name: str,
    ips: list[str],
    *ports: Obj,
    not_ready: list[str] | None = None,
    namespace: str | None = None,
) -> Obj:
    subset: Obj = {"addresses": [{"ip": ip} for ip in ips]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    subset["ports"] = list(ports)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta(name, namespace),
        "subsets": [subset],
    }


def slice_endpoint(ip: str, **conditions: bool) -> Obj:
    """One EndpointSlice endpoint; no `conditions` key at all when none is given."""
    item: Obj = {"addresses": [ip]}
    if conditions:
        item["conditions"] = conditions
    return item


def endpoint_slice(
    name: str, service: str, items: list[Obj], *ports: Obj, namespace: str | None = None
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta(name, namespace, labels={"kubernetes.io/service-name": service}),
        "addressType": "IPv4",
        "ports": list(ports),
        "endpoints": items,
    }


def tls_secret(
    name: str,
    cert: str,
    key: str,
    *,
    namespace: str | None = None,
    string_data: bool = False,
) -> Obj:
    """A kubernetes.io/tls Secret, with base64 `data` or (string_data) plain `stringData`."""
    if string_data:
        values = {"stringData": {"tls.crt": cert, "tls.key": key}}
    else:
        values = {"data": {"tls.crt": b64(cert), "tls.key": b64(key)}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(name, namespace),
        "type": "kubernetes.io/tls",
    } | values


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def dump(*objects: Obj) -> str:
    """`---`-separated YAML documents, keys in the order given (as kubectl prints them)."""
    return yaml.safe_dump_all(objects, sort_keys=False)


def line_of(text: str, needle: str, *, occurrence: int = 1) -> int:
    """1-based number of the line holding the `occurrence`-th `needle` in `text`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in the YAML")
