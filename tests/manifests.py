"""Write small Kubernetes manifests for integration tests."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import yaml


def service(name: str, ports: Sequence[int], *, namespace: str = "default",
            ready: Sequence[bool] | None = None) -> list[dict[str, object]]:  # fmt: skip
    """A Service on port 80 and its Endpoints at 127.0.0.1:<each port>."""
    ready = ready or [True] * len(ports)
    subsets = [
        {
            "addresses" if is_ready else "notReadyAddresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "http", "port": port}],
        }
        for port, is_ready in zip(ports, ready, strict=True)
    ]
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {"name": name, "namespace": namespace}, "subsets": subsets},
    ]  # fmt: skip


def ingress(name: str, host: str | None, paths: dict[str, str], *, namespace: str = "default",
            annotations: dict[str, str] | None = None, tls_secret: str | None = None,
            path_type: str = "Prefix") -> dict[str, object]:  # fmt: skip
    """An Ingress routing each path (Prefix) to a service's port 80."""
    rule: dict[str, object] = {
        "http": {
            "paths": [
                {"path": path, "pathType": path_type,
                 "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                for path, svc in paths.items()
            ]
        }
    }  # fmt: skip
    if host:
        rule["host"] = host
    spec: dict[str, object] = {"rules": [rule]}
    if tls_secret and host:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": spec,
    }  # fmt: skip


def tls_secret(name: str, cert_pem: bytes, key_pem: bytes, *,
               namespace: str = "default") -> dict[str, object]:  # fmt: skip
    """A kubernetes.io/tls Secret holding a PEM chain and key (base64 `data`, as kubectl prints)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": base64.b64encode(cert_pem).decode(),
                 "tls.key": base64.b64encode(key_pem).decode()},
    }  # fmt: skip


def write(path: Path, objects: Sequence[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path
