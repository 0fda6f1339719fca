"""The shape of the code itself: module and function sizes, and where click may be imported.

Read with `ast` from the source tree, so nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmtools"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60

def modules() -> list[tuple[str, str, ast.Module]]:
    """(path relative to llmtools/, source, tree) of every module in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        found.append((path.relative_to(PACKAGE).as_posix(), source, ast.parse(source, str(path))))
    return found


def functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, lines) of every function and method, nested ones included."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            found.append((name, node.end_lineno - node.lineno + 1))
            found.extend(functions(node, name + "."))
        elif isinstance(node, ast.ClassDef):
            found.extend(functions(node, prefix + node.name + "."))
        else:
            found.extend(functions(node, prefix))
    return found


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)  # and what it may name: `from llmtools.daemon import client`
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_walk_sees_the_whole_package():
    paths = {path for path, _, _ in modules()}
    assert {"__init__.py", "cli/exec.py", "runtime/manager.py", "codeact/loop.py"} <= paths
    assert ("inner.f", 2) in functions(ast.parse("class Outer:\n    pass\ndef inner():\n    def f():\n        pass\n"))


def test_no_module_is_over_the_line_limit():
    too_long = {path: len(source.splitlines()) for path, source, _ in modules()
                if len(source.splitlines()) > MAX_MODULE_LINES}
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: split them along their seams"


def test_no_function_is_over_the_line_limit():
    too_long = {f"{path}::{name}": lines for path, _, tree in modules()
                for name, lines in functions(tree) if lines > MAX_FUNCTION_LINES}
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def test_only_the_cli_imports_click():
    importers = sorted(path for path, _, tree in modules() if not path.startswith("cli/")
                       and any(name == "click" or name.startswith("click.") for name in imported_modules(tree)))
    assert importers == []


def test_only_the_services_module_uses_the_daemon_client():
    """One place decides daemon or in-process (llmtools/services.py); the daemon package
    itself may use its own client."""
    importers = sorted(path for path, _, tree in modules()
                       if path != "services.py" and not path.startswith("daemon/")
                       and {"llmtools.daemon.client", "llmtools.daemon.remote"} & imported_modules(tree))
    assert importers == []
