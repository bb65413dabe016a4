"""Unusable settings are refused at construction with a clear error, never a foreign exception on
every call."""

from __future__ import annotations

import math

import pytest

from kopechka import KopechkaClient


@pytest.mark.parametrize(
    "timeout", [math.inf, 1e300, (1, math.inf), (math.nan, 1), -1, 0, (1, 2, 3), "10"]
)
def test_unusable_timeouts_refused(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout must be"):
        KopechkaClient("k", timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("wait", [math.inf, math.nan, -1, 1e300, True])
def test_unusable_max_retry_wait_refused(wait: object) -> None:
    with pytest.raises(ValueError, match="max_retry_wait must be"):
        KopechkaClient("k", max_retry_wait=wait)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "10"])
def test_unusable_body_cap_refused(size: object) -> None:
    with pytest.raises(ValueError, match="max_body must be"):
        KopechkaClient("k", max_body=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_missing_ca_bundle_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, "/nonexistent/bundle.pem")
    with pytest.raises(ValueError, match="does not exist"):
        KopechkaClient("k")
