"""`retrainer models promote|rollback` on the real stack: verified, announced, all or nothing.

Scorers follow model-updated, so a registry change and its announcement must agree: a version
whose artifacts fail their sha256 never becomes champion, and a change Kafka did not acknowledge
is not made.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import pytest
from pydantic import SecretStr

from edge.settings import TopicNames
from retrainer.harness import topic_env
from schemas.base import ModelFamily
from schemas.model_updated import ModelUpdated
from tests.conftest import Stack, TopicFactory
from tests.factories import ROOT
from tests.integration.model_versions import add_version, statuses, tamper
from tests.integration.streams.conftest import free_port, read_all
from trainer import admin
from trainer.bootstrap import trainer_codec
from trainer.errors import DependencyUnavailable, RegistryError
from trainer.publisher import Outgoing, Publisher
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration

FRAUD = ModelFamily.EXPENSE_FRAUD


@dataclass(frozen=True)
class Registry:
    """Two expense-fraud versions promoted one after the other (`second` is champion)."""

    settings: TrainerSettings
    first: str
    second: str

    @property
    def dsn(self) -> str:
        return self.settings.dsn

    def announced(self) -> list[str]:
        """The versions on model-updated, oldest first."""
        codec = trainer_codec(self.settings)
        return [
            codec.decode_as(ModelUpdated, value).version
            for _, value in read_all(
                self.settings.kafka_bootstrap, self.settings.topics.model_updated
            )
        ]

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`retrainer models …` as a user runs it, with this registry's settings."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
        environment.update(
            {
                "RETRAINER_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
                "RETRAINER_DATABASE_URL": self.dsn,
                **topic_env(model_updated=self.settings.topics.model_updated),
                "RETRAINER_RETRY_ATTEMPTS": "1",
                "RETRAINER_PUBLISH_TIMEOUT_S": "2",
                "COLUMNS": "80",
                **env,
            }
        )
        return subprocess.run(
            [sys.executable, "-m", "retrainer.cli", "models", *args],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


async def two_champions(stack: Stack, dsn: str, make_topic: TopicFactory) -> Registry:
    settings = TrainerSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=dsn,  # type: ignore[arg-type]
        topics=TopicNames(
            model_updated=make_topic("model-updated", partitions=1),
        ),
        trainer_metrics_port=0,
        retry_attempts=1,
        publish_timeout_s=2,
    )
    first = await add_version(dsn)
    await admin.promote(settings, first)
    second = await add_version(dsn)
    await admin.promote(settings, second)
    return Registry(settings, first, second)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command writes: `error: …`, exit code 2, never a traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


async def test_rollback_to_a_tampered_version_changes_nothing_and_announces_nothing(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    reg = await two_champions(stack, fresh_database_url, make_topic)
    assert reg.announced() == [reg.first, reg.second]
    await tamper(reg.dsn, reg.first)
    unchanged = {reg.first: ("retired", False), reg.second: ("champion", False)}

    refused = await asyncio.to_thread(reg.cli, "rollback", "expense-fraud")
    line = error_line(refused)
    assert f"cannot roll back expense-fraud to {reg.first}" in line, line
    assert "fail their sha256 check" in line, line
    assert f"nothing changed, {reg.second} is still champion" in line, line
    assert await statuses(reg.dsn) == unchanged
    assert reg.announced() == [reg.first, reg.second]

    # Named explicitly, or promoted by hand: refused the same way.
    with pytest.raises(RegistryError, match=f"cannot roll back expense-fraud to {reg.first}"):
        await admin.rollback(reg.settings, FRAUD, to=reg.first)
    with pytest.raises(RegistryError, match=f"cannot promote {reg.first}: artifacts"):
        await admin.promote(reg.settings, reg.first)
    assert await statuses(reg.dsn) == unchanged
    assert reg.announced() == [reg.first, reg.second]

    # Once its bytes are whole again the rollback goes through, registry and announcement alike.
    await tamper(reg.dsn, reg.first, undo=True)
    done = await asyncio.to_thread(reg.cli, "rollback", "expense-fraud")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"expense-fraud: rolled back from {reg.second}; champion is now {reg.first} (published)"
    )
    assert await statuses(reg.dsn) == {
        reg.first: ("champion", False),
        reg.second: ("retired", True),
    }
    assert reg.announced() == [reg.first, reg.second, reg.first]


async def test_a_change_kafka_does_not_acknowledge_is_not_made(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    reg = await two_champions(stack, fresh_database_url, make_topic)
    third = await add_version(reg.dsn)
    before = await statuses(reg.dsn)
    nowhere = reg.settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})

    with pytest.raises(RegistryError, match=f"could not announce {reg.first}") as rolled:
        await admin.rollback(nowhere, FRAUD)
    assert f"nothing changed, {reg.second} is still champion" in str(rolled.value)
    with pytest.raises(RegistryError, match=f"could not announce {third}"):
        await admin.promote(nowhere, third)
    assert await statuses(reg.dsn) == before
    assert reg.announced() == [reg.first, reg.second]


class CommitFailsAfterSending(Publisher):
    """A real publisher; after its first delivery the admin's database session is killed, so the
    registry transaction cannot commit although the announcement went out."""

    def __init__(self, settings: TrainerSettings) -> None:
        super().__init__(settings, trainer_codec(settings))
        self.dsn = settings.dsn
        self.sent = 0

    async def send(self, messages: Sequence[Outgoing]) -> None:
        await super().send(messages)
        self.sent += 1
        if self.sent == 1:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                killed = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND datname = current_database()",
                    admin.APPLICATION_NAME,
                )
            finally:
                await conn.close()
            assert killed == 1


async def test_a_commit_that_fails_after_the_announcement_announces_the_champion_again(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    reg = await two_champions(stack, fresh_database_url, make_topic)
    before = await statuses(reg.dsn)
    publisher = CommitFailsAfterSending(reg.settings)
    try:
        with pytest.raises(RegistryError, match="announced again") as failed:
            await admin.rollback(reg.settings, FRAUD, publisher=publisher)
    finally:
        publisher.close()
    assert f"nothing changed, {reg.second} is still champion" in str(failed.value)
    # Not chained to the database error: the CLI would tell that error instead of this message.
    assert failed.value.__cause__ is None
    assert failed.value.__context__ is None
    assert await statuses(reg.dsn) == before
    # Workers keep the last announcement per family: the champion the registry still names.
    assert reg.announced() == [reg.first, reg.second, reg.first, reg.second]


async def test_models_commands_answer_mistakes_and_outages_in_one_line(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    reg = await two_champions(stack, fresh_database_url, make_topic)
    candidate = await add_version(reg.dsn)
    before = await statuses(reg.dsn)
    unknown = f"auto_retrain_{uuid.uuid4().hex[:8]}"
    mistakes: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (
            lambda: admin.promote(reg.settings, unknown),
            f"no model version '{unknown}' in the registry",
        ),
        (
            lambda: admin.rollback(reg.settings, FRAUD, to=unknown),
            f"no model version '{unknown}' in the registry",
        ),
        (
            lambda: admin.rollback(reg.settings, ModelFamily.DELINQUENCY),
            "delinquency has no champion to roll back",
        ),
        (
            lambda: admin.rollback(reg.settings, FRAUD, to=reg.second),
            f"{reg.second} is already the expense-fraud champion; nothing to roll back",
        ),
        (
            lambda: admin.rollback(reg.settings, FRAUD, to=candidate),
            f"{candidate} was never expense-fraud champion (candidate)",
        ),
    ]
    for call, expected in mistakes:
        with pytest.raises(RegistryError, match=re.escape(expected)):
            await call()

    # The CLI says each in one line (it prints every TrainerError so): a wrong family…
    line = error_line(
        await asyncio.to_thread(reg.cli, "rollback", "delinquency", "--to", reg.first)
    )
    assert line == f"error: {reg.first} is a version of expense-fraud, not delinquency"
    # …and PostgreSQL down, for every models command, without the password.
    down = reg.settings.model_copy(
        update={
            "database_url": SecretStr(
                f"postgresql://postgres:secret@127.0.0.1:{free_port()}/registry"
            )
        }
    )
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: admin.rollback(down, FRAUD),
        lambda: admin.promote(down, reg.first),
        lambda: admin.versions(down),
        lambda: admin.show(down, reg.first),
    ]
    for call in calls:
        with pytest.raises(
            DependencyUnavailable, match=re.escape("cannot use PostgreSQL at 127.0.0.1:")
        ):
            await call()
    result = await asyncio.to_thread(
        reg.cli, "rollback", "expense-fraud", RETRAINER_DATABASE_URL=down.dsn
    )
    line = error_line(result)
    address = down.dsn.split("@")[1].split("/")[0]
    assert f"PostgreSQL at {address}" in line, line
    assert "secret" not in result.stderr
    assert await statuses(reg.dsn) == before
    assert reg.announced() == [reg.first, reg.second]

    # Promoting the champion again is no mistake: nothing changes, and it is announced again.
    again = await asyncio.to_thread(reg.cli, "promote", reg.second)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"expense-fraud: {reg.second} is already champion (published again)"
    )
    assert await statuses(reg.dsn) == before
    assert reg.announced() == [reg.first, reg.second, reg.second]
