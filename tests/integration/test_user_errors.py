"""What a user gets wrong ends in one line that names the setting and what to do: no traceback,
no password, exit code 2. Run as a user runs it: the `retrainer` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from tests.conftest import Stack
from tests.factories import API_TOKEN, ROOT

pytestmark = pytest.mark.integration

PASSWORD = "not-for-your-eyes"


def retrainer(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    assert PASSWORD not in text, text
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def with_database(stack: Stack, user: str, database: str, scheme: str = "postgresql") -> str:
    where = stack.dsn.split("@", 1)[1].rsplit("/", 1)[0]
    return f"{scheme}://{user}:{PASSWORD}@{where}/{database}"


def test_version() -> None:
    result = retrainer("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"retrainer {version('retrainer')}"


@pytest.mark.parametrize(
    ("user", "database", "scheme", "says"),
    [
        ("postgres", "no_such_database", "postgresql", 'database "no_such_database" does not'),
        ("no_such_role", "retrainer", "postgresql", 'role "no_such_role" does not exist'),
        ("postgres", "retrainer", "mysql", "is not a PostgreSQL URL"),
    ],
)
def test_db_migrate_names_the_mistake_and_masks_the_password(
    stack: Stack, user: str, database: str, scheme: str, says: str
) -> None:
    url = with_database(stack, user, database, scheme)
    line = one_line_error(
        retrainer("db", "migrate", RETRAINER_DATABASE_URL=url), "RETRAINER_DATABASE_URL", says
    )
    assert ":***@" in line


def test_an_invalid_setting_names_its_variable() -> None:
    one_line_error(
        retrainer("worker", RETRAINER_WEB_PORT="abc", RETRAINER_API_TOKEN=API_TOKEN),
        "RETRAINER_WEB_PORT",
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))  # noqa: S104 - where the worker would listen
        held.listen()
        yield held.getsockname()[1]


def test_a_taken_web_port_names_the_port_the_setting_and_the_holder(
    stack: Stack, taken_port: int
) -> None:
    line = one_line_error(
        retrainer(
            "worker",
            RETRAINER_WEB_PORT=str(taken_port),
            RETRAINER_API_TOKEN=API_TOKEN,
            RETRAINER_KAFKA_BOOTSTRAP=stack.bootstrap,
            RETRAINER_DATABASE_URL=stack.dsn,
        ),
        "RETRAINER_WEB_PORT",
        str(taken_port),
    )
    assert f"pid {os.getpid()}" in line


def test_the_trainer_without_a_broker_says_so(stack: Stack) -> None:
    one_line_error(
        retrainer(
            "trainer",
            RETRAINER_KAFKA_BOOTSTRAP="127.0.0.1:1",
            RETRAINER_DATABASE_URL=stack.dsn,
            RETRAINER_TRAINER_METRICS_PORT="0",
        ),
        "cannot reach Kafka at 127.0.0.1:1",
        "RETRAINER_KAFKA_BOOTSTRAP",
    )
