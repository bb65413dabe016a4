"""The CA bundle the client's own connections trust, read from the environment: one table of
variables, one order, the same for both faces.

This module owns ``CA_VARIABLES`` and ``ca_bundle``, which finds the first variable set and checks
at construction that it names a file of certificates ``ssl`` can load: an empty file, garbage or a
directory is a ``ValueError`` naming the variable, not an ``ssl.SSLError`` or ``OSError`` later. It
imports no HTTP library and sends nothing.
"""

from __future__ import annotations

import os
import ssl
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


def ca_bundle(environ: Mapping[str, str] | None = None) -> CaBundle | None:
    """The bundle the first of ``CA_VARIABLES`` names, loaded; ``None`` when none is set.

    Raises:
        ValueError: The file does not exist, is a directory, cannot be read, or holds no
            certificate ``ssl`` can load (empty, garbage); the message names the variable.
    """
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
        context = ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ValueError(f"{where}, which holds no certificate ssl can load ({exc})") from None
    return CaBundle(variable, path, context)
