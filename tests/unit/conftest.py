"""Unit tests do no I/O (STYLE habit 9).

Guard: a test module under ``tests/unit`` that imports ``socket``, ``kafka`` or
``psycopg2`` itself (at module level, or inside ``if``/``try`` blocks there)
fails every one of its tests with a message naming the import. It checks the
test module's own source with ``ast``, not ``sys.modules``: pytest and the
standard library load ``socket`` anyway, and ``common.bus`` (tested for its
pure ``Outbox``/``SeenIds``) loads kafka-python without using the network.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

FORBIDDEN_MODULES = frozenset({"socket", "kafka", "psycopg2"})
UNIT_DIR = Path(__file__).resolve().parent


def _module_level_statements(body: list[ast.stmt]):
    """Statements run at import time: the body plus nested if/try/with blocks (not defs)."""
    for node in body:
        yield node
        for child_body in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)) and hasattr(node, child_body):
                yield from _module_level_statements(getattr(node, child_body))
        for handler in getattr(node, "handlers", []) or []:
            yield from _module_level_statements(handler.body)


def forbidden_imports(source: str) -> list[str]:
    """Top-level modules from FORBIDDEN_MODULES that ``source`` imports at module level."""
    found = []
    for node in _module_level_statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    return found


@functools.lru_cache(maxsize=None)
def _forbidden_in_file(path: Path) -> tuple[str, ...]:
    return tuple(forbidden_imports(path.read_text(encoding="utf-8")))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail any test whose module (under tests/unit) imports socket/kafka/psycopg2."""
    path = Path(str(item.path)).resolve()
    if UNIT_DIR not in path.parents or not path.name.startswith("test_"):
        return
    bad = _forbidden_in_file(path)
    if bad:
        pytest.fail(f"{path.name} imports {', '.join(bad)}: unit tests do no I/O; "
                    "use a fake, or move the test to tests/integration", pytrace=False)
