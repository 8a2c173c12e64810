"""A private PgBouncer (Debian's `pgbouncer` binary) in front of a Postgres server, for the tests and
scripts/bench_fleet.py: started on a free port, any database name passed through, trust auth.

    with PgBouncer("postgresql://postgres@127.0.0.1:5432/x", mode="transaction") as bouncer:
        bouncer.url("mydb")     # postgresql://postgres@127.0.0.1:<port>/mydb
        bouncer.restart()       # every client connection is dropped, as in a real restart
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def binary() -> str | None:
    """The pgbouncer executable, or None when it is not installed (`apt-get install pgbouncer`)."""
    return shutil.which("pgbouncer") or next((p for p in CANDIDATES if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgBouncer:
    def __init__(
        self,
        server_url: str,
        *,
        mode: str = "transaction",
        pool_size: int = 20,
        max_client_conn: int = 2000,
        port: int | None = None,
        connect_query: str | None = None,
    ):
        exe = binary()
        if exe is None:
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
        self.exe = exe
        info = psycopg.conninfo.conninfo_to_dict(server_url)
        self.user = info.get("user") or "postgres"
        self.server_host = str(info.get("host") or "127.0.0.1")
        self.server_port = int(info.get("port") or 5432)
        self.mode = mode
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.connect_query = connect_query  # run on each new server connection (README, Running a fleet)
        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="enchant-pgbouncer-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _write_config(self) -> Path:
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}"
            + (f" connect_query='{self.connect_query}'" if self.connect_query else "")
            + "\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"pool_mode = {self.mode}\ndefault_pool_size = {self.pool_size}\n"
            f"max_client_conn = {self.max_client_conn}\nmax_db_connections = 0\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\npidfile = {self.dir / 'pgbouncer.pid'}\n"
            "server_reset_query = DISCARD ALL\nignore_startup_parameters = extra_float_digits,options\n"
            "server_check_delay = 1\nserver_lifetime = 3600\nserver_idle_timeout = 60\n"
            "admin_users = postgres\nlog_connections = 0\nlog_disconnections = 0\n"
        )
        return ini

    def start(self) -> PgBouncer:
        ini = self._write_config()
        os.chmod(self.dir, 0o777)
        for f in self.dir.iterdir():
            os.chmod(f, 0o666)
        cmd = [self.exe, str(ini)]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            cmd = [self.exe, "-u", self._run_as(), str(ini)]
        # Its log goes to a file: an unread pipe fills up and stops PgBouncer dead.
        with (self.dir / "stderr.txt").open("ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on port {self.port}: {self.log()[-2000:]}")

    def _run_as(self) -> str:
        """The user PgBouncer runs as when started by root: the owner of the server's socket folder (the
        embedded Postgres keeps it private to its own user), else `postgres`."""
        if self.server_host.startswith("/"):
            return pwd.getpwuid(os.stat(self.server_host).st_uid).pw_name
        return "postgres"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown: clients are disconnected
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.5) -> None:
        """Stops it (dropping every client), waits `down_s`, starts it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def log(self) -> str:
        text = ""
        for name in ("stderr.txt", "pgbouncer.log"):
            try:
                text += (self.dir / name).read_text()
            except OSError:
                pass
        return text

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """A command of PgBouncer's admin console (SHOW POOLS, SHOW SERVERS ...)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as conn:
            return conn.execute(command, prepare=False).fetchall()

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
