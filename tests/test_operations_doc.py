"""docs/operations.md: every statement in a list names a test that exists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def list_items(text: str) -> list[str]:
    """Each "- " item of the document with its indented continuation lines."""
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line)
            open_item = True
        elif open_item and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
        else:
            open_item = False
    return items


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_statement_of_the_operations_guide_names_a_test_that_exists():
    text = (ROOT / "docs" / "operations.md").read_text()
    items = list_items(text)
    assert len(items) >= 20
    unproven = [item for item in items if not REFERENCE.search(item)]
    assert not unproven, "statements without a test:\n" + "\n".join(unproven)
    missing = []
    for path, name in REFERENCE.findall(text):
        file = ROOT / path
        if not file.exists() or name not in functions_in(file):
            missing.append(f"{path}::{name}")
    assert not missing, f"named tests that do not exist: {missing}"


def test_the_checker_finds_a_statement_without_a_test():
    items = list_items("# T\n\n- proven (tests/x.py::test_a)\n- not proven,\n  on two lines\n\nprose\n")
    assert items == ["- proven (tests/x.py::test_a)", "- not proven, on two lines"]
    assert [bool(REFERENCE.search(item)) for item in items] == [True, False]
