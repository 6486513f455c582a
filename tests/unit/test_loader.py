"""Big configurations are parsed in a child process: same Config, same errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ingressd import loader
from ingressd.config import load_config
from ingressd.errors import ConfigError
from ingressd.routes import compile_routes
from tests import kube
from tests.kube import WriteYaml

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
EVERY_KIND = (
    kube.ingress_class("nginx", default=True),
    kube.ingress(
        "web",
        kube.rule("shop.example.com", kube.path("/", "web"), kube.path("/api", "api", "http")),
        kube.rule("*.tenant.example.com", kube.path("/v1", "web", path_type="Exact")),
        annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "5"},
        tls=[{"hosts": ["shop.example.com"], "secretName": "web-tls"}],
    ),
    kube.service("web", kube.service_port(80, "http", "web")),
    kube.service("api", kube.service_port(80, "http", 8080)),
    kube.service("pay", kube.service_port(443), external_name="pay.example.net"),
    kube.endpoints("web", ["10.0.0.1"], kube.endpoint_port(8080, "web"), not_ready=["10.0.0.2"]),
    kube.endpoint_slice("api-abc", "api", [kube.slice_endpoint("10.0.0.3", ready=False)]),
    kube.tls_secret("web-tls", CERT, KEY),
    kube.tls_secret("other-tls", CERT, KEY, string_data=True),
)


def test_a_config_read_by_the_child_equals_the_one_read_in_process(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(*EVERY_KIND)
    in_child = loader.load_in_child([path])
    assert in_child == load_config([path])
    table = compile_routes(in_child)
    route = table.match("shop.example.com", "/api/orders")
    assert route is not None and route.backend.service.name == "api"


def test_the_childs_errors_are_the_in_process_errors_with_file_and_line(
    write_yaml: WriteYaml,
) -> None:
    broken = kube.ingress("bad", kube.rule("x.example", kube.path("/", "web", path_type="Maybe")))
    path = write_yaml(*EVERY_KIND, broken, "kind: [unclosed", name="broken.yaml")
    with pytest.raises(ConfigError) as in_process:
        load_config([path])
    with pytest.raises(ConfigError) as in_child:
        loader.load_in_child([path])
    assert in_child.value.problems == in_process.value.problems
    assert all(p.startswith(f"{path}:") for p in in_child.value.problems)


def test_a_child_that_dies_is_a_config_error(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(*EVERY_KIND)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(ConfigError, match="config loader process failed"):
        loader.load_in_child([path])


def test_only_configs_over_the_threshold_go_to_a_child(
    write_yaml: WriteYaml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_yaml(*EVERY_KIND)
    children: list[object] = []
    monkeypatch.setattr(loader, "load_in_child", lambda *a, **k: children.append(a))
    loader.load([small])
    assert children == []
    big = tmp_path / "big.yaml"
    big.write_text(Path(small).read_text() + "#" * loader.ISOLATE_BYTES)
    loader.load([str(big)])
    assert children == [([str(big)],)]
