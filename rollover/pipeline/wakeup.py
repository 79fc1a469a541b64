"""Waking workers the moment an event is recorded, also when they run in another process.

``serve`` wakes its worker thread in-process. In the Procfile setup the web process (gunicorn) and the
``worker`` processes share only the database, and SQLite has no notifications: without a poke a worker
finds a new event only at its next poll. So each listening worker binds a Unix datagram socket in a folder
derived from the database path, and the web process sends one byte to every socket there after the event's
commit; it looks at the folder once a second (``TARGETS_TTL``), not per event. Polling stays as the fallback:
a poke lost to a full socket buffer, or not sent to a worker started since the last look, costs at most one
poll interval, never an event.

With PostgreSQL, whose workers may run on other hosts, the database's own notifications take the same
role through the same two methods: ``NOTIFY`` in ``notify``, ``LISTEN`` in ``listen``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

from rollover.settings import redact_url

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 100          # AF_UNIX paths are limited to 107 bytes on Linux (103 on macOS)
SOCKET_SUFFIX = ".sock"
TARGETS_TTL = 1.0              # seconds a look at the sockets' folder serves the events that follow


class WakeChannel(Protocol):
    def notify(self) -> None:
        """Poke every listening worker; never raises, never blocks."""

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_wake`` (from a background thread) for each poke; returns the function that stops listening."""

    def close(self) -> None:
        """Release what ``notify`` keeps open (a socket, a database connection)."""


class SocketWakeChannel:
    """Unix datagram sockets in one folder: one per listening worker process, poked by the web processes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._sender: socket.socket | None = None
        self._targets: tuple[str, ...] = ()   # what notify pokes until the next look
        self._listing: tuple[str, ...] = ()   # the folder's sockets as last listed, at mtime _seen_mtime
        self._seen_mtime: int | None = None
        self._looked_until = 0.0          # monotonic time until which the last look at the folder is reused
        self._lock = threading.Lock()

    # --- the web side ------------------------------------------------------------------------

    def notify(self) -> None:
        for target in self._current_targets():
            self._poke(target)

    def _current_targets(self) -> tuple[str, ...]:
        """The listening workers' sockets, looked up at most every TARGETS_TTL seconds: even one lstat per
        event cost the acknowledgement ~0.07 ms at p50 and ~0.2 ms at p99 under gunicorn (a system call on an
        idle server is slow). A worker that starts meanwhile finds its first events by polling."""
        now = time.monotonic()
        with self._lock:
            if now < self._looked_until:
                return self._targets
            self._targets = self._look()
            self._looked_until = now + TARGETS_TTL
            return self._targets

    def _look(self) -> tuple[str, ...]:
        try:
            status = os.lstat(self.folder)
            if not _is_private(status):
                return ()   # another user's folder (or a symlink) must not tell us where to send, nor what to unlink
            # The folder's mtime changes when a worker comes or goes: list it only then.
            if status.st_mtime_ns != self._seen_mtime:
                self._listing = tuple(str(self.folder / name) for name in os.listdir(self.folder)
                                      if name.endswith(SOCKET_SUFFIX))
                self._seen_mtime = status.st_mtime_ns
            return self._listing
        except OSError:
            return ()   # no worker listens (yet): polling covers it

    def _poke(self, target: str) -> None:
        try:
            self._sending_socket().sendto(b"!", target)
        except BlockingIOError:
            pass   # its buffer is full of pokes: it is awake already
        except OSError as error:
            if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
                self._forget_dead(target)   # a worker that died without cleaning up (kill -9), or left
            else:
                log.debug("could not wake the worker at %s: %s", target, error)

    def _forget_dead(self, target: str) -> None:
        with self._lock:
            self._looked_until = 0.0   # the next event looks at the folder again
        try:
            private = is_private_folder(self.folder)   # checked again now: the look may be a second old
        except OSError:
            return   # the folder itself is gone: no socket left to unlink
        if private:
            self._forget(target)

    def _sending_socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def _forget(self, target: str) -> None:
        try:
            os.unlink(target)
        except OSError:
            pass

    # --- the worker side ---------------------------------------------------------------------

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not is_private_folder(self.folder):
            log.warning("%s is not a private folder of this user (a symlink, another owner or open to others): "
                        "workers are not woken across processes, they poll", self.folder)
            return lambda: None
        path = self.folder / f"w{os.getpid()}-{secrets.token_hex(3)}{SOCKET_SUFFIX}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(str(path))
        stopped = threading.Event()

        def receive() -> None:
            while not stopped.is_set():
                try:
                    receiver.recv(64)
                except OSError:
                    return   # closed by stop()
                on_wake()

        def stop() -> None:
            stopped.set()
            self._forget(str(path))
            # Closing alone does not interrupt a recv blocked in another thread; shutting down does.
            try:
                receiver.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            receiver.close()

        threading.Thread(target=receive, name="rollover-wake", daemon=True).start()
        return stop

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class PostgresWakeChannel:
    """PostgreSQL's LISTEN/NOTIFY: pokes every worker of the database, on any host."""

    CHANNEL = "rollover_events"

    def __init__(self, url: str):
        self.url = url
        self._connection = None
        self._lock = threading.Lock()

    def notify(self) -> None:
        try:
            with self._lock:
                if self._connection is None or self._connection.closed:
                    self._connection = _pg_connect(self.url)
                self._connection.execute("SELECT pg_notify(%s, '')", [self.CHANNEL])
        except Exception as error:   # the poke is an optimisation: polling still finds the event
            log.debug("could not notify the workers: %s", type(error).__name__)
            self.close()

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        stopped = threading.Event()

        def receive() -> None:
            while not stopped.is_set():
                try:
                    with _pg_connect(self.url) as connection:
                        connection.execute(f"LISTEN {self.CHANNEL}")
                        on_wake()    # pokes sent while (re)connecting were missed: look once
                        while not stopped.is_set():
                            for _ in connection.notifies(timeout=1.0):
                                on_wake()
                except Exception as error:
                    log.warning("listening for new events failed (%s); polling meanwhile", type(error).__name__)
                    stopped.wait(5)

        threading.Thread(target=receive, name="rollover-wake", daemon=True).start()
        return stopped.set

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as error:   # a connection already broken: nothing left to release
                log.debug("closing the notify connection failed: %s", type(error).__name__)


def _pg_connect(url: str):
    import psycopg
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


class NoWakeChannel:
    """For databases no other process can see (``:memory:``): in-process wake-ups only."""

    def notify(self) -> None:
        pass

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def close(self) -> None:
        pass


def wake_folder(database_path: str) -> Path:
    """The folder of the worker sockets of one database, the same for every process on the host."""
    if "://" in database_path:            # a database server: named after its URL
        return _short_folder(database_path)
    database = Path(database_path).resolve()
    folder = database.parent / f".{database.name}.wake"
    if len(str(folder)) + 24 <= MAX_SOCKET_PATH:
        return folder
    # A deep database path would exceed the socket path limit: use a short folder named after it instead.
    return _short_folder(str(database))


def is_private_folder(folder: Path) -> bool:
    """The folder itself (not a symlink), owned by this user and closed to others (the shared /tmp)."""
    return _is_private(os.lstat(folder))


def _is_private(status: os.stat_result) -> bool:
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o077


def _short_folder(name: str) -> Path:
    # Named after the URL without its password: the folder's name is visible to every user of the host.
    digest = hashlib.sha256(redact_url(name).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rollover-wake-{digest}"


def wake_channel_for(database_path: str) -> WakeChannel:
    """The wake-up channel of a database: PostgreSQL's LISTEN/NOTIFY (workers on any host), or the sockets
    of this host's workers beside a SQLite file."""
    if database_path == ":memory:":
        return NoWakeChannel()
    if database_path.startswith(("postgresql://", "postgres://")):
        return PostgresWakeChannel(database_path)
    return SocketWakeChannel(wake_folder(database_path))
