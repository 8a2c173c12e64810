"""The unit tier does no network or database I/O: a test that tries to connect anywhere fails here,
naming the address, instead of quietly becoming an integration test."""

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_connections(monkeypatch):
    def refuse(_sock, address, *args):
        raise AssertionError(f"a unit test tried to connect to {address}: move it to tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
