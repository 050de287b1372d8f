"""The checked public surface (as httpx's test_exported_members): what each module exports, and who may import what.

- every module of ``imgbuild`` (packages included) has an ``__all__``, and every name in it resolves;
- no module imports another package's private module (``_x.py``) or private name (``_x``): a package's
  underscored parts are its own business;
- no import cycle is hidden by importing lazily (inside a function) what imports us at module level,
  except the CLI's registration of its command modules (each adds its commands to ``cli.app``).

The import rules are read from the source (``ast``), so a lazy import is checked without running it;
``if TYPE_CHECKING:`` imports are ignored (they never run).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import imgbuild

ROOT = Path(imgbuild.__file__).resolve().parent
REGISTRATION = "imgbuild.cli.app"  # names every command module in COMMANDS (loaded on demand); they import the app


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """The package a module belongs to (a package belongs to itself)."""
    return module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]


def _imports(path: Path) -> list[tuple[str, str | None, bool, int]]:
    """(module, name or None, lazy, line) of every ``imgbuild`` import that runs (TYPE_CHECKING blocks skipped)."""
    found: list[tuple[str, str | None, bool, int]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").startswith("imgbuild"):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.append((sub, None, inner, child.lineno) if sub in MODULES
                                 else (child.module, alias.name, inner, child.lineno))
            elif isinstance(child, ast.Import):
                found.extend((a.name, None, inner, child.lineno) for a in child.names if a.name.startswith("imgbuild"))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("name", [m for m in MODULES if m != "imgbuild.__main__"])
def test_every_module_has_an_all_that_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_no_module_imports_another_packages_private_parts() -> None:
    bad = []
    for name, imports in IMPORTS.items():
        for target, attr, _lazy, line in imports:
            if target not in MODULES or _package(target) == _package(name):
                continue
            if _private(target.rsplit(".", 1)[-1]):
                bad.append(f"{name}:{line} imports the private module {target}")
            elif attr is not None and _private(attr):
                bad.append(f"{name}:{line} imports the private name {target}.{attr}")
    assert not bad, "\n".join(bad)


def _reaches(start: str, goal: str) -> bool:
    """True if importing ``start`` imports ``goal`` at module level (directly or through others)."""
    seen, stack = set(), [start]
    while stack:
        mod = stack.pop()
        if mod == goal:
            return True
        if mod in seen:
            continue
        seen.add(mod)
        stack += [t for t, _attr, lazy, _line in IMPORTS.get(mod, ()) if not lazy]
    return False


def test_no_import_cycle_is_hidden_by_a_lazy_import() -> None:
    bad = []
    for name, imports in IMPORTS.items():
        for target, _attr, lazy, line in imports:
            if lazy and name != REGISTRATION and target != name and _reaches(target, name):
                bad.append(f"{name}:{line} imports {target} lazily, and {target} imports {name}")
    assert not bad, "\n".join(bad)
