"""Check the built documentation site (run by .ci/run after ``mkdocs build``): no private name is
shown to a reader, the model fields are listed with their types and descriptions, and every
parameters table of the API reference lists every parameter of its object's signature (a
parameter documented outside ``Args:`` shows as stray text under the table, not in it).

Usage: ``python docs/_ext/check_site.py SITE_DIR``; exits 1 listing what is wrong.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path

# What a reader must never see: private modules and classes, plugin internals, raw reST markup.
PRIVATE = [
    r"kopechka\._(?!_version__)\w+",
    r"\bAppServer\b",
    r"(?<![\w.])Timeout\b",
    r"\bTextFilter\b",
    r"\b_Model\b",
    r"\bExactJSONModel\b",
    r"\bBase(?:Client|Mailbox)\b",
    r"\bpytest_configure\b",
    r"\w::\s",
]
# (model, field, type, words of its description) that the reference must show
FIELDS = [
    ("Order", "order_id", "str", "every order method takes"),
    ("Order", "price", "Decimal", "What it cost"),
    ("Message", "sender", "str", "the JSON"),
    ("Cancellation", "refund_amount", "Decimal", "What came back"),
    ("Profile", "balance", "Decimal", "What is left to spend"),
]


def visible_text(page: Path) -> str:
    """The text a reader sees: no tags, scripts or attributes (titles, hrefs)."""
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", source))


_HEADING = re.compile(r'<h[2-6] id="(kopechka(?:\.\w+)+)" class="doc doc-heading"')
_PARAMETERS = re.compile(
    r'doc-section-title">Parameters:</span>.*?<table>(.*?)</table>', flags=re.S
)
_ROW_NAME = re.compile(r'<tr class="doc-section-item">\s*<td>\s*<code>(\w+)</code>')
_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
          inspect.Parameter.KEYWORD_ONLY)  # fmt: skip


def _resolve(dotted: str) -> object | None:
    """The object a heading documents (``kopechka.testing.Sandbox.fail``), or ``None``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name, None)
        return found
    return None


def _parameters(obj: object) -> list[str]:
    if not callable(obj):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values() if p.kind in _NAMED and p.name != "self"]


def missing_parameters(page: str, resolve: Callable[[str], object] = _resolve) -> list[str]:
    """``Object: name`` for each parameter of a documented object's signature that its
    parameters table leaves out (objects whose section has no such table are not checked)."""
    found = []
    headings = list(_HEADING.finditer(page))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        section = page[heading.end() : following.start() if following else len(page)]
        table = _PARAMETERS.search(section)
        if table is None:
            continue
        listed = set(_ROW_NAME.findall(table.group(1)))
        obj = resolve(heading.group(1))
        found += [f"{heading.group(1)}: {n}" for n in _parameters(obj) if n not in listed]
    return found


def main(site: Path) -> int:
    problems = []
    for page in sorted(site.rglob("*.html")):
        text = visible_text(page)
        for pattern in PRIVATE:
            for match in re.finditer(pattern, text):
                context = " ".join(text[max(0, match.start() - 50) : match.end() + 30].split())
                problems.append(f"{page.relative_to(site)}: {pattern!r} in ...{context}...")
    reference = " ".join(visible_text(site / "reference" / "index.html").split())
    for model, name, kind, words in FIELDS:
        # griffe-pydantic lists each field under its model: name, type, then its description
        shown = rf"{name} pydantic-field \S* ?{name} : {kind}\b.{{0,40}}{re.escape(words)}"
        if not re.search(shown, reference):
            problems.append(f"reference: {model}.{name}: {kind} and its description not shown")
    source = (site / "reference" / "index.html").read_text()
    problems += [f"reference: not in its parameters table: {m}" for m in missing_parameters(source)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
