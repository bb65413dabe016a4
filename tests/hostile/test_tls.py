"""The CA bundle from the environment: both faces read the same variables in the same order
(``kopechka._tls.CA_VARIABLES``), trust what the first one set names over TLS on loopback, and
refuse at construction, naming the variable, a bundle that is missing, a directory, empty or
garbage."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from kopechka import APIConnectionError, _tls
from kopechka._tls import CA_VARIABLES

from ..faces import Face
from .conftest import SECRET, Conn, RawServer, Script, answer

Make = Callable[[Script], RawServer]
BALANCE = b'{"success": true, "data": {"balance": 7}}'


class TlsServer(RawServer):
    """A raw server behind TLS, with a certificate for 127.0.0.1 issued by ``ca``."""

    def __init__(self, script: Script, ca: trustme.CA) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(self.context)
        super().__init__(script)
        self.url = f"https://127.0.0.1:{self.port}/api/v1"

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        try:
            wrapped = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):  # the client did not trust the certificate
            sock.close()
            return
        super()._serve(wrapped)


def _balance(conn: Conn, _request: bytes) -> None:
    conn.send(answer(200, BALANCE))


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[TlsServer]:
    made = TlsServer(_balance, ca)
    yield made
    made.close()


def _pem(tmp_path: Path, ca: trustme.CA, name: str = "ca.pem") -> str:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_the_order_is_the_documented_one() -> None:
    assert CA_VARIABLES == ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_each_variable_alone_is_trusted_by_both_faces(
    face: Face,
    server: TlsServer,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, _pem(tmp_path, ca))
    with face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client:
        assert client.get_balance() == 7


@pytest.mark.parametrize("first", range(len(CA_VARIABLES) - 1))
@pytest.mark.parametrize("trusted", ["earlier", "later"])
def test_the_first_variable_set_wins_on_both_faces(
    face: Face,
    server: TlsServer,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: int,
    trusted: str,
) -> None:
    right, wrong = _pem(tmp_path, ca), _pem(tmp_path, trustme.CA(), "other.pem")
    earlier, later = CA_VARIABLES[first], CA_VARIABLES[first + 1]
    monkeypatch.setenv(earlier, right if trusted == "earlier" else wrong)
    monkeypatch.setenv(later, wrong if trusted == "earlier" else right)
    with face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client:
        if trusted == "earlier":
            assert client.get_balance() == 7
        else:
            with pytest.raises(APIConnectionError):
                client.get_balance()


BAD_BUNDLES = {
    "missing": None,
    "empty": b"",
    "garbage": b"this is not a certificate\n",
    "cut": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
    "directory": "dir",
}


@pytest.mark.parametrize("kind", list(BAD_BUNDLES))
@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_an_unusable_bundle_is_a_value_error_naming_the_variable(
    face: Face, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, kind: str
) -> None:
    content = BAD_BUNDLES[kind]
    path = tmp_path / "bundle.pem"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "dir":
        path.mkdir()
    monkeypatch.setenv(variable, str(path))
    with pytest.raises(ValueError, match=variable):
        face.client(api_key=SECRET, base_url="https://api.kopechka.example/api/v1")


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage"])
def test_an_http_base_url_reads_no_bundle_on_both_faces(
    face: Face, raw_server: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """No TLS, no bundle: a broken ``SSL_CERT_FILE`` left in the environment does not stop a
    client of a plain-HTTP server (the sandbox, a local proxy)."""
    content = BAD_BUNDLES[kind]
    path = tmp_path / "bundle.pem"
    if isinstance(content, bytes):
        path.write_bytes(content)
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    server = raw_server(_balance)
    with face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client:
        assert client.get_balance() == 7


def test_a_bundle_is_loaded_once_per_file_on_both_faces(
    face: Face,
    server: TlsServer,
    ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []
    real = _tls._load

    def counted(path: str) -> ssl.SSLContext:
        loads.append(path)
        return real(path)

    monkeypatch.setattr(_tls, "_load", counted)
    pem = _pem(tmp_path, ca)
    monkeypatch.setenv("SSL_CERT_FILE", pem)
    for _ in range(3):
        with face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client:
            assert client.get_balance() == 7
    assert loads == [pem]
    Path(pem).write_bytes(Path(pem).read_bytes() + b"\n")  # changed: loaded again
    with face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client:
        assert client.get_balance() == 7
    assert loads == [pem, pem]
