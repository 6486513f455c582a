"""``ingressd --check --explain URL``: the rule, steps, canary side and upstream request
one request would get, from the same compiled table the server uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingressd.cli import main
from tests import manifests

PREFIX = "nginx.ingress.kubernetes.io/"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    rewrite = manifests.ingress(
        "rewrite", "rewrite.bar.com", {"/something(/|$)(.*)": "http-svc"},
        annotations={PREFIX + "use-regex": "true", PREFIX + "rewrite-target": "/$2"},
        path_type="ImplementationSpecific",
    )  # fmt: skip
    canary = manifests.ingress(
        "rewrite-canary", "rewrite.bar.com", {"/something(/|$)(.*)": "canary-svc"},
        annotations={PREFIX + "canary": "true", PREFIX + "canary-by-cookie": "beta",
                     PREFIX + "canary-weight": "25"},
        path_type="ImplementationSpecific",
    )  # fmt: skip
    moved = manifests.ingress(
        "moved", "old.test", {"/": "http-svc"},
        annotations={PREFIX + "permanent-redirect": "https://new.test/"},
    )  # fmt: skip
    objects = [
        *manifests.service("http-svc", [8080]),
        *manifests.service("canary-svc", [9090]),
        rewrite,
        canary,
        moved,
    ]
    return manifests.write(tmp_path / "ingress.yaml", objects)


def explain(config: Path, url: str, capsys: pytest.CaptureFixture[str], *headers: str) -> list[str]:
    args = ["--check", "--config", str(config), "--explain", url]
    for header in headers:
        args += ["--header", header]
    assert main(args) == 0
    return capsys.readouterr().out.splitlines()


def test_rule_rewrite_and_upstream_request(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = explain(config, "http://rewrite.bar.com/SOMETHING/new?page=2", capsys)
    assert lines[1].startswith("Host rule: rewrite.bar.com (a regex host")
    assert lines[2].startswith("Path rule: /something(/|$)(.*) ImplementationSpecific")
    assert "[Ingress default/rewrite, " in lines[2] and f"{config}:" in lines[2]
    assert "  this request: by weight, the canary with 25 % odds" in lines
    assert "Backend (main): default/http-svc:80 → 127.0.0.1:8080" in lines
    assert "  GET /new?page=2 HTTP/1.1" in lines
    assert "  Host: rewrite.bar.com" in lines


@pytest.mark.parametrize(("cookie", "side", "port"), [("always", "canary", 9090),
                                                      ("never", "main", 8080)])  # fmt: skip
def test_the_canary_side_a_cookie_takes(
    config: Path, capsys: pytest.CaptureFixture[str], cookie: str, side: str, port: int
) -> None:
    lines = explain(
        config, "http://rewrite.bar.com/something/x", capsys, f"Cookie: a=1; beta={cookie}"
    )
    assert f"  this request: the {side} side, by its header or cookie" in lines
    assert any(line.startswith(f"Backend ({side}):") and f":{port}" in line for line in lines)


def test_a_local_answer_is_named_and_the_backend_not_asked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = explain(config, "http://old.test/any/page", capsys)
    assert "Step: 301 → https://new.test/" in lines
    assert (
        lines[-1]
        == "Answer: 301 from ingressd, Location: https://new.test/; the backend is not asked"
    )


def test_no_rule_is_404(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = explain(config, "http://elsewhere.test/", capsys)
    assert lines[-1].startswith("No host or path rule matches") and lines[-1].endswith("404")


def test_a_bad_url_or_header_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--config", str(config), "--explain", "ftp://x/"]) == 2
    args = ["--check", "--config", str(config), "--explain", "http://x/", "--header", "bad"]
    assert main(args) == 2
    assert "expected a header line" in capsys.readouterr().err
