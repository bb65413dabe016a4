"""The documentation stays true: the API reference covers every public name, and every public
callable has a Google-style docstring with Args, Returns and Raises where they apply."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import kopechka
from kopechka import testing

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def test_reference_covers_all_public_names() -> None:
    documented = set(re.findall(r"^::: kopechka\.(\w+)$", REFERENCE, re.M))
    assert set(kopechka.__all__) - {"__version__"} <= documented
    assert "__version__" in REFERENCE
    for name in ("Sandbox", "SandboxDomain", "SandboxError", "RecordedRequest"):
        assert f"::: kopechka.testing.{name}" in REFERENCE


def _public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    owners = (kopechka.KopechkaClient, kopechka.AsyncKopechkaClient, kopechka.Mailbox,
              kopechka.AsyncMailbox, kopechka.Message, testing.Sandbox)  # fmt: skip
    for owner in owners:
        for name, member in vars(owner).items():
            if not name.startswith("_") and inspect.isfunction(member):
                found.append((f"{owner.__name__}.{name}", member))
    found.append(("KopechkaClient.__init__", kopechka.KopechkaClient))
    found.append(("AsyncKopechkaClient.__init__", kopechka.AsyncKopechkaClient))
    found.append(("Sandbox.__init__", testing.Sandbox))
    return found


@pytest.mark.parametrize(
    ("name", "func"), _public_callables(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_docstring_sections(name: str, func: Any) -> None:
    doc = inspect.getdoc(func) or ""
    assert doc, f"{name} has no docstring"
    target = func  # a class: the signature of its __init__, without self
    params = [p for p in inspect.signature(target).parameters if p not in {"self"}]
    if params:
        assert "Args:" in doc, f"{name}: no Args section"
        for param in params:
            bare = param.lstrip("*")
            assert re.search(rf"^\s+\**{bare}( \(|:)", doc, re.M), f"{name}: {param} not described"
    returns = inspect.signature(target).return_annotation
    if returns not in (None, "None", inspect.Signature.empty) and not isinstance(func, type):
        assert "Returns:" in doc, f"{name}: no Returns section"


IO_METHODS = [
    name for name, member in vars(kopechka.KopechkaClient).items()
    if not name.startswith("_") and inspect.isfunction(member) and name != "close"
]  # fmt: skip


@pytest.mark.parametrize("name", IO_METHODS)
def test_client_methods_name_their_errors(name: str) -> None:
    doc = inspect.getdoc(getattr(kopechka.KopechkaClient, name)) or ""
    assert "Raises:" in doc
    raised = re.findall(r"^\s{4}(\w+Error):", doc, re.M)
    assert raised, name
    assert all(hasattr(kopechka, e) or e == "ValueError" for e in raised), raised


def test_readme_links_work_on_pypi() -> None:
    # the README is the PyPI page: a relative link there leads nowhere
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme) + re.findall(r'(?:src|href)="([^"]+)"', readme)
    assert targets
    relative = [t for t in targets if not t.startswith("https://")]
    assert relative == []


def test_project_urls_are_this_projects() -> None:
    from importlib.metadata import metadata

    urls = dict(u.split(", ", 1) for u in metadata("kopechka").get_all("Project-URL") or [])
    assert set(urls) >= {"Source", "Issues", "Changelog", "Documentation"}
    assert all("kopechka.com" not in url for url in urls.values())  # the vendor's site is not ours
