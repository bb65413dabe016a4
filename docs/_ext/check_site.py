"""Check the built documentation site (run by .ci/run after ``mkdocs build``): no private name is
shown to a reader, and the model fields are listed with their types and descriptions.

Usage: ``python docs/_ext/check_site.py SITE_DIR``; exits 1 listing what is wrong.
"""

from __future__ import annotations

import html
import re
import sys
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
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
