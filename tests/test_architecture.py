"""The dependency rules of docs/architecture.md, checked on the source."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ["config", "scorecard", "drills", "bench", "tests"]


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def offenders(files: list[Path], forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(imported_modules(path))
        if module == forbidden or module.startswith(f"{forbidden}.")
    ]


def test_the_record_never_imports_what_touches_a_cluster():
    assert python_files("scorecard"), "the scorecard app was not found"
    assert offenders(python_files("scorecard"), "drills") == []


def test_only_the_kafka_seam_imports_confluent_kafka():
    """Test tools stand for independent clients (a reference consumer), so they may use it."""
    seam, tools = ROOT / "drills" / "kafka", ROOT / "tests" / "tools"
    outside = [p for p in python_files(*PROJECT) if seam not in p.parents and tools not in p.parents]
    assert offenders(outside, "confluent_kafka") == []
    assert offenders(python_files("drills/kafka"), "confluent_kafka"), "the seam itself was not found"


def test_tasks_are_imported_and_called_never_sent_by_a_name_in_a_string():
    sent_by_name = [
        str(path.relative_to(ROOT))
        for path in python_files(*PROJECT)
        if path != Path(__file__) and ("send_task(" in path.read_text() or '"drills.tasks.' in path.read_text())
    ]
    assert sent_by_name == []


@pytest.mark.parametrize("module", ["drills.sandbox.control", "drills.actuators"])
def test_the_sandbox_control_client_loads_neither_the_mock_nor_confluent_kafka(module):
    code = (
        "import sys, django; django.setup(); "
        "before = set(sys.modules); "
        f"import {module}; "
        "loaded = set(sys.modules) - before; "
        "print(sorted(m for m in loaded if m.startswith(('confluent_kafka', 'drills.sandbox.mock', 'drills.kafka'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "SCORECARD_MODE": "test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
