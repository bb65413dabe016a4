"""The documentation site's checker (docs/_ext/check_site.py) on small pages shaped as mkdocstrings
writes them: a parameter of a signature missing from its object's parameters table is reported,
also when its description is there as stray text under the table (as ``budget`` once was)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

from kopechka import KopechkaClient

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs/_ext/check_site.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(names: list[str], after_table: str = "") -> str:
    rows = "".join(
        f'<tr class="doc-section-item">\n  <td>\n    <code>{n}</code>\n  </td><td>x</td></tr>\n'
        for n in names
    )
    return (
        '<h3 id="kopechka.KopechkaClient" class="doc doc-heading">KopechkaClient</h3>\n'
        '<p><span class="doc-section-title">Parameters:</span></p>\n'
        f"<table><thead><tr><th>Name</th></tr></thead><tbody>\n{rows}</tbody></table>\n"
        f"{after_table}"
        '<h4 id="kopechka.KopechkaClient.close" class="doc doc-heading">close</h4>\n'
        '<p><span class="doc-section-title">Raises:</span></p><table></table>\n'
    )


PARAMETERS = [p for p in inspect.signature(KopechkaClient).parameters if p != "self"]


def test_a_complete_table_passes() -> None:
    assert "budget" in PARAMETERS
    assert _checker().missing_parameters(_page(PARAMETERS)) == []


def test_a_parameter_missing_from_its_table_is_reported() -> None:
    without = [p for p in PARAMETERS if p != "budget"]
    stray = "<p>budget: A cap on what this client may spend</p>\n"
    found = _checker().missing_parameters(_page(without, after_table=stray))
    assert found == ["kopechka.KopechkaClient: budget"]


def test_a_section_without_a_parameters_table_is_not_checked() -> None:
    page = '<h3 id="kopechka.Order" class="doc doc-heading">Order</h3>\n<p>fields</p>\n'
    assert _checker().missing_parameters(page) == []


def test_each_page_is_in_the_sidebar_once() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config[config.index("\nnav:\n") : config.index("\nmarkdown_extensions:")]
    pages = re.findall(r"^  - [^:]+: (\S+\.md)$", nav, flags=re.M)
    assert len(pages) >= 10
    assert len(pages) == len(set(pages)), sorted(p for p in pages if pages.count(p) > 1)
