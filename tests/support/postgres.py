"""A throwaway PostgreSQL cluster for tests and CI, from Debian's ``postgresql`` package.

From pytest (conftest imports the fixtures)::

    from tests.support.postgres import postgres_cluster, postgres_url, postgres_database

``postgres_cluster`` (session) starts one cluster, ``postgres_url`` is its DATABASE_URL, and
``postgres_database`` gives each test a fresh, empty database of that cluster.

From a shell (standard library only, so any Python 3.11 works)::

    python -m tests.support.postgres run -- make test         # DATABASE_URL set for the command
    eval "$(python -m tests.support.postgres start /tmp/pg)"  # exports DATABASE_URL; the server keeps running
    python -m tests.support.postgres stop /tmp/pg             # stops it and removes the folder

The cluster lives in one temporary folder: data, log and unix socket. It listens on the socket and
on a free 127.0.0.1 port, trusts every local connection (user ``rollover``), and runs with fsync off:
its data is worth nothing after the run. PostgreSQL refuses to run as root, so as root the server runs
as the ``postgres`` system user (Debian's package creates it; created here when missing).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

try:
    import pytest
except ImportError:         # the command line needs only the standard library
    pytest = None

USER = "rollover"           # the database superuser the tests connect as
DATABASE = "rollover"
OS_USER = os.environ.get("ROLLOVER_PG_OS_USER", "postgres")   # runs the server when we are root
START_TIMEOUT = 60.0        # a loaded shared machine: start took 10 s at load 10
PREFIX = "rollover-pg-"     # temporary folders of clusters that die with their owner process
INSTALL_HINT = "Install it with .ci/postgres-install (Debian's postgresql package)."
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",                     # throwaway data: no flush to disk, ever
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",           # a shared machine: stay small
    "max_connections": "200",           # crash tests run several processes, each with a pool
    "log_min_messages": "warning",
}


def extra_settings() -> dict[str, str]:
    """$ROLLOVER_PG_SETTINGS, e.g. "fsync=on,synchronous_commit=on,full_page_writes=on": a benchmark measures
    commits as a real server makes them durable, not as this throwaway one skips it."""
    pairs = (item.split("=", 1) for item in os.environ.get("ROLLOVER_PG_SETTINGS", "").split(",") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed here."""


def find_bindir() -> Path:
    """Where initdb and postgres are: $ROLLOVER_PG_BINDIR, else Debian's newest /usr/lib/postgresql/N/bin."""
    override = os.environ.get("ROLLOVER_PG_BINDIR")
    candidates = [Path(override)] if override else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    where = override or "/usr/lib/postgresql/*/bin"
    raise PostgresUnavailable(f"PostgreSQL server programs (initdb, postgres) not found in {where}. {INSTALL_HINT}")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


@dataclass
class Cluster:
    """A running cluster in ``folder``; ``url`` is the DATABASE_URL of its ``rollover`` database."""

    folder: Path
    port: int
    bindir: Path
    process: subprocess.Popen | None = None      # None when started detached (shell) or found on disk
    start_seconds: float = 0.0                   # initdb + start, for the curious

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str = "template0") -> str:
        """A new database, a copy of ``template`` (default: empty); returns its URL."""
        # FILE_COPY (PostgreSQL 15+) copies the template's files instead of writing them to the WAL:
        # 0.02 s instead of 0.24 s, and per-test databases are made by the hundred.
        strategy = ["--strategy=file_copy"] if _version_key(self.bindir.parent.name)[0] >= 15 else []
        self._client("createdb", f"--template={template}", *strategy, name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._client("dropdb", "--force", "--if-exists", name)

    def _client(self, program: str, *args: str) -> None:
        # Through the unix socket: no TCP handshake, and it works whoever we are (trust auth).
        _run([str(self.bindir / program), "-h", str(self.folder), "-p", str(self.port), "-U", USER, *args])

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth a checkpoint) and remove the folder."""
        pid = self.process.pid if self.process is not None else _postmaster_pid(self.data)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)     # immediate shutdown: backends end at once
            _wait_gone(pid, self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(folder: Path | None = None, *, detached: bool = False) -> Cluster:
    """initdb a new cluster in ``folder`` (a new temporary folder by default) and start it.

    Not detached (pytest), the server dies with this process (PR_SET_PDEATHSIG): a killed test run
    leaves no server behind. Detached (shell), it runs until ``stop``.
    """
    began = time.monotonic()
    bindir = find_bindir()
    if folder is None:
        _remove_abandoned()
        folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        if not detached:                 # its server dies with us: a later start may clean up after us
            (folder / "owner.pid").write_text(str(os.getpid()))
    elif folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: a cluster's folder is removed when it stops")
    folder.mkdir(parents=True, exist_ok=True)
    owner = _server_owner()
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(folder, 0, bindir)
    try:
        _run([str(bindir / "initdb"), "-D", str(folder / "data"), "--auth=trust", f"--username={USER}",
              "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], owner=owner)
        for attempt in range(3):         # the free port may be taken between our probe and the bind
            cluster = Cluster(folder, _free_port(), bindir)
            try:
                cluster.process = _launch(cluster, owner, detached)
                _wait_ready(cluster)
                break
            except _PortTaken:
                if attempt == 2:
                    raise
        cluster.create_database(DATABASE)
    except BaseException:
        cluster.stop()
        raise
    if detached:
        cluster.process = None
    cluster.start_seconds = time.monotonic() - began
    return cluster


def attach(folder: Path) -> Cluster:
    """The cluster a detached ``start`` left running in ``folder``."""
    lines = (folder / "data" / "postmaster.pid").read_text().splitlines()
    return Cluster(folder, int(lines[3]), find_bindir())


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = start()
    try:
        yield cluster
    finally:
        cluster.stop()


# --- pytest ---------------------------------------------------------------------------------------

_database_numbers = itertools.count(1)

if pytest is not None:
    @pytest.fixture(scope="session")
    def postgres_cluster() -> Iterator[Cluster]:
        """One cluster for the whole session. Without PostgreSQL installed the test is skipped, and
        fails under CI (CI=true): there, a missing server is a broken set-up, not an optional extra."""
        try:
            cluster = start()
        except PostgresUnavailable as error:
            if os.environ.get("CI"):
                pytest.fail(str(error), pytrace=False)
            pytest.skip(str(error))
        try:
            yield cluster
        finally:
            cluster.stop()

    @pytest.fixture(scope="session")
    def postgres_url(postgres_cluster: Cluster) -> str:
        """DATABASE_URL of the session cluster's ``rollover`` database (shared by the session's tests)."""
        return postgres_cluster.url()

    @pytest.fixture
    def postgres_database(postgres_cluster: Cluster, request) -> Iterator[str]:
        """A fresh, empty database for one test; its URL."""
        name = f"t{next(_database_numbers)}_" + re.sub(r"\W", "_", request.node.name.lower())[:40]
        url = postgres_cluster.create_database(name)
        try:
            yield url
        finally:
            postgres_cluster.drop_database(name)


# --- internals ------------------------------------------------------------------------------------

class _PortTaken(RuntimeError):
    pass


def _server_owner() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
              "--shell", "/usr/sbin/nologin", OS_USER])
        return pwd.getpwnam(OS_USER)


def _run(command: list[str], owner: pwd.struct_passwd | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **_as(owner))
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def _as(owner: pwd.struct_passwd | None) -> dict:
    if owner is None:
        return {}
    # Root's HOME and our working folder may be closed to the server account: give it places it may read.
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "cwd": tempfile.gettempdir(),
            "env": {**os.environ, "HOME": tempfile.gettempdir()}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(cluster: Cluster, owner: pwd.struct_passwd | None, detached: bool) -> subprocess.Popen:
    settings = {**SERVER_SETTINGS, **extra_settings(), "port": str(cluster.port),
                "unix_socket_directories": str(cluster.folder)}
    command = [str(cluster.bindir / "postgres"), "-D", str(cluster.data)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with open(cluster.log, "ab") as log:
        if owner is not None:
            os.chown(cluster.log, owner.pw_uid, owner.pw_gid)
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=detached, preexec_fn=None if detached else _die_with_parent(),
                                **_as(owner))


def _die_with_parent():
    """A preexec_fn: the kernel sends the server SIGQUIT (immediate shutdown) when this process dies.

    Popen calls it in the child after the switch to the server account (a change of identity clears the
    setting, so it must come after); prctl is looked up here, before the fork.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGQUIT)      # 1 = PR_SET_PDEATHSIG


def _wait_ready(cluster: Cluster) -> None:
    """Until postmaster.pid says "ready" (what pg_ctl -w waits for); the log tail if the server died."""
    deadline = time.monotonic() + START_TIMEOUT
    pid_file = cluster.data / "postmaster.pid"
    while time.monotonic() < deadline:
        if cluster.process.poll() is not None:
            log = cluster.log.read_text(errors="replace")
            if "could not bind" in log or "Address already in use" in log:
                raise _PortTaken(log)
            raise RuntimeError(f"postgres exited ({cluster.process.returncode}) at start:\n{log[-2000:]}")
        with contextlib.suppress(FileNotFoundError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.02)
    cluster.process.kill()
    raise RuntimeError(f"postgres not ready after {START_TIMEOUT:.0f} s:\n{cluster.log.read_text()[-2000:]}")


def _remove_abandoned() -> None:
    """Remove the folders of clusters whose owner was killed (their server died with it, the files stayed)."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue                     # not ours to judge (being created, or started detached)
        server = _postmaster_pid(folder / "data")
        if not _alive(owner) and (server is None or not _alive(server)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"                  # a zombie has exited; only its parent has not collected it yet


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _wait_gone(pid: int, process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if process is not None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.postgres",
                                     description="A throwaway PostgreSQL cluster on a free 127.0.0.1 port.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start a cluster, run COMMAND with DATABASE_URL set, stop it")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    start_ = commands.add_parser("start", help="start a cluster in FOLDER and print `export DATABASE_URL=…`")
    start_.add_argument("folder", type=Path)
    stop = commands.add_parser("stop", help="stop the cluster in FOLDER and remove FOLDER")
    stop.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run_command(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
        if args.command == "start":
            cluster = start(args.folder, detached=True)
            print(f"export DATABASE_URL={cluster.url()}")
            print(f"started in {cluster.start_seconds:.2f} s (stop: python -m tests.support.postgres stop "
                  f"{args.folder})", file=sys.stderr)
            return 0
        attach(args.folder).stop()
        return 0
    except (PostgresUnavailable, FileExistsError) as error:
        print(error, file=sys.stderr)
        return 2


def _run_command(command: list[str]) -> int:
    if not command:
        print("run: no command given (python -m tests.support.postgres run -- COMMAND …)", file=sys.stderr)
        return 2
    with running_cluster() as cluster:
        print(f"PostgreSQL on 127.0.0.1:{cluster.port}, started in {cluster.start_seconds:.2f} s", file=sys.stderr)
        return subprocess.run(command, env={**os.environ, "DATABASE_URL": cluster.url()}).returncode


if __name__ == "__main__":
    sys.exit(main())
