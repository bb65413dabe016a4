"""The CA bundle the client's own connections trust, read from the environment: one table of
variables, one order, the same for both faces.

This module owns ``CA_VARIABLES`` and ``ca_bundle``, which finds the first variable set and checks
at construction that it names a file of certificates ``ssl`` can load: an empty file, garbage or a
directory is a ``ValueError`` naming the variable, not an ``ssl.SSLError`` or ``OSError`` later. A
file is loaded once per (path, modification time, size): every client built after the first reuses
its context (the async face's connections use it; the sync face passes the path to requests). A
``base_url`` that is not ``https://`` uses no TLS, so no bundle is read for it. It imports no HTTP
library and sends nothing.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CA_VARIABLES", "CaBundle", "ca_bundle"]

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
"""Read in this order; the first one set (and not empty) names the bundle, the others are
ignored. None set: the certificates of ``certifi`` (requests' and httpx's default)."""


@dataclass(frozen=True, slots=True)
class CaBundle:
    """A checked bundle: the variable that named it, its path and a context trusting it."""

    variable: str
    path: str
    context: ssl.SSLContext


_LOADED: dict[tuple[str, int, int], ssl.SSLContext] = {}
_LOADED_MOST = 8  # distinct bundles kept; past that the cache starts over
_LOADED_LOCK = threading.Lock()


def _load(path: str) -> ssl.SSLContext:
    """A context trusting the certificates of ``path`` (the costly part: tens of ms)."""
    return ssl.create_default_context(cafile=path)


def _loaded(path: str) -> ssl.SSLContext:
    """``_load(path)``, once per (path, modification time, size)."""
    info = os.stat(path)
    key = (os.path.abspath(path), info.st_mtime_ns, info.st_size)
    with _LOADED_LOCK:
        context = _LOADED.get(key)
    if context is None:
        context = _load(path)
        with _LOADED_LOCK:
            if len(_LOADED) >= _LOADED_MOST:
                _LOADED.clear()
            _LOADED[key] = context
    return context


def ca_bundle(
    environ: Mapping[str, str] | None = None, *, base_url: str | None = None
) -> CaBundle | None:
    """The bundle the first of ``CA_VARIABLES`` names, loaded; ``None`` when none is set, or
    when ``base_url`` is given and is not ``https://`` (no TLS: the variables are not read).

    Raises:
        ValueError: The file does not exist, is a directory, cannot be read, or holds no
            certificate ``ssl`` can load (empty, garbage); the message names the variable.
    """
    if base_url is not None and not base_url.lower().startswith("https://"):
        return None
    environ = os.environ if environ is None else environ
    variable = next((name for name in CA_VARIABLES if environ.get(name)), None)
    if variable is None:
        return None
    path = environ[variable]
    where = f"{variable} names {path!r}"
    if not os.path.exists(path):
        raise ValueError(f"{where}, which does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{where}, a directory: it must name a file of PEM certificates")
    try:
        context = _loaded(path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ValueError(f"{where}, which holds no certificate ssl can load ({exc})") from None
    return CaBundle(variable, path, context)
