"""The README's table of the tests that skip without a service names tests that exist, and the
variables it tells to set are the ones those tests read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("Some tests need a service")
    table = text[start : text.index("\n\n", text.index("| tests |", start))]
    return [line for line in table.splitlines()[2:] if line.startswith("| `tests/")]


def test_the_readme_names_each_skipping_test_and_its_variable() -> None:
    rows = _rows()
    assert len(rows) >= 3
    for row in rows:
        first = row.split(" | ")[0]
        for ref in re.findall(r"`(tests/[^`]+)`", first):
            path, _, name = ref.partition("::")
            source = (ROOT / path.rstrip("/")).read_text() if path.endswith(".py") else None
            assert (ROOT / path.rstrip("/")).exists(), ref
            if name:
                assert source is not None, ref
                assert f"def {name}(" in source, ref
        for variable in re.findall(r"export (KOPECHKA_\w+)=", row):
            readers = [p for p in (ROOT / "tests").rglob("*.py") if variable in p.read_text()]
            assert readers, f"no test reads {variable}"
