"""LISTEN for new work and for cancellations, so an idle worker starts a job inserted by plain SQL within
milliseconds. Polling in the worker loop is the fallback when the listener is down, and the only way
behind a pooler in transaction mode without ENCHANT_DIRECT_DATABASE_URL (the worker then starts no
listener).

The workers of one host share one LISTEN session (the connection budget, README "Running a fleet"): they
meet in a folder per user and database (`host_folder`), each with a Unix datagram socket; whoever holds
the folder's flock LISTENs and relays every notification to the others' sockets. When the holder dies,
the kernel frees its lock and the next worker to try (every STOP_CHECK_S) takes over. Any trouble with the
folder or the sockets: one warning, then the worker LISTENs on its own connection as before."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Collection
from pathlib import Path

from enchant_worker.db.connection import Database
from enchant_worker.sql import q

log = logging.getLogger(__name__)

JOBS_CHANNEL = "enchant_jobs"  # the names the triggers of migrations 0001 and 0010 notify
CANCEL_CHANNEL = "enchant_cancel"
WAKE = "wake"  # relayed by a new holder: notifications may have been missed while nobody listened
STOP_CHECK_S = 0.1  # how often the listener looks up from its socket (to stop, or to take the lock over)


def host_folder(session_url: str) -> Path:
    """Where this user's workers of one database meet on this host (the URL hashed: it may hold a password)."""
    key = hashlib.sha256(session_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"enchant-{os.getuid()}" / key


class Listener:
    def __init__(
        self,
        db: Database,
        job_types: Collection[str],
        on_work: Callable[[], None],
        on_cancel: Callable[[uuid.UUID], None],
        *,
        host_dir: Path | None = None,
    ):
        self.db = db
        self.job_types = set(job_types)
        self.on_work = on_work
        self.on_cancel = on_cancel
        self.host_dir = host_dir
        self.ready = threading.Event()
        self.leading = False  # this worker holds the LISTEN session (its own, or the host's)
        self._relay: HostRelay | None = None
        self._delay = 0.5
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        self.ready.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        if self.host_dir is not None:
            try:
                self._relay = HostRelay(self.host_dir)
            except OSError as exc:
                log.warning("cannot share the host's listener (%s); listening on this worker's own", exc)
        try:
            while not self._stop.is_set():
                if self._follow():
                    continue
                try:
                    self._listen()
                except Exception as exc:  # the database away, or anything else: never let this thread die
                    self.ready.clear()
                    self.leading = False
                    if self._relay is not None:
                        self._relay.resign()  # another worker of the host may reach the database
                    log.warning(
                        "listener lost its connection (%s); polling until it is back",
                        str(exc).strip() or type(exc).__name__,
                    )
                    self._stop.wait(self._delay)
                    self._delay = min(self._delay * 2, 10.0)
        finally:
            if self._relay is not None:
                self._relay.close()

    def _follow(self) -> bool:
        """While another worker of the host holds the lock: one wait for its relay. False: lead instead."""
        relay = self._relay
        if relay is None:
            return False
        try:
            if relay.try_lead():
                return False
            self.ready.set()
            note = relay.receive(STOP_CHECK_S)
        except OSError as exc:
            log.warning("the host's listener failed (%s); listening on this worker's own", exc)
            relay.close()
            self._relay = None
            return False
        if note is not None:
            self._dispatch(*note)
        return True

    def _listen(self) -> None:
        with self.db.open_session() as conn:  # the server itself: a pooler cannot LISTEN
            conn.execute(q("listen_for_work"))
            self.ready.set()
            self.leading = True
            self._delay = 0.5
            self.on_work()  # anything inserted while we were not listening
            self._relay_note(WAKE, "")
            while not self._stop.is_set():
                for note in conn.notifies(timeout=STOP_CHECK_S):
                    self._dispatch(note.channel, note.payload)
                    self._relay_note(note.channel, note.payload)
        self.leading = False

    def _relay_note(self, channel: str, payload: str) -> None:
        if self._relay is None:
            return
        try:
            self._relay.send(channel, payload)
        except OSError as exc:  # the folder gone (a tmp cleaner): the others take over on their own
            log.warning("cannot relay wake-ups to this host's workers (%s); they will listen themselves", exc)
            self._relay.close()
            self._relay = None

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == JOBS_CHANNEL:
            if payload in self.job_types:
                self.on_work()
        elif channel == WAKE:
            self.on_work()
        elif channel == CANCEL_CHANNEL:
            try:
                self.on_cancel(uuid.UUID(payload))
            except ValueError:
                pass


class HostRelay:
    """This worker's place in the host folder: a datagram socket to receive on, and the lock that makes
    one of the host's workers the one that LISTENs."""

    def __init__(self, folder: Path):
        for path in (folder.parent, folder):
            path.mkdir(mode=0o700, exist_ok=True)
            info = path.lstat()
            # Anyone who can write here could cancel this user's jobs with a datagram.
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise PermissionError(f"{path} must be a folder of this user's that nobody else can open")
        self.folder = folder
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self._in = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)  # a peer with a full queue is awake already: never wait on it
        self._in.bind(str(self.path))
        self._lock: int | None = None

    def try_lead(self) -> bool:
        """Holds (or takes) the host's lock; False while another worker holds it."""
        if self._lock is None:
            fd = os.open(self.folder / "listener.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._lock = fd
        return True

    def resign(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # frees the flock
            self._lock = None

    def receive(self, timeout: float) -> tuple[str, str] | None:
        self._in.settimeout(timeout)
        try:
            data = self._in.recv(4096)
        except TimeoutError:
            return None
        channel, _, payload = data.decode(errors="replace").partition("\n")
        return channel, payload

    def send(self, channel: str, payload: str) -> None:
        data = f"{channel}\n{payload}".encode()
        with os.scandir(self.folder) as entries:
            peers = [e.path for e in entries if e.name.endswith(".sock") and e.path != str(self.path)]
        for peer in peers:
            try:
                self._out.sendto(data, peer)
            except (ConnectionRefusedError, FileNotFoundError):
                Path(peer).unlink(missing_ok=True)  # its worker died without cleaning up
            except OSError:
                pass  # a full queue (that worker is woken already), or a file that is not a peer

    def close(self) -> None:
        self.resign()
        self._in.close()
        self._out.close()
        self.path.unlink(missing_ok=True)
