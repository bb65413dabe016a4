"""CI lanes beside the main run (.ci/run): the test suite on every Python that pyproject.toml
claims, and on the dependency floors.

- ``tests-3.10`` ... ``tests-3.13``: the core of the suite on that interpreter, found on PATH or in
  pyenv (``$(pyenv root)/versions/3.X.*/bin/python3.X``). An interpreter that is not on this machine
  is skipped with a loud banner; ``KOPECHKA_REQUIRE_PYTHONS=1`` makes that an error instead.
- ``floors``: the core with every direct dependency pinned at the lowest version pyproject.toml
  allows (``requests>=2.31`` installs ``requests==2.31``), on the oldest claimed Python, so the
  declared floors stay true.
- ``mcp-floors``: the MCP suite with the ``mcp`` extra at its floors (the SDK, and the pydantic it
  needs, which is above the core's floor), on the oldest Python the extra claims (3.11).

The core is the suite less ``MAIN_LANE_ONLY``: everything that touches requests, urllib3, httpx,
pydantic or asyncio (models, wire, both clients, retries, the fault matrix, memory bombs, fork,
keys, the sandbox) runs on every interpreter; the suites that drive subprocesses whose behaviour
does not depend on the interpreter under test (the command line, signals, docs, packaging, the
Celery farm, the vendor's clients in other languages) run in the main lane only.
``KOPECHKA_FULL=1`` runs the whole suite in every lane (for a release: ``KOPECHKA_FULL=1 nox``).

Each lane runs like the README's command: the suite on ``KOPECHKA_WORKERS`` workers (2 by
default), then the few ``timing`` tests on their own. Virtualenvs are made and filled by uv when
it is installed (``pip install uv``), by venv and pip otherwise.

Run one lane with ``nox -s floors``, all with ``nox``.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox
from packaging.version import Version

nox.options.default_venv_backend = "uv|venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = bool(os.environ.get("KOPECHKA_REQUIRE_PYTHONS"))

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = [
    c.rsplit(" :: ", 1)[1]
    for c in PYPROJECT["project"]["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
]
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
# Run in the main lane only (.ci/run's last step): subprocess suites that test the program, not
# the interpreter.
MAIN_LANE_ONLY = (
    "tests/test_cli.py",
    "tests/test_cli_money.py",
    "tests/test_cli_wording.py",
    "tests/test_signals.py",
    "tests/test_docs.py",
    "tests/test_check_site.py",
    "tests/test_readme_skips.py",
    "tests/test_examples.py",
    "tests/test_packaging.py",
    "tests/test_environment.py",
    "tests/test_source_rules.py",
    "tests/farm",
    "tests/testing/test_command.py",
    "tests/testing/test_openapi.py",
    "tests/testing/test_vendor_clients.py",
    # pure text processing (no HTTP stack, pydantic or asyncio): one interpreter proves it
    "tests/test_extract.py",
    "tests/test_inert.py",
    "tests/hostile/test_extract_linear.py",
    # the sandbox's own state machine, routes and load (the client suites still use the sandbox)
    "tests/testing/test_state.py",
    "tests/testing/test_app.py",
    "tests/testing/test_load.py",
    # subprocess programs: signals and campaigns (the asyncio closing suite stays in every lane)
    "tests/test_interrupts.py",
    "tests/reliability/test_campaign.py",
    "tests/reliability/test_campaign_composed.py",
    # the MCP server: its own lane (mcp-floors) runs it on the extra's floors
    "tests/mcp",
)
# uv would otherwise download a Python it cannot find: the lanes test this machine's
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def _selection(posargs: list[str]) -> list[str]:
    """The core (or, with ``KOPECHKA_FULL=1``, everything), unless the command line names tests."""
    if posargs:
        return posargs
    if os.environ.get("KOPECHKA_FULL"):
        return []
    return [f"--ignore={path}" for path in MAIN_LANE_ONLY]


def _pip(session: nox.Session, *args: str) -> None:
    """``pip`` in the session's venv: uv's where uv made it (a uv venv has no pip)."""
    if session.venv_backend == "uv":
        session.run("uv", "pip", *args, external=True)
    else:
        session.run("python", "-m", "pip", *args)


def _pytest(session: nox.Session) -> None:
    """As the README's command: in parallel, then the ``timing`` tests on their own."""
    selection = _selection(session.posargs)
    workers = os.environ.get("KOPECHKA_WORKERS", "2")
    session.run("python", *PYTEST, "-n", workers, "-m", "not timing", *selection)
    # exit code 5: no timing test in a selection that names tests
    session.run("python", *PYTEST, "-m", "timing", *selection, success_codes=[0, 5])


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv") or str(Path.home() / ".pyenv" / "bin" / "pyenv")
    try:
        out = subprocess.run(  # noqa: S603 - pyenv itself, no user input
            [pyenv, "root"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out.stdout.strip())


def _real_interpreter(version: str, root: Path | None) -> str | None:
    """``python3.X`` itself: on PATH (pyenv's shims excluded: a shim of a version that pyenv has not
    selected refuses to run), else in pyenv's versions."""
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if "shims" not in Path(d).parts
    )
    found = shutil.which(f"python{version}", path=path)
    if found is None and root is not None:
        candidates = sorted(
            glob.glob(str(root / "versions" / f"{version}.*" / "bin" / f"python{version}"))
        )
        found = candidates[-1] if candidates else None
    return found


def _find_interpreters() -> list[str]:
    """Put each claimed interpreter first on PATH as ``python3.X`` (a small launcher in .nox, so
    nothing else of its directory shadows this machine's ``python3`` or ``pip``); return the
    versions not found."""
    launchers = ROOT / ".nox" / "interpreters"
    launchers.mkdir(parents=True, exist_ok=True)
    root, missing = _pyenv_root(), []
    for version in PYTHONS:
        real = _real_interpreter(version, root)
        if real is None:
            missing.append(version)
            continue
        launcher = launchers / f"python{version}"
        launcher.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
        launcher.chmod(0o755)
    os.environ["PATH"] = os.pathsep.join([str(launchers), os.environ.get("PATH", "")])
    return missing


MISSING = _find_interpreters()
for _version in MISSING:
    print(
        f"\n{'!' * 78}\n!!! Python {_version} is not on this machine (PATH, pyenv): "
        f"its lane tests-{_version} is SKIPPED\n{'!' * 78}\n",
        file=sys.stderr,
    )


def _floors() -> list[str]:
    """``name==floor`` for every direct dependency that declares a ``>=`` floor."""
    pins = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        if match is None:
            raise ValueError(f"direct dependency without a >= floor: {requirement!r}")
        pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The core of the suite on one interpreter, with the newest dependencies."""
    session.install("-e", ".[test]")
    session.run("python", "-c", "import sys; print(sys.version)")
    _pytest(session)


@nox.session(python=PYTHONS[0])
def floors(session: nox.Session) -> None:
    """The core of the suite with every direct dependency at its declared floor."""
    pins = _floors()
    # the mcp extra needs pydantic 2.12 (the SDK's floor), above the core's: its suite skips here
    test = [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if "[mcp]" not in r]
    session.install("-e", ".", *test, *pins)
    _pip(session, "check")
    wanted = dict(p.split("==") for p in pins)
    installed = session.run(
        "python", "-c",
        "import sys; from importlib.metadata import version;"
        "print(' '.join(f'{n}=={version(n)}' for n in sys.argv[1:]))",
        *wanted, silent=True,
    )  # fmt: skip
    got = dict(p.split("==") for p in str(installed).split())
    if any(Version(got[name]) != Version(floor) for name, floor in wanted.items()):
        session.error(f"floors not installed as pinned: {got} != {wanted}")
    session.log(f"floors installed: {got}")
    _pytest(session)


# The suites that run the async face (alone, or parametrized over both faces).
ASYNC_SUITES = [
    "tests/test_async_client.py",
    "tests/test_async_limiter.py",
    "tests/test_httpx_stacks.py",
    "tests/test_endpoints.py",
    "tests/test_mail.py",
    "tests/test_retries.py",
    "tests/test_observability.py",
    "tests/test_redis_limiter.py",
    "tests/hostile/test_request_head.py",
    "tests/reliability/test_fault_matrix.py",
]


@nox.session(name="tests-httpx", python=next(v for v in PYTHONS if Version(v) >= Version("3.11")))
def tests_httpx(session: nox.Session) -> None:
    """The async suites on httpx alone (httpx2 absent): the stack the async face falls back to."""
    session.install("-e", ".[test]")
    _pip(
        session,
        "uninstall",
        *(() if session.venv_backend == "uv" else ("-y",)),
        "httpx2",
        "httpcore2",
    )
    session.install("httpx>=0.27,<1", "sniffio>=1.3")
    session.run(
        "python", "-c",
        "import importlib.util as u, kopechka._httpx as h;"
        "assert u.find_spec('httpx2') is None, 'httpx2 is still installed';"
        "assert h.httpx.__name__ == 'httpx', h.httpx; print('async stack:', h.httpx.__name__)",
    )  # fmt: skip
    session.run("python", *PYTEST, *ASYNC_SUITES, *session.posargs)


@nox.session(name="mcp-floors", python=next(v for v in PYTHONS if Version(v) >= Version("3.11")))
def mcp_floors(session: nox.Session) -> None:
    """The MCP suite with the ``mcp`` extra's dependencies at their declared floors."""
    extra = PYPROJECT["project"]["optional-dependencies"]["mcp"]
    pins = [re.sub(r"\s*>=\s*([^,;\s]+).*", r"==\1", r) for r in extra]
    session.install("-e", ".[mcp]", *pins, "pytest", "hypothesis")
    _pip(session, "check")
    session.run("python", *PYTEST, "tests/mcp", *session.posargs)
