"""The package's import graph has no cycles at run time (imports under
``if TYPE_CHECKING:`` excluded): each module can be read, tested and replaced on its
own, and ``--check`` does not pull in the server to read its settings."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ingressd

PACKAGE = Path(ingressd.__file__).parent


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Modules of the package this module imports, anywhere but under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    return {
        path.stem: _runtime_imports(ast.parse(path.read_text()))
        for path in PACKAGE.glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    cycles = []
    for start in graph:
        stack = [(start, (start,))]
        seen: set[str] = set()
        while stack:
            module, path = stack.pop()
            for target in graph.get(module, ()):
                if target == start:
                    cycles.append(" → ".join((*path, start)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert cycles == []


def test_check_does_not_import_the_server(tmp_path: Path) -> None:
    config = tmp_path / "ingress.yaml"
    config.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n"
        "spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n"
    )
    code = (
        "import sys, ingressd.cli;"
        f"code = ingressd.cli.main(['--check', '--config', {str(config)!r}]);"
        "print(sorted(m for m in sys.modules if m.startswith('ingressd.')), file=sys.stderr);"
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Ingresses served: 1" in result.stdout
    for heavy in ("server", "proxy", "downstream", "pool", "admin"):
        assert f"'ingressd.{heavy}'" not in result.stderr, result.stderr
