"""The layers of the code base: base utilities (core) <- datasets <- networks <- entry points.

A lower layer never imports a higher one, reporting (metrics, submission files) needs no model,
and no module imports a runnable entry point (`tools/*`) or a benchmark: those are the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Package -> the packages of ours it may import (besides itself).
ALLOWED = {
    "core": set(),
    "datasets": {"core"},
    "networks": {"core", "datasets"},
    "reporting": {"core", "datasets"},
    "tuning": {"core", "datasets", "networks", "reporting"},
    "tools": {"core", "datasets", "networks", "reporting", "tuning"},
    "benchmarks": {"core", "datasets", "networks", "reporting", "tuning", "tools"},
}


def _imports(path: Path) -> set[str]:
    """Top-level modules of ours that `path` imports, anywhere in the file (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in ALLOWED}


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_every_package_imports_only_the_layers_below_it():
    breaches = []
    for package, allowed in ALLOWED.items():
        for path in _modules(package):
            for name in _imports(path):
                top = name.split(".")[0]
                if top != package and top not in allowed:
                    breaches.append(f"{path.relative_to(REPO)} imports {name}")
    assert breaches == []


def test_no_entry_point_is_imported_by_another_module():
    """`tools/` holds only runnable commands: their shared logic lives in the library packages."""
    breaches = [
        f"{path.relative_to(REPO)} imports {name}"
        for package in ALLOWED
        if package != "benchmarks"
        for path in _modules(package)
        for name in _imports(path)
        if name.startswith("tools") and not (package == "tools" and path.stem == "__init__")
    ]
    assert breaches == []
    for path in _modules("tools"):
        if path.stem != "__init__":
            assert "def main(" in path.read_text() and "def get_parser(" in path.read_text(), path


def test_the_checker_sees_a_breach(tmp_path):
    """The test above would fail: an import of a higher layer is found, also inside a function."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from networks.system import System\n    import tools.train\n")
    assert _imports(module) == {"networks.system", "tools.train"}
