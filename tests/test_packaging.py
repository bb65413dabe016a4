"""The distributions as PyPI would get them: the sdist holds what builds the package and runs its
tests, and nothing of the developer's machine; the wheel holds every file of the package."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

import kopechka

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "kopechka"


def _package_files() -> set[str]:
    """Every file of the package in the source tree, as ``kopechka/...`` (data files included)."""
    return {
        "kopechka/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: hatchling is installed (the test extra), so nothing is downloaded
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
         "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_sdist_has_what_builds_and_tests_the_package_and_nothing_else(dist: Path) -> None:
    (sdist,) = dist.glob("kopechka-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "PKG-INFO",
                   "tests/conftest.py", "tests/test_cli.py", "docs/reference.md",
                   "examples/quickstart.py"):  # fmt: skip
        assert needed in names, needed
    assert {"src/" + f for f in _package_files()} <= names
    stray = [
        n for n in names
        if n.split("/")[0] in {".venv", ".nox", ".git", ".ci", ".github", "site", "dist", "build"}
        or "__pycache__" in n or n.endswith((".pyc", ".coverage")) or ".egg-info" in n
    ]  # fmt: skip
    assert stray == []


def test_wheel_has_every_package_file_and_the_license(dist: Path) -> None:
    (wheel,) = dist.glob("kopechka-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert _package_files() <= names  # py.typed and any data file, not only modules
    assert "kopechka/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert not [n for n in names if n.startswith(("tests/", "docs/", "examples/"))]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "Project-URL: Source, https://github.com/kopechka/kopechka-python" in text
    assert "Requires-Dist: urllib3>=2" in text


def test_the_version_is_one_and_newer_than_every_release_in_the_changelog(dist: Path) -> None:
    (wheel,) = dist.glob("kopechka-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        fields = dict(
            line.split(": ", 1)
            for line in archive.read(metadata).decode().splitlines()
            if ": " in line
        )
    cli = subprocess.run(
        [sys.executable, "-m", "kopechka", "--version"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert fields["Version"] == kopechka.__version__
    assert cli.stdout.strip() == f"kopechka {kopechka.__version__}"
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert released, "no released version in CHANGELOG.md"
    newest = max(map(Version, released))
    # the version being prepared is past every release (or is the newest one, once released)
    assert Version(kopechka.__version__) >= newest, (kopechka.__version__, newest)
    assert Version(kopechka.__version__) > Version("0.1.0")  # the 0.2 line said 0.1.0
