"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
import time


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition", every: float = 0.05):
    """Polls until predicate() is truthy and returns that value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
