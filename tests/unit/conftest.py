"""Fixtures of the unit tests: write Kubernetes YAML to tmp_path, load it, compile it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ingressd.config import load_config
from ingressd.errors import ConfigError
from ingressd.model import Config
from ingressd.routes import RouteTable, compile_routes

# `tests.kube` is imported from the repository root whatever runner started pytest
# (`python -m pytest` puts the root on sys.path, the `pytest` script does not).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.kube import CompileYaml, LoadYaml, Obj, ProblemsOf, WriteYaml, dump  # noqa: E402


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    """``write_yaml(text_or_object, ..., name="config.yaml")`` → the file's path.

    Each argument is one document (an object) or YAML text; they are joined by ``---``.
    """

    def write(*content: str | Obj, name: str = "config.yaml") -> str:
        text = "---\n".join(c if isinstance(c, str) else dump(c) for c in content)
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return str(target)

    return write


@pytest.fixture
def load_yaml(write_yaml: WriteYaml) -> LoadYaml:
    """``load_yaml(objects_or_text..., certs_dir=None)`` → the loaded `Config`."""

    def load(*content: str | Obj, certs_dir: str | None = None) -> Config:
        return load_config([write_yaml(*content)], certs_dir=certs_dir)

    return load


@pytest.fixture
def compile_yaml(load_yaml: LoadYaml) -> CompileYaml:
    """``compile_yaml(objects..., ingress_class=None)`` → the compiled `RouteTable`."""

    def compile_(*content: str | Obj, ingress_class: str | None = None) -> RouteTable:
        return compile_routes(load_yaml(*content), ingress_class=ingress_class)

    return compile_


@pytest.fixture
def problems_of(write_yaml: WriteYaml) -> ProblemsOf:
    """``problems_of(text)`` → (file path, every problem `load_config` raised)."""

    def problems(text: str) -> tuple[str, list[str]]:
        path = write_yaml(text)
        with pytest.raises(ConfigError) as caught:
            load_config([path])
        return path, caught.value.problems

    return problems
