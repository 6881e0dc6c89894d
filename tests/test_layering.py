"""The house rules of STYLE.md, checked on the source: SQL stays in store/, Textual in tui/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"sqlite3", "sqlite_utils", "textual", "textual_plotext"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_never_imports_sqlite_or_textual_even_lazily() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN)
        for p in sorted((ROOT / "auditor").rglob("*.py"))
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_scan_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import sqlite3\n    from textual.app import App\n")
    assert _imports(module) & FORBIDDEN == {"sqlite3", "textual"}
