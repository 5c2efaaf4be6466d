"""The endpoint client is a package of its own: no click, no store, no import circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cli.endpoint

PACKAGE = Path(cli.endpoint.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("_*.py") if p.stem != "__init__")


def _imports_of(module: str) -> set[str]:
    """The sibling modules `module` imports, TYPE_CHECKING imports included."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found & set(MODULES)


def test_the_modules_form_layers_with_no_circle() -> None:
    graph = {m: _imports_of(m) for m in MODULES}
    assert graph["_errors"] <= {"_text", "_results"}, graph["_errors"]
    assert "_text" in graph and graph["_text"] == set()
    order: list[str] = []
    for _ in range(len(graph) + 1):  # a topological sort: a circle leaves modules unplaced
        ready = sorted(m for m in graph if m not in order and graph[m] <= set(order))
        if not ready:
            break
        order += ready
    assert set(order) == set(graph), {m: graph[m] - set(order) for m in graph if m not in order}


def test_no_module_names_click_or_the_store() -> None:
    # Checked in the source: httpx itself imports click when it is installed (for its own CLI).
    for module in MODULES:
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            assert not any(n.split(".")[0] in ("click", "eventlog", "cli") for n in names), (module, names)


def test_every_module_loads_without_the_rest_of_bai() -> None:
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module('cli.endpoint.' + m)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'eventlog'"
            " or (n.startswith('cli.') and not n.startswith('cli.endpoint'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out


def test_importing_the_package_loads_none_of_its_modules() -> None:
    code = "import sys, cli.endpoint; print(sorted(n for n in sys.modules if n.startswith('cli.endpoint.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out


def test_the_public_names_resolve() -> None:
    for name in cli.endpoint.__all__:
        assert getattr(cli.endpoint, name) is not None, name
    assert cli.endpoint.EndpointError.__module__ == "cli.endpoint._errors"
