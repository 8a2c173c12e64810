"""Hosts for the fleet test: network namespaces made with `ip netns`, each joined to a bridge in the
root namespace by a veth pair, so every host has its own address and its own link to pull.

The Postgres of the run (the system one or the embedded one, often only on loopback or a Unix socket)
is put on host A's address by a relay whose listening socket is opened inside namespace A (setns(2) in
a helper thread) while its upstream connections stay in the root namespace, where the server is."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

CLONE_NEWNET = 0x40000000
SUBNET = "10.213.{}."  # a private /24 of the test's own, reachable only through its bridge


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the fleet test as root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (Debian: apt-get install iproute2)"
    probe = f"enprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Host:
    ns: str
    address: str
    link: str  # the veth end inside the namespace

    def run(self, argv: list[str], env: dict[str, str], log) -> subprocess.Popen:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def link_down(self) -> None:
        ip("link", "set", self.link, "down", ns=self.ns)

    def link_up(self) -> None:
        ip("link", "set", self.link, "up", ns=self.ns)


@contextmanager
def fleet(names: list[str]) -> Iterator[tuple[dict[str, Host], str]]:
    """Namespaces on one bridge: yields ({name: Host}, the root namespace's address on the bridge).
    Everything is removed on the way out, whatever happened."""
    tag = uuid.uuid4().hex[:6]
    net = SUBNET.format(int(tag[:2], 16) % 200 + 20)
    bridge = f"enbr{tag}"
    made: list[str] = []
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{net}254/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        hosts = {}
        for number, name in enumerate(names, start=1):
            ns = f"en{tag}{name}"
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
            made.append(ns)
            outside, inside = f"ve{tag}{name}o", f"ve{tag}{name}i"
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", ns)
            ip("link", "set", outside, "master", bridge)
            ip("link", "set", outside, "up")
            ip("addr", "add", f"{net}{number}/24", "dev", inside, ns=ns)
            ip("link", "set", inside, "up", ns=ns)
            ip("link", "set", "lo", "up", ns=ns)
            hosts[name] = Host(ns, f"{net}{number}", inside)
        yield hosts, f"{net}254"
    finally:
        for ns in made:  # deleting a namespace deletes its veth ends, and so their peers
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _listen_in(ns: str, address: str) -> socket.socket:
    """A listening TCP socket that belongs to namespace `ns` (made from a thread that enters it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    made: dict[str, object] = {}

    def enter_and_listen() -> None:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                made["error"] = OSError(ctypes.get_errno(), f"setns into {ns}")
                return
            made["socket"] = socket.create_server((address, 0))
        finally:
            os.close(target)
        # the thread ends here, and its namespace with it: nothing else runs in it

    thread = threading.Thread(target=enter_and_listen)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["socket"]  # type: ignore[return-value]


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def postgres_on(host: Host, server_url: str) -> Iterator[int]:
    """Relays host A's address (a port it yields) to the test's Postgres server."""
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    where, port = info.get("host") or "127.0.0.1", int(info.get("port") or 5432)
    listener = _listen_in(host.ns, host.address)
    open_sockets: list[socket.socket] = [listener]

    def upstream() -> socket.socket:
        if where.startswith("/"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(f"{where}/.s.PGSQL.{port}")
            return s
        return socket.create_connection((where, port))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            server = upstream()
            open_sockets.extend([client, server])
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        for s in open_sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the accept() and the pumps
            except OSError:
                pass
            s.close()
