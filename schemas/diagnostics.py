"""What a command tells its operator when a setting is wrong: one line, the setting, no secret.

Every command (worker, trainer, stack, tools) shows a DSN through `mask_dsn`, and turns a refused
database connection, a taken port or an invalid `RETRAINER_*` variable into one line that says
what happened and what to do. It lives here because it is the one package all of them import;
it imports no Kafka, Faust or database client (database errors are recognised by their SQLSTATE).
"""

from __future__ import annotations

import errno
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

MASK = "***"
DATABASE_SETTING = "RETRAINER_DATABASE_URL"
KAFKA_SETTING = "RETRAINER_KAFKA_BOOTSTRAP"

_KEYWORD_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)([^\s]*)@")


def mask_dsn(dsn: str) -> str:
    """`dsn` with every password in it replaced by ***: the URL's user:password@ part, and a
    `password=` in its query or in libpq's keyword form (`host=… password=…`)."""
    masked = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", dsn)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", masked)


def _password(dsn: str) -> str | None:
    """The password a DSN carries, so that it can be blotted out of any text that echoes it."""
    found = _URL_USERINFO.search(dsn)
    if found:
        return unquote(found.group(2))
    keyword = _KEYWORD_PASSWORD.search(dsn)
    return keyword.group(2).strip("'") if keyword else None


def mask_secrets(text: str, dsn: str | None) -> str:
    """`text` with the DSN's password (raw or URL-decoded) masked wherever it appears."""
    if dsn is None:
        return text
    text = text.replace(dsn, mask_dsn(dsn))
    password = _password(dsn)
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, MASK)
    return text


@dataclass(frozen=True)
class Where:
    """The parts of a DSN a message may show: host, port and database (never the password)."""

    host: str
    port: int
    database: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def where(dsn: str) -> Where | None:
    """Host, port and database of a postgresql:// URL; None when it is not one."""
    try:
        parts = urlsplit(dsn)
        port = parts.port or 5432
    except ValueError:
        return None
    if parts.scheme not in ("postgresql", "postgres"):
        return None
    # Without a database in the URL, PostgreSQL connects to the one named like the user.
    user = unquote(parts.username or "") or "(the login user)"
    return Where(parts.hostname or "localhost", port, parts.path.lstrip("/") or user)


@dataclass(frozen=True)
class Problem:
    """One line for the operator; `transient` when trying again later may succeed."""

    text: str
    transient: bool = False

    def __str__(self) -> str:
        return self.text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# SQLSTATEs a connection attempt meets (PostgreSQL appendix A).
_NO_DATABASE = "3D000"
_AUTHORIZATION = "28000"
_LOGIN_FAILED = "28P01"
_TRANSIENT_STATES = {"57P03", "53300", "53000", "08000", "08001", "08006"}


def database_problem(
    exc: BaseException, dsn: str | None = None, setting: str = DATABASE_SETTING
) -> Problem | None:
    """Why connecting to PostgreSQL failed, as one line naming `setting`; None when `exc` (and
    what caused it) is no database connection failure this function knows."""
    for cause in _chain(exc):
        problem = _database_problem(cause, dsn, setting)
        if problem is not None:
            return problem
    return None


def _database_problem(exc: BaseException, dsn: str | None, setting: str) -> Problem | None:
    at = where(dsn) if dsn is not None else None
    shown = f"{setting}={mask_dsn(dsn)}" if dsn is not None else setting
    server = f"PostgreSQL at {at.address}" if at else "PostgreSQL"
    lines = str(exc).strip().splitlines()
    # The server's or the driver's words; a driver may quote the DSN, so its secret goes first.
    message = mask_secrets(lines[0], dsn) if lines else type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    if state == _NO_DATABASE:
        name = at.database if at else "NAME"
        create = f"createdb -h {at.host} -p {at.port} {name}" if at else "createdb NAME"
        return Problem(
            f"{server} answered, but {message} ({shown}); create it (`{create}`) and run "
            f"`retrainer db migrate`, or point {setting} at an existing database"
        )
    if state == _LOGIN_FAILED:
        return Problem(
            f"{server} refused the login: {message} ({shown}); fix the password in {setting}"
        )
    if state == _AUTHORIZATION:
        return Problem(
            f"{server} refused the login: {message} ({shown}); fix the user in {setting}, or "
            "create that role (or allow it in pg_hba.conf)"
        )
    if isinstance(state, str):
        transient = state in _TRANSIENT_STATES
        return Problem(
            f"{server} answered with an error: {message} [SQLSTATE {state}] ({shown})"
            + ("; it may be starting or overloaded: try again shortly" if transient else ""),
            transient=transient,
        )
    if isinstance(exc, ValueError):  # the driver refused the DSN before connecting
        scheme = dsn.partition("://")[0] if dsn and "://" in dsn else ""
        if dsn is not None and scheme not in ("postgresql", "postgres"):
            return Problem(
                f"{setting} is not a PostgreSQL URL (scheme {scheme or 'missing'!r}: "
                f"{mask_dsn(dsn)}); set it to postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"
            )
        return Problem(
            f"{setting} cannot be used: {message} ({shown}); fix it: "
            "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE[?sslmode=…]"
        )
    if isinstance(exc, socket.gaierror):
        host = at.host if at else "the host"
        return Problem(f"{host!r} is not a known host name ({shown}); fix the host in {setting}")
    if isinstance(exc, OSError):  # refused, unreachable, timed out (TimeoutError is an OSError)
        # asyncpg's own wording ("Connect call failed ('127.0.0.1', 1)") says less than errno's
        reason = os.strerror(exc.errno) if exc.errno else message
        if isinstance(exc, TimeoutError):
            reason = "no answer in time"
        return Problem(
            f"cannot reach {server}: {reason} ({shown}); start it (`retrainer stack up` for the "
            f"local one) or fix {setting}",
            transient=True,
        )
    return None


class _Connection(Protocol):
    async def close(self) -> None: ...


async def probe_database(
    dsn: str,
    connect: Callable[[str], Awaitable[_Connection]],
    setting: str = DATABASE_SETTING,
) -> Problem | None:
    """Connect once with `connect` (the caller's driver, e.g. asyncpg.connect with a timeout):
    None when PostgreSQL takes us, else why not. Failures that are not about the connection
    propagate."""
    try:
        conn = await connect(dsn)
    except Exception as exc:
        problem = database_problem(exc, dsn, setting)
        if problem is None:
            raise
        return problem
    await conn.close()
    return None


def kafka_unreachable(bootstrap: str, reason: str, setting: str = KAFKA_SETTING) -> Problem:
    """The line for a broker that does not answer a metadata request."""
    return Problem(
        f"cannot reach Kafka at {bootstrap} ({reason}); start the broker (`retrainer stack up` "
        f"for the local one) or fix {setting}",
        transient=True,
    )


# -- ports -------------------------------------------------------------------------------------


def listener_pid(port: int) -> int | None:
    """The pid listening on a TCP port, when the OS lets us see it."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except (psutil.AccessDenied, PermissionError):
        return None
    return None


def describe_pid(pid: int | None) -> str:
    """`pid N (its command line)`, or what can be said without it."""
    import psutil

    if pid is None:
        return "another process (run `ss -ltnp` as root to see which)"
    try:
        return f"pid {pid} ({' '.join(psutil.Process(pid).cmdline())[:120]})"
    except psutil.Error:
        return f"pid {pid}"


def port_holder(port: int) -> str:
    """Who listens on `port`, for a message."""
    return describe_pid(listener_pid(port))


def port_problem(
    host: str, port: int, setting: str, host_setting: str | None = None
) -> Problem | None:
    """Why a server cannot listen on host:port, naming `setting` and the process holding the
    port; None when it can (port 0 means "no server" and always can)."""
    if port == 0:
        return None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        named = f" ({host_setting})" if host_setting else ""
        return Problem(f"cannot listen on {host!r}{named}: not a known host or address")
    with socket.socket(family, kind, proto) as probe:
        # Servers set SO_REUSEADDR too, so a port left in TIME_WAIT is free for them and for us.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Problem(
                    f"port {port} is taken by {port_holder(port)}; stop that process or set "
                    f"{setting} to a free port"
                )
            if exc.errno == errno.EACCES:
                return Problem(
                    f"not allowed to listen on port {port}; set {setting} to a port above 1023"
                )
            named = f"; fix {host_setting}" if host_setting else ""
            return Problem(f"cannot listen on {host}:{port}: {exc.strerror}{named}")
    return None


# -- settings ----------------------------------------------------------------------------------


def settings_problem(exc: Any) -> Problem | None:
    """One line for a pydantic ValidationError raised while reading a settings class from the
    environment: each refused field named by its environment variable, its value never shown
    (it may be a secret). None when the error is not about a settings class."""
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings

    if not isinstance(exc, ValidationError):
        return None
    model = _settings_class(BaseSettings, exc.title)
    if model is None:
        return None
    prefix = str(model.model_config.get("env_prefix") or "")
    parts: list[str] = []
    variables: set[str] = set()
    for error in exc.errors(include_url=False, include_input=False):
        reason = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            # A check across fields: its message names the variables itself.
            parts.append(reason)
            continue
        # Nested fields (topics) are read from `<prefix><field>__<subfield>`.
        variable = (prefix + "__".join(str(part) for part in error["loc"])).upper()
        variables.add(variable)
        parts.append(f"{variable} is not valid: {reason}")
    fix = f" (fix or unset {', '.join(sorted(variables))})" if variables else ""
    return Problem("; ".join(parts) + fix)


def _settings_class(base: type[Any], title: str) -> type[Any] | None:
    pending = list(base.__subclasses__())
    while pending:
        candidate = pending.pop()
        if candidate.__name__ == title:
            return candidate
        pending.extend(candidate.__subclasses__())
    return None
