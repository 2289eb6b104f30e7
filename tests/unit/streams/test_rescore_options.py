"""`retrainer rescore` refuses bad options before it connects: a clear message, a non-zero exit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer
from typer.testing import CliRunner

from streams.cli import register
from streams.rescore import RescoreError, RescoreOptions


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the retrainer command."""

    register(app)
    return app


def test_options_refuse_an_empty_range_a_missing_topic_and_an_empty_page() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(RescoreError, match="after --from"):
        RescoreOptions(version="v1", topic="t", from_time=at, to_time=at)
    with pytest.raises(RescoreError, match="name the topic"):
        RescoreOptions(version="v1", topic="")
    with pytest.raises(RescoreError, match="at least 1"):
        RescoreOptions(version="v1", topic="t", page_size=0)


def test_the_command_prints_the_reason_and_exits_non_zero() -> None:
    result = CliRunner().invoke(
        _app(),
        [
            "rescore",
            "--version",
            "v1",
            "--topic",
            "t",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-01",
        ],
    )
    assert result.exit_code == 2
    assert "error: --to must be after --from" in result.stderr
