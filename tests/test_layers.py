"""The package layers hold (docs/architecture.md): the import-linter contract in pyproject.toml,
and no first-party import hidden behind `except ImportError`."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys

import pytest

from conftest import REPO, require

LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")


def test_import_linter_contract_holds():
    require(importlib.util.find_spec("importlinter") is not None,
            "import-linter (`pip install -e .[dev]`, as scripts/setup.sh does)")
    done = subprocess.run([sys.executable, "-c", LINT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def _imports_first_party(body) -> bool:
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("livegen")):
            return True
        if isinstance(node, ast.Import) and any(a.name.startswith("livegen") for a in node.names):
            return True
    return False


# Sites still to go, each with its reason (this set only shrinks).
KNOWN = {
}


@pytest.mark.slow
def test_no_first_party_import_behind_except_import_error():
    """A broken module of ours must fail loudly, never remove a feature in silence."""
    found = []
    for path in sorted((REPO / "livegen").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers if h.type):
                if _imports_first_party(node.body) and str(path.relative_to(REPO)) not in KNOWN:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, "first-party imports inside try/except ImportError: " + ", ".join(found)


# Function-local imports of our own modules still to move to module level, per file (only the CLI
# may defer imports, for start-up time). This table only shrinks: lower a count as you move them.
LOCAL_IMPORTS_LEFT = {
    "livegen/continuation/runtime.py": 1,  # the baseline borrows ContinuationStream's methods
}


def _function_local_first_party(path) -> int:
    tree = ast.parse(path.read_text(), str(path))
    inside = set()
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(node) for node in ast.walk(func) if isinstance(node, (ast.Import, ast.ImportFrom)))
    return sum(1 for node in ast.walk(tree)
               if id(node) in inside and _imports_first_party([node]))


@pytest.mark.slow
def test_first_party_imports_sit_at_module_level_outside_the_cli():
    over = []
    for path in sorted((REPO / "livegen").rglob("*.py")):
        name = str(path.relative_to(REPO))
        if name.startswith("livegen/cli/"):
            continue
        count, allowed = _function_local_first_party(path), LOCAL_IMPORTS_LEFT.get(name, 0)
        if count > allowed:
            over.append(f"{name}: {count} (at most {allowed})")
    assert not over, ("imports of livegen modules inside functions (move them to the top of the module; only "
                      "livegen/cli may defer imports, for start-up time): " + ", ".join(over))
