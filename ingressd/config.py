"""Kubernetes objects in YAML → a validated, frozen `Config`.

Owns: the Kubernetes schema of the kinds in SPEC §2, the API server's
validation rules for them, and error/warning messages of the form
``FILE:LINE: namespace/name: message``.  Every problem is collected before
`load_config` raises, so one run shows them all.  Raw YAML values never leave
this module.  No I/O besides reading the files (via `yamlfile`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import annotations as annotations_mod
from .errors import ConfigError
from .gcpause import gc_paused
from .model import (
    Config,
    DataSecret,
    EndpointAddress,
    EndpointGroup,
    EndpointPort,
    Ingress,
    IngressClass,
    IngressPath,
    IngressRule,
    IngressTLS,
    ObjectRef,
    Origin,
    PathType,
    Service,
    ServiceBackend,
    ServicePort,
    TLSSecret,
)
from .yamlfile import Document, LineList, LineMap, YamlError, expand_paths, read_documents

logger = logging.getLogger(__name__)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_PATH_TYPES = {t.value: t for t in PathType}
_DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
_LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def load_config(paths: Sequence[str], *, certs_dir: str | None = None) -> Config:
    """Read every file (directories expand to their ``*.yaml``) into one `Config`.

    Raises `ConfigError` with every problem found, each ``FILE:LINE: ...``.
    A ``secretName`` without a Secret object is read from
    ``<certs_dir>/<secretName>.crt`` and ``.key`` (default: ``certs/`` beside
    the first config path).
    """
    files = expand_paths(paths)
    with gc_paused():
        try:
            documents, digest = read_documents(files)
        except YamlError as exc:
            raise ConfigError(exc.problems) from exc
        builder = _Builder()
        for document in documents:
            builder.add(document)
        if certs_dir is None and paths:
            first = paths[0] if os.path.isdir(paths[0]) else os.path.dirname(paths[0])
            certs_dir = os.path.join(first or ".", "certs")
        builder.add_certs_dir_secrets(certs_dir)
        builder.add_annotation_secrets()
        if builder.errors:
            raise ConfigError(builder.errors, builder.warnings)
        return builder.build(tuple(files), digest)


@dataclass
class _Object:
    """One document being read: reports problems with its file, line and name."""

    document: Document
    display: str
    errors: list[str]
    warnings: list[str]

    def origin(self, line: int) -> Origin:
        return Origin(self.document.path, line)

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.document.path}:{line}: {self.display}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.document.path}:{line}: {self.display}: {message}")

    def mapping(self, parent: LineMap, key: str, where: str) -> LineMap:
        """``parent[key]`` as a mapping; absent → empty; wrong type → error, empty."""
        value = parent.get(key)
        if value is None:
            return LineMap(parent.line_of(key))
        if not isinstance(value, LineMap):
            self.error(parent.line_of(key), f"{where}: must be a mapping")
            return LineMap(parent.line_of(key))
        return value

    def sequence(self, parent: LineMap, key: str, where: str) -> LineList:
        value = parent.get(key)
        if value is None:
            return LineList(parent.line_of(key))
        if not isinstance(value, LineList):
            self.error(parent.line_of(key), f"{where}: must be a list")
            return LineList(parent.line_of(key))
        return value

    def mappings(self, parent: LineMap, key: str, where: str) -> list[tuple[int, LineMap]]:
        """The items of a list of mappings with their indexes; other items are errors."""
        items = self.sequence(parent, key, where)
        result = []
        for index, item in enumerate(items):
            if isinstance(item, LineMap):
                result.append((index, item))
            else:
                self.error(items.line_of(index), f"{where}[{index}]: must be a mapping")
        return result

    def string(
        self, parent: LineMap, key: str, where: str, *, required: bool = False
    ) -> str | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(parent.line, f"{where}: Required value")
            return None
        if not isinstance(value, str):
            self.error(parent.line_of(key), f"{where}: must be a string, got {value!r}")
            return None
        return value

    def port(self, parent: LineMap, key: str, where: str, *, required: bool = False) -> int | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(parent.line, f"{where}: Required value")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error(parent.line_of(key), f"{where}: Invalid value: {value!r}: must be 1-65535")
            return None
        return value


@dataclass
class _Builder:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    classes: list[IngressClass] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    endpoints: list[EndpointGroup] = field(default_factory=list)
    secrets: list[TLSSecret] = field(default_factory=list)
    # Every Secret as read, decoded only when an annotation names it: a cluster dump
    # holds thousands of Helm release Secrets nobody asks for.
    raw_secrets: dict[ObjectRef, tuple[_Object, LineMap]] = field(default_factory=dict)
    data_secrets: list[DataSecret] = field(default_factory=list)
    seen: dict[tuple[str, str, str], Origin] = field(default_factory=dict)

    def add(self, document: Document) -> None:
        value = document.value
        if not isinstance(value, LineMap):
            self.errors.append(f"{document.path}:{document.line}: not a Kubernetes object")
            return
        kind = value.get("kind")
        if not isinstance(kind, str):
            self.errors.append(f"{document.path}:{document.line}: object has no kind")
            return
        reader = _READERS.get(kind)
        if reader is None:
            logger.debug("%s:%d: skipping kind %s", document.path, document.line, kind)
            return
        api_versions, read = reader
        metadata = value.get("metadata")
        metadata = metadata if isinstance(metadata, LineMap) else LineMap(value.line)
        name = metadata.get("name")
        namespace = metadata.get("namespace") or "default"
        display = f"{kind} {namespace}/{name}" if isinstance(name, str) else f"{kind} <unnamed>"
        obj = _Object(document, display, self.errors, self.warnings)
        api_version = value.get("apiVersion")
        if api_version not in api_versions:
            obj.error(
                value.line_of("apiVersion"),
                f"apiVersion {api_version!r} is not supported for {kind}; use {api_versions[0]}",
            )
            return
        if not isinstance(name, str) or not name:
            obj.error(value.line_of("metadata"), "metadata.name: Required value")
            return
        if not isinstance(namespace, str):
            obj.error(metadata.line_of("namespace"), "metadata.namespace: must be a string")
            return
        if self._is_duplicate(obj, kind, ObjectRef(namespace, name), value.line):
            return
        read(self, obj, ObjectRef(namespace, name), value, metadata)

    def _is_duplicate(self, obj: _Object, kind: str, ref: ObjectRef, line: int) -> bool:
        key = (kind, ref.namespace, ref.name)
        first = self.seen.get(key)
        if first is not None:
            obj.error(line, f"defined twice (first at {first})")
            return True
        self.seen[key] = obj.origin(line)
        return False

    def add_certs_dir_secrets(self, certs_dir: str | None) -> None:
        """Secrets named by Ingress TLS sections but not defined: read them from certs_dir."""
        defined = {s.ref for s in self.secrets}
        for ingress in self.ingresses:
            for tls in ingress.tls:
                if tls.secret_name is None:
                    continue
                ref = ObjectRef(ingress.ref.namespace, tls.secret_name)
                if ref in defined:
                    continue
                defined.add(ref)
                secret = _read_secret_files(certs_dir, ref, tls.origin)
                if secret is not None:
                    self.secrets.append(secret)
                else:
                    self.warnings.append(
                        f"{tls.origin}: Ingress {ingress.ref}: TLS secret {ref} not found "
                        f"(no Secret object, no {certs_dir}/{tls.secret_name}.crt/.key); "
                        "its hosts get the default certificate"
                    )

    def add_annotation_secrets(self) -> None:
        """Decode the Secrets that annotations name (a missing one is the compiler's 503)."""
        wanted = {
            ref for i in self.ingresses for ref in annotations_mod.secret_refs(i.ref, i.annotations)
        }
        for ref in sorted(wanted):
            found = self.raw_secrets.get(ref)
            if found is None:
                continue
            obj, value = found
            data = _secret_data(obj, value)
            self.data_secrets.append(DataSecret(ref, obj.origin(value.line), tuple(data.items())))

    def build(self, files: tuple[str, ...], digest: str) -> Config:
        return Config(
            ingresses=tuple(self.ingresses),
            ingress_classes=tuple(self.classes),
            services=tuple(self.services),
            endpoints=tuple(self.endpoints),
            secrets=tuple(self.secrets),
            data_secrets=tuple(self.data_secrets),
            files=files,
            digest=digest,
            warnings=tuple(self.warnings),
        )


def _read_secret_files(certs_dir: str | None, ref: ObjectRef, origin: Origin) -> TLSSecret | None:
    if certs_dir is None:
        return None
    base = os.path.join(certs_dir, ref.name)
    try:
        with open(base + ".crt", "rb") as crt, open(base + ".key", "rb") as key:
            return TLSSecret(ref, Origin(base + ".crt", 1), crt.read(), key.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("%s: cannot read %s.crt/.key: %s", origin, base, exc)
        return None


# --- Ingress ---------------------------------------------------------------


def _read_ingress(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    spec = obj.mapping(value, "spec", "spec")
    annotations = _annotations(obj, metadata)
    for finding in annotations_mod.check(annotations):
        if not (finding.is_error or finding.is_warning):
            continue
        line = obj.mapping(metadata, "annotations", "").line_of(finding.key)
        report = obj.error if finding.is_error else obj.warn
        report(line, f"metadata.annotations[{finding.key}]: {finding.message}")
    class_name = obj.string(spec, "ingressClassName", "spec.ingressClassName")
    if class_name is None:
        class_name = dict(annotations).get(_LEGACY_CLASS_ANNOTATION)
    default_backend = None
    if "defaultBackend" in spec:
        where = "spec.defaultBackend"
        default_backend = _backend(obj, obj.mapping(spec, "defaultBackend", where), where)
    rules = tuple(
        _rule(obj, rule, f"spec.rules[{i}]")
        for i, rule in obj.mappings(spec, "rules", "spec.rules")
    )
    if default_backend is None and not rules and "defaultBackend" not in spec:
        message = "spec: either `defaultBackend` or `rules` must be specified"
        obj.error(value.line_of("spec"), message)
    tls = tuple(
        _tls(obj, item, f"spec.tls[{i}]") for i, item in obj.mappings(spec, "tls", "spec.tls")
    )
    builder.ingresses.append(
        Ingress(
            ref=ref,
            origin=obj.origin(value.line),
            created=_timestamp(obj, metadata),
            class_name=class_name,
            annotations=annotations,
            default_backend=default_backend,
            rules=rules,
            tls=tls,
        )
    )


def _annotations(obj: _Object, metadata: LineMap) -> tuple[tuple[str, str], ...]:
    raw = obj.mapping(metadata, "annotations", "metadata.annotations")
    pairs = []
    for key, val in raw.items():
        if not isinstance(val, str):
            obj.error(
                raw.line_of(key),
                f'metadata.annotations[{key}]: must be a string (quote it: "{_yaml_text(val)}")',
            )
            continue
        pairs.append((str(key), val))
    return tuple(pairs)


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timestamp(obj: _Object, metadata: LineMap) -> datetime | None:
    raw = obj.string(metadata, "creationTimestamp", "metadata.creationTimestamp")
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        obj.error(
            metadata.line_of("creationTimestamp"),
            f"metadata.creationTimestamp: Invalid value: {raw!r}: must be RFC 3339",
        )
        return None


def _rule(obj: _Object, rule: LineMap, where: str) -> IngressRule:
    host = obj.string(rule, "host", f"{where}.host")
    if host is not None:
        problem = host_problem(host)
        if problem:
            obj.error(rule.line_of("host"), f"{where}.host: Invalid value: {host!r}: {problem}")
    http = obj.mapping(rule, "http", f"{where}.http")
    paths = obj.mappings(http, "paths", f"{where}.http.paths")
    if "http" in rule and not paths:
        obj.error(http.line, f"{where}.http.paths: Required value")
    return IngressRule(
        host=host or None,
        paths=tuple(_path(obj, p, f"{where}.http.paths[{i}]") for i, p in paths),
        origin=obj.origin(rule.line),
    )


def _path(obj: _Object, item: LineMap, where: str) -> IngressPath:
    raw_type = item.get("pathType")
    path_type = _PATH_TYPES.get(raw_type) if isinstance(raw_type, str) else None
    if raw_type is None:
        obj.error(item.line, f"{where}.pathType: Required value: must be Exact, Prefix or "
                  "ImplementationSpecific")  # fmt: skip
    elif path_type is None:
        obj.error(
            item.line_of("pathType"),
            f"{where}.pathType: Unsupported value: {raw_type!r}: supported values: "
            '"Exact", "Prefix", "ImplementationSpecific"',
        )
    path = obj.string(item, "path", f"{where}.path") or ""
    problem = path_problem(path, path_type)
    if problem:
        obj.error(item.line_of("path"), f"{where}.path: Invalid value: {path!r}: {problem}")
    backend = _backend(obj, obj.mapping(item, "backend", f"{where}.backend"), f"{where}.backend")
    return IngressPath(
        path=path or "/",
        path_type=path_type or PathType.PREFIX,
        backend=backend or ServiceBackend(""),
        origin=obj.origin(item.line),
    )


def path_problem(path: str, path_type: PathType | None) -> str | None:
    """The API server's path rules (Kubernetes validateIngressHTTPPath)."""
    if path_type is PathType.IMPLEMENTATION_SPECIFIC:
        return "must be an absolute path" if path and not path.startswith("/") else None
    if not path.startswith("/"):
        return "must be an absolute path"
    for sequence in ("//", "/./", "/../", "%2f", "%2F"):
        if sequence in path:
            return f"must not contain '{sequence}'"
    for suffix in ("/..", "/."):
        if path.endswith(suffix):
            return f"cannot end with '{suffix}'"
    return None


def host_problem(host: str) -> str | None:
    """The API server's host rules: lower-case DNS-1123, not an IP, ``*`` as a whole first label."""
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        return "a wildcard '*' must be the whole first label, as in '*.example.com'"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "must be a DNS name, not an IP address"
    if len(host) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (
            "must be a lower-case RFC 1123 subdomain (letters a-z, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def _backend(obj: _Object, backend: LineMap, where: str) -> ServiceBackend | None:
    if "resource" in backend:
        obj.error(backend.line_of("resource"), f"{where}.resource: resource backends are not "
                  "supported by ingressd; use a service backend")  # fmt: skip
        return None
    service = obj.mapping(backend, "service", f"{where}.service")
    if "service" not in backend:
        obj.error(backend.line, f"{where}.service: Required value")
        return None
    name = obj.string(service, "name", f"{where}.service.name", required=True)
    port = obj.mapping(service, "port", f"{where}.service.port")
    number = obj.port(port, "number", f"{where}.service.port.number")
    port_name = obj.string(port, "name", f"{where}.service.port.name")
    given = [key for key in ("name", "number") if port.get(key) is not None]
    if len(given) != 1:
        # Invalid values were reported above; here only presence counts (API server rule).
        obj.error(port.line, f"{where}.service.port: exactly one of `name` or `number` is required")
    if name is None:
        return None
    return ServiceBackend(name, number, None if number is not None else port_name)


def _tls(obj: _Object, item: LineMap, where: str) -> IngressTLS:
    hosts_list = obj.sequence(item, "hosts", f"{where}.hosts")
    hosts = []
    for index, host in enumerate(hosts_list):
        problem = host_problem(host) if isinstance(host, str) else "must be a string"
        if problem:
            obj.error(
                hosts_list.line_of(index),
                f"{where}.hosts[{index}]: Invalid value: {host!r}: {problem}",
            )
        else:
            hosts.append(host)
    return IngressTLS(
        hosts=tuple(hosts),
        secret_name=obj.string(item, "secretName", f"{where}.secretName"),
        origin=obj.origin(item.line),
    )


# --- IngressClass, Service, Endpoints, EndpointSlice, Secret -----------------


def _read_ingress_class(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    annotations = dict(_annotations(obj, metadata))
    spec = obj.mapping(value, "spec", "spec")
    builder.classes.append(
        IngressClass(
            name=ref.name,
            origin=obj.origin(value.line),
            is_default=annotations.get(_DEFAULT_CLASS_ANNOTATION) == "true",
            controller=obj.string(spec, "controller", "spec.controller"),
        )
    )


def _read_service(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    spec = obj.mapping(value, "spec", "spec")
    ports = []
    for index, item in obj.mappings(spec, "ports", "spec.ports"):
        where = f"spec.ports[{index}]"
        port = obj.port(item, "port", f"{where}.port", required=True)
        target = item.get("targetPort")
        if (target is not None and not isinstance(target, (int, str))) or isinstance(target, bool):
            obj.error(item.line_of("targetPort"), f"{where}.targetPort: must be a number or a name")
            target = None
        if port is not None:
            name = obj.string(item, "name", f"{where}.name")
            ports.append(ServicePort(port, name or None, target))
    external_name = None
    if spec.get("type") == "ExternalName":
        external_name = obj.string(spec, "externalName", "spec.externalName", required=True)
    builder.services.append(Service(ref, obj.origin(value.line), tuple(ports), external_name))


def _endpoint_ports(obj: _Object, parent: LineMap, where: str) -> tuple[EndpointPort, ...]:
    ports = []
    for index, item in obj.mappings(parent, "ports", f"{where}.ports"):
        number = obj.port(item, "port", f"{where}.ports[{index}].port")
        if number is not None:
            name = obj.string(item, "name", f"{where}.ports[{index}].name")
            ports.append(EndpointPort(number, name or None))
    return tuple(ports)


def _read_endpoints(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    for index, subset in obj.mappings(value, "subsets", "subsets"):
        where = f"subsets[{index}]"
        addresses = [
            EndpointAddress(ip, ready=ready, serving=ready)
            for key, ready in (("addresses", True), ("notReadyAddresses", False))
            for ip in _ips(obj, subset, key, f"{where}.{key}")
        ]
        ports = _endpoint_ports(obj, subset, where)
        builder.endpoints.append(
            EndpointGroup(ref, tuple(addresses), ports, obj.origin(subset.line))
        )


def _ips(obj: _Object, parent: LineMap, key: str, where: str) -> list[str]:
    return [
        ip
        for index, item in obj.mappings(parent, key, where)
        if (ip := obj.string(item, "ip", f"{where}[{index}].ip", required=True))
    ]


def _read_endpoint_slice(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    labels = obj.mapping(metadata, "labels", "metadata.labels")
    service = labels.get(_SERVICE_NAME_LABEL)
    if not isinstance(service, str):
        obj.warn(metadata.line, f"no {_SERVICE_NAME_LABEL} label; slice ignored")
        return
    addresses = []
    for index, item in obj.mappings(value, "endpoints", "endpoints"):
        conditions = obj.mapping(item, "conditions", f"endpoints[{index}].conditions")
        # kube-proxy: nil `ready`/`serving` mean true, nil `terminating` false; when no
        # endpoint is ready it falls back to those both serving *and* terminating.
        ready = conditions.get("ready") is not False
        terminating = conditions.get("terminating") is True
        serving = ready or (conditions.get("serving") is not False and terminating)
        for ip in obj.sequence(item, "addresses", f"endpoints[{index}].addresses"):
            if isinstance(ip, str):
                addresses.append(EndpointAddress(ip, ready=ready, serving=serving))
    ports = _endpoint_ports(obj, value, "")
    group_ref = ObjectRef(ref.namespace, service)
    builder.endpoints.append(
        EndpointGroup(group_ref, tuple(addresses), ports, obj.origin(value.line))
    )


def _secret_data(obj: _Object, value: LineMap) -> dict[str, bytes]:
    """`data` (base64) and `stringData` of a Secret; a bad value is reported and left out."""
    decoded: dict[str, bytes] = {}
    data = obj.mapping(value, "data", "data")
    for key in data:
        raw = obj.string(data, key, f"data[{key}]")
        if raw is None:
            continue
        try:
            # Like Go's base64 decoder (the API server's), ignore line breaks.
            decoded[key] = base64.b64decode(raw.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            obj.error(data.line_of(key), f"data[{key}]: invalid base64")
    string_data = obj.mapping(value, "stringData", "stringData")
    for key in string_data:
        raw = obj.string(string_data, key, f"stringData[{key}]")
        if raw is not None:
            decoded[key] = raw.encode()
    return decoded


def _read_secret(
    builder: _Builder, obj: _Object, ref: ObjectRef, value: LineMap, metadata: LineMap
) -> None:
    builder.raw_secrets[ref] = (obj, value)
    if value.get("type") != "kubernetes.io/tls":
        return
    pem: dict[str, bytes] = {}
    given: set[str] = set()
    data = obj.mapping(value, "data", "data")
    for key in ("tls.crt", "tls.key"):
        raw = obj.string(data, key, f"data[{key}]")
        if raw is not None:
            given.add(key)
            try:
                # Like Go's base64 decoder (the API server's), ignore line breaks: a
                # value wrapped at 76 columns, as `base64` prints it, is valid.
                pem[key] = base64.b64decode(raw.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                obj.error(data.line_of(key), f"data[{key}]: invalid base64")
    string_data = obj.mapping(value, "stringData", "stringData")
    for key in ("tls.crt", "tls.key"):
        raw = obj.string(string_data, key, f"stringData[{key}]")
        if raw is not None:
            given.add(key)
            pem[key] = raw.encode()
    missing = [key for key in ("tls.crt", "tls.key") if key not in given]
    if missing:
        obj.error(value.line, f"data: a kubernetes.io/tls Secret needs {' and '.join(missing)}")
        return
    if len(pem) < 2:
        return  # a value was invalid, and reported
    builder.secrets.append(TLSSecret(ref, obj.origin(value.line), pem["tls.crt"], pem["tls.key"]))


_Reader = Callable[[_Builder, _Object, ObjectRef, LineMap, LineMap], None]
_READERS: dict[str, tuple[tuple[str, ...], _Reader]] = {
    "Ingress": (("networking.k8s.io/v1",), _read_ingress),
    "IngressClass": (("networking.k8s.io/v1",), _read_ingress_class),
    "Service": (("v1",), _read_service),
    "Endpoints": (("v1",), _read_endpoints),
    "EndpointSlice": (("discovery.k8s.io/v1",), _read_endpoint_slice),
    "Secret": (("v1",), _read_secret),
}
