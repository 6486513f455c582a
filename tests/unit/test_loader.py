"""Big configurations are parsed in a child process: same Config, same errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    with pytest.raises(ConfigError, match=r"config loader process failed \(exit status 1\)"):
        loader.load_in_child([path])


def test_a_child_killed_by_a_signal_is_named_by_the_signal(
    write_yaml: WriteYaml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's OOM killer sends SIGKILL: say so rather than "exit status -9"."""
    killed = tmp_path / "killed"
    killed.write_text("#!/bin/sh\nkill -KILL $$\n")
    killed.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(killed))
    with pytest.raises(ConfigError, match=r"killed by SIGKILL \(out of memory\?\)"):
        loader.load_in_child([write_yaml(*EVERY_KIND)])


def test_a_child_that_cannot_start_is_a_config_error_naming_the_interpreter(
    write_yaml: WriteYaml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-python"
    monkeypatch.setattr(sys, "executable", str(missing))
    with pytest.raises(ConfigError, match=f"cannot start the config loader process {missing}"):
        loader.load_in_child([write_yaml(*EVERY_KIND)])


def test_the_child_exits_when_the_server_goes_away(tmp_path: Path) -> None:
    """A server killed mid-reload must not leave a parser running: the child
    watches its stdin, which closes with the server.  The FIFO keeps the child
    busy (opening it blocks) until then."""
    fifo = tmp_path / "never-written.yaml"
    os.mkfifo(fifo)
    request = {"paths": [str(fifo)], "certs_dir": None, "log_level": 30}
    child = subprocess.Popen(
        [sys.executable, "-m", "ingressd.loader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdin is not None
        child.stdin.write(json.dumps(request).encode() + b"\n")
        child.stdin.flush()
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(0.3)  # still waiting for the FIFO
        child.stdin.close()
        assert child.wait(10) == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_the_child_is_in_its_own_session(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C and a SIGHUP to the server's process group are the server's alone."""
    sessions: list[bool] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        sessions.append(kwargs.get("start_new_session", False))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    loader.load_in_child([write_yaml(*EVERY_KIND)])
    assert sessions == [True]


def test_only_configs_over_the_threshold_go_to_a_child(
    write_yaml: WriteYaml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_yaml(*EVERY_KIND)
    children: list[object] = []
    real_run_child = loader.run_child

    def recording_run_child(paths: list[str], **kwargs: Any) -> bytes:
        children.append(paths)
        return real_run_child(paths, **kwargs)

    monkeypatch.setattr(loader, "run_child", recording_run_child)
    assert loader.read([small])() == load_config([small])
    assert children == []
    big = tmp_path / "big.yaml"
    big.write_text(Path(small).read_text() + "#" * loader.ISOLATE_BYTES)
    assert len(loader.read([str(big)])().ingresses) == 1
    assert children == [[str(big)]]
