"""policies/ imports only the standard library and never reads the clock."""

import ast
import sys
from pathlib import Path

import pytest

import policies

SOURCES = sorted(Path(policies.__file__).parent.glob("*.py"))
CLOCK = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def foreign_imports(tree: ast.AST) -> list[str]:
    """Absolute imports that are neither `policies` nor the standard library."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
    return [n for n in names if n.split(".")[0] not in sys.stdlib_module_names | {"policies"}]


def clock_reads(tree: ast.AST) -> list[str]:
    """Calls such as datetime.now() or time.time()."""
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return [f.attr for f in calls if isinstance(f, ast.Attribute) and f.attr in CLOCK]


def test_there_are_sources_to_check():
    assert {"access.py", "loader.py", "model.py", "training.py"} <= {p.name for p in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_only_the_standard_library(path):
    assert foreign_imports(ast.parse(path.read_text(), str(path))) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_never_reads_the_clock(path):
    assert clock_reads(ast.parse(path.read_text(), str(path))) == []


def test_the_checks_catch_what_they_should():
    tree = ast.parse("import flask\nfrom psycopg import sql\nfrom . import x\nimport json\nt = datetime.now()")
    assert foreign_imports(tree) == ["flask", "psycopg"]
    assert clock_reads(tree) == ["now"]
