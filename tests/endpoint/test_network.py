"""Failures before any reply: refused, DNS, TLS, connect timeout. All on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.endpoint._errors import ConnectError, ConnectTimeout, DNSError, TLSError
from cli.endpoint._transport import EndpointClient

from .conftest import fixture_bytes
from .server import Reply, ScriptedServer
from .test_transport import CHAT, PAYLOAD


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with EndpointClient(url, timeout=2, connect_timeout=2) as client, pytest.raises(ConnectError) as caught:
        client.chat(PAYLOAD)
    assert str(caught.value) == f"cannot connect to {url}/v1/chat/completions: Connection refused"


def test_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "bai-test.invalid":  # answered here: no resolver is asked
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with EndpointClient("http://user:pw@bai-test.invalid:8000/v1", timeout=2, connect_timeout=2) as client:
        with pytest.raises(DNSError) as caught:
            client.list_models()
    assert caught.value.host == "bai-test.invalid" and "pw" not in str(caught.value)
    assert "cannot resolve host 'bai-test.invalid'" in str(caught.value)


def test_connect_timeout_on_a_full_backlog() -> None:
    # A listening socket that never accepts: once its queue is full, new connections hang.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        started = time.monotonic()
        with EndpointClient(f"http://127.0.0.1:{port}", timeout=5, connect_timeout=0.3) as client:
            with pytest.raises(ConnectTimeout, match="after 0.3 s"):
                client.chat(PAYLOAD)
        assert time.monotonic() - started < 3
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_tls_to_a_plain_http_server(server: ScriptedServer) -> None:
    # More of this in test_plain_http.py; the connect timeout is long: "at once" is the point.
    url = server.url.replace("http://", "https://")
    with EndpointClient(url, timeout=60, connect_timeout=60) as client, \
            pytest.raises(TLSError, match=f"answers in plain HTTP, not TLS: use {server.url}"):
        client.chat(PAYLOAD)


def self_signed_certificate(cert: Path, key: Path) -> None:
    """A self-signed certificate for 127.0.0.1, made in Python (the `cryptography` test extra),
    so the TLS tests need no openssl binary and run the same on every machine."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[ScriptedServer]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed_certificate(cert, key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = ScriptedServer(tls=context)
    try:
        yield srv
    finally:
        srv.stop()
    assert srv.errors == [], "the test server itself failed"


def test_self_signed_certificate_is_refused_unless_verification_is_off(tls_server: ScriptedServer) -> None:
    tls_server.add(CHAT, Reply(200, fixture_bytes("vllm_basic_v0_6.json")))
    with EndpointClient(tls_server.url, timeout=2, connect_timeout=2) as client:
        with pytest.raises(TLSError, match="certificate could not be verified for https:.*: self.signed certificate"):
            client.chat(PAYLOAD)
    with EndpointClient(tls_server.url, timeout=2, connect_timeout=2, verify=False) as client:
        assert client.chat(PAYLOAD).text == "Random Number Generator Produces Smallest Possible Result"


def test_importing_the_endpoint_api_does_not_import_httpx() -> None:
    code = ("import sys, cli, cli.endpoint; assert 'httpx' not in sys.modules; "
            "cli.endpoint.EndpointClient; assert 'httpx' in sys.modules")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=30)
