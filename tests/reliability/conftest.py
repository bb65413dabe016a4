"""The fault suite reports itself as scenarios: ``N scenarios, N passed`` at the end of the run."""

from __future__ import annotations

import pytest

_outcomes: dict[str, int] = {"passed": 0, "failed": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/reliability/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call":
        _outcomes["passed" if report.passed else "failed"] += 1
    elif report.failed:  # an error in setup or teardown fails the scenario too
        _outcomes["failed"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total = _outcomes["passed"] + _outcomes["failed"]
    if total:
        terminalreporter.write_line(f"fault suite: {total} scenarios, {_outcomes['passed']} passed")
