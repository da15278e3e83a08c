"""The Redshift adapter's connection through the REAL redshift_connector driver, against a small
server in a thread that speaks just enough of the wire protocol (startup, then every extended
query answered with "no rows"). No Redshift exists here; what this checks is the driver's
socket: the connect is bounded, a statement slower than that bound still completes, and a
connection that drops mid-statement is a one-line, retryable error.

The one liberty taken with the product's connect is ``ssl=False``: the server speaks no TLS.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redshift_connector

from rentalctl import aws, config
from rentalctl.adapters import warehouse_redshift
from rentalctl.adapters.warehouse_redshift import RedshiftWarehouse
from rentalctl.errors import ResourceUnavailable


def _message(code: bytes, body: bytes = b"") -> bytes:
    return code + struct.pack("!i", len(body) + 4) + body


class WireServer:
    """Accepts connections; logs any user in; answers each extended-protocol message at once.
    A statement containing ``slow`` is answered after ``slow_seconds``; one containing ``drop``
    closes the connection instead of answering. A ``mute`` server never answers at all."""

    def __init__(self, slow_seconds: float, mute: bool = False) -> None:
        self.slow_seconds = slow_seconds
        self.mute = mute
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.statements: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mute:
                    self._read(conn, 1 << 20)  # until the client gives up
                (length,) = struct.unpack("!i", self._read(conn, 4))
                self._read(conn, length - 4)  # the startup message
                conn.sendall(_message(b"R", struct.pack("!i", 0)) + _message(b"Z", b"I"))
                statement = ""
                while True:
                    code = self._read(conn, 1)
                    (length,) = struct.unpack("!i", self._read(conn, 4))
                    body = self._read(conn, length - 4)
                    if code == b"P":  # Parse: name, query, parameter types
                        statement = body.split(b"\0")[1].decode()
                        self.statements.append(statement)
                        conn.sendall(_message(b"1"))
                    elif code == b"D":
                        conn.sendall(_message(b"t", struct.pack("!h", 0)) + _message(b"n"))
                    elif code == b"B":
                        conn.sendall(_message(b"2"))
                    elif code == b"E":
                        if "drop" in statement:
                            return
                        if "slow" in statement:
                            time.sleep(self.slow_seconds)
                        conn.sendall(_message(b"C", b"OK\0"))
                    elif code == b"S":
                        conn.sendall(_message(b"Z", b"T"))
                    elif code == b"X":
                        return
            except (ConnectionError, OSError):
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    # A one-second bound on the connect, and a statement that takes twice as long.
    monkeypatch.setattr(warehouse_redshift, "CONNECT_TIMEOUT", 1)
    real_connect = redshift_connector.connect
    monkeypatch.setattr(
        redshift_connector, "connect", lambda **kwargs: real_connect(**kwargs, ssl=False)
    )
    wire = WireServer(slow_seconds=2)
    yield wire
    wire.close()


@pytest.fixture
def settings(on_moto: str, tmp_path: Path, server: WireServer) -> Any:
    client = aws.client("secretsmanager", aws.session(on_moto))
    arn = client.create_secret(
        Name="rentalctl/redshift", SecretString='{"username": "loader", "password": "pw"}'
    )["ARN"]
    loaded = config.load(
        env={
            "RENTALCTL_HOME": str(tmp_path),
            "RENTALCTL_WAREHOUSE_URL": f"redshift://loader@127.0.0.1:{server.port}/rentals",
        }
    )
    return dataclasses.replace(
        loaded,
        aws=dataclasses.replace(loaded.aws, region=on_moto, redshift_secret_arn=arn),
    )


def test_a_statement_may_outlast_the_connect_timeout(settings: Any, server: WireServer) -> None:
    with RedshiftWarehouse.connect(settings, aws.session(settings.aws.region)) as wh:
        assert wh.conn._usock.gettimeout() is None
        started = time.monotonic()
        wh.execute_transaction(["SELECT 'slow'"])
        assert time.monotonic() - started >= 2
    assert server.statements == ["begin transaction", "SELECT 'slow'", "commit"]


def test_a_connection_dropped_mid_statement_is_a_retryable_one_liner(
    settings: Any, server: WireServer
) -> None:
    with (
        pytest.raises(ResourceUnavailable) as caught,
        RedshiftWarehouse.connect(settings, aws.session(settings.aws.region)) as wh,
    ):
        wh.execute_transaction(["DELETE FROM a", "SELECT 'drop'"])
    message = str(caught.value)
    # The driver raises the socket's own error (a reset) or InterfaceError (a closed socket).
    assert message.startswith(
        f"lost the connection to redshift://loader@127.0.0.1:{server.port}/rentals ("
    )
    assert message.endswith("; anything not committed is rolled back (worth a retry)")
    assert "\n" not in message
    assert caught.value.exit_code == 3


def test_a_server_that_never_answers_fails_the_connect_in_time(
    settings: Any, server: WireServer
) -> None:
    server.mute = True
    started = time.monotonic()
    with pytest.raises(ResourceUnavailable) as caught:
        RedshiftWarehouse.connect(settings, aws.session(settings.aws.region))
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(
        f"cannot connect to Redshift at 127.0.0.1:{server.port}, database 'rentals', "
        "user 'loader': "
    )


class RecordingSession:
    """A boto3 session that records which clients are made from it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.services = inner, []
        self.region_name = inner.region_name

    def get_credentials(self) -> Any:
        return self.inner.get_credentials()

    def client(self, service: str, **kwargs: Any) -> Any:
        self.services.append(service)
        return self.inner.client(service, **kwargs)


def test_the_secret_is_read_through_the_contexts_session(settings: Any, server: WireServer) -> None:
    """The adapter builds no session of its own: the run's one session (its credentials, its
    region) reads the secret."""
    from rentalctl.context import Context

    session = RecordingSession(aws.session(settings.aws.region))
    with Context(settings, boto3_session=session).warehouse() as wh:
        assert wh.name == f"redshift://loader@127.0.0.1:{server.port}/rentals"
    assert session.services == ["secretsmanager"]
