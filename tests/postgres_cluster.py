"""Provide a real PostgreSQL server for tests: a given URL or a throwaway cluster."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

EXTERNAL_URL_ENV = "BUILDCOORD_TEST_PG_URL"
SERVICE_USER = "postgres"
DATABASE_PREFIX = "bc_"
START_ATTEMPTS = 3
START_TIMEOUT_SECONDS = 60
LOG_TAIL_LINES = 40
MAX_SOCKET_DIR_LENGTH = 80
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c max_connections=200"
)


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server could be found or started for the tests."""


@dataclass(frozen=True)
class PostgresServer:
    """A reachable server; `url` is a plain libpq URL to its maintenance database."""

    url: str

    @property
    def port(self) -> int:
        """Return the TCP port of the server."""
        return urlsplit(self.url).port or 5432

    def url_for(self, dbname: str) -> str:
        """Return the plain URL of database `dbname` on this server."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """Open an autocommit connection to the maintenance database."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def create_database(self) -> str:
        """Create a fresh empty database with a random name and return its name."""
        dbname = f"{DATABASE_PREFIX}{secrets.token_hex(8)}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return dbname

    def drop_database(self, dbname: str) -> None:
        """Drop database `dbname`, terminating any connections still open to it."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """Create a fresh database, yield its plain URL, and drop it afterwards."""
        dbname = self.create_database()
        try:
            yield self.url_for(dbname)
        finally:
            self.drop_database(dbname)


def plain_url(url: str) -> str:
    """Strip a SQLAlchemy driver suffix (`postgresql+psycopg://` -> `postgresql://`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise PostgresUnavailableError(f"{EXTERNAL_URL_ENV} is not a URL: {url!r}")
    return f"{scheme.split('+', 1)[0]}://{rest}"


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries: `pg_config --bindir`, else /usr/lib/postgresql."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    candidates.extend(Path(p) for p in versioned)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    searched = ", ".join(str(c) for c in candidates) or "nothing (no pg_config on PATH)"
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; searched "
        f"{searched}. Install the server (e.g. apt-get install postgresql) or set "
        f"{EXTERNAL_URL_ENV}=postgresql://user@host:port/postgres."
    )


def _version_key(name: str) -> tuple[int, ...]:
    """Sort key for directory names like `15` or `9.6`."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def free_port() -> int:
    """Ask the kernel for a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayCluster:
    """A PostgreSQL cluster initialised in a temporary directory, deleted on stop."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_service_user = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="buildcoord-pg-", dir=_short_tmp_dir()))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port: int | None = None

    def _command(self, tool: str, *args: str) -> list[str]:
        """Build the command line for a server tool, dropping root privileges if needed."""
        argv = [str(self.bindir / tool), *args]
        if self.as_service_user:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            return [runuser, "-u", SERVICE_USER, "--", *argv]
        return argv

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server tool from inside the cluster directory and capture its output."""
        return subprocess.run(
            self._command(tool, *args),
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def _prepare_directory(self) -> None:
        """Make the temp dir traversable and, as root, owned by the service user."""
        self.root.chmod(0o755)
        if not self.as_service_user:
            return
        try:
            account = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise PostgresUnavailableError(
                f"running as root, but there is no {SERVICE_USER!r} user to run initdb/postgres "
                f"as (initdb refuses root); create it or set {EXTERNAL_URL_ENV}"
            ) from None
        os.chown(self.root, account.pw_uid, account.pw_gid)

    def start(self) -> PostgresServer:
        """Initialise the cluster and start the server on a free port."""
        self._prepare_directory()
        init = self._run(
            "initdb",
            "-D", str(self.datadir),
            "-U", SERVICE_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise PostgresUnavailableError(
                f"initdb failed (exit {init.returncode}):\n{init.stdout}\n{init.stderr}"
            )
        failures: list[str] = []
        for _ in range(START_ATTEMPTS):
            port = free_port()
            started = self._run(
                "pg_ctl", "start", "-w",
                "-t", str(START_TIMEOUT_SECONDS),
                "-D", str(self.datadir),
                "-l", str(self.logfile),
                "-o", f"-k {self.root} -p {port} {SERVER_OPTIONS}",
            )  # fmt: skip
            if started.returncode == 0:
                self.port = port
                server = PostgresServer(f"postgresql://{SERVICE_USER}@127.0.0.1:{port}/postgres")
                self._check_reachable(server)
                return server
            failures.append(f"port {port}: exit {started.returncode}: {started.stderr.strip()}")
            self._stop_server()
        raise PostgresUnavailableError(
            "pg_ctl could not start the throwaway PostgreSQL cluster:\n"
            + "\n".join(failures)
            + f"\n--- last lines of {self.logfile} ---\n{self.log_tail()}"
        )

    def _check_reachable(self, server: PostgresServer) -> None:
        """Fail clearly if the started server does not accept a TCP connection."""
        try:
            with server.connect() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise PostgresUnavailableError(
                f"PostgreSQL started but {server.url} refuses connections: {exc}\n"
                f"--- last lines of {self.logfile} ---\n{self.log_tail()}"
            ) from exc

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the server log, or a note that there is none."""
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def _stop_server(self) -> None:
        """Stop the postmaster named in the data dir's pid file, if any."""
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.datadir))

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the running server (pg_ctl stop -m ``mode``), keeping the data directory so
        that ``start_again`` brings it back; for tests that take the database away."""
        stopped = self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.datadir))
        if stopped.returncode != 0:
            raise PostgresUnavailableError(
                f"pg_ctl stop -m {mode} failed (exit {stopped.returncode}): "
                f"{stopped.stderr.strip()}\n--- last lines of {self.logfile} ---\n"
                f"{self.log_tail()}"
            )

    def start_again(self) -> PostgresServer:
        """Start the server stopped by ``stop_server`` on the same port and data directory."""
        if self.port is None:
            raise PostgresUnavailableError("the throwaway cluster was never started")
        started = self._run(
            "pg_ctl", "start", "-w",
            "-t", str(START_TIMEOUT_SECONDS),
            "-D", str(self.datadir),
            "-l", str(self.logfile),
            "-o", f"-k {self.root} -p {self.port} {SERVER_OPTIONS}",
        )  # fmt: skip
        if started.returncode != 0:
            raise PostgresUnavailableError(
                f"pg_ctl could not start the throwaway cluster again on port {self.port} "
                f"(exit {started.returncode}): {started.stderr.strip()}\n"
                f"--- last lines of {self.logfile} ---\n{self.log_tail()}"
            )
        server = PostgresServer(f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/postgres")
        self._check_reachable(server)
        return server

    def stop(self) -> None:
        """Stop the server and delete the cluster directory; safe to call twice."""
        try:
            self._stop_server()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _short_tmp_dir() -> str | None:
    """Pick /tmp when $TMPDIR is too long for a unix socket path (limit ~107 bytes)."""
    if len(tempfile.gettempdir()) > MAX_SOCKET_DIR_LENGTH - 40 and os.path.isdir("/tmp"):
        return "/tmp"
    return None


def _external_server(url: str) -> PostgresServer:
    """Wrap and check a server given by URL."""
    server = PostgresServer(plain_url(url))
    try:
        with server.connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise PostgresUnavailableError(
            f"{EXTERNAL_URL_ENV}={url} is set but the server refuses connections: {exc}"
        ) from exc
    return server


@contextmanager
def postgres_server(environ: Mapping[str, str] | None = None) -> Iterator[PostgresServer]:
    """Yield the server from $BUILDCOORD_TEST_PG_URL, or a throwaway cluster stopped on exit."""
    env = dict(environ) if environ is not None else dict(os.environ)
    external = env.get(EXTERNAL_URL_ENV, "").strip()
    if external:
        yield _external_server(external)
        return
    cluster = ThrowawayCluster(find_bindir())
    atexit.register(cluster.stop)  # backstop if the session dies before teardown
    try:
        with _sigterm_as_keyboard_interrupt():
            yield cluster.start()
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)


@contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so teardown still stops the cluster."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"received signal {signum}")

    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not signal.SIG_DFL:
            previous = None  # someone else handles SIGTERM: leave it alone
        else:
            signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not in the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
