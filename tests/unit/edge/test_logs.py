"""One log format for both services, secrets masked in either."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from pydantic import ValidationError

from edge.logs import LogFormat, LogLevel, LogSettings, configure
from schemas.diagnostics import mask_dsn, settings_problem
from tests.factories import ROOT


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:s3cr3t@db:5432/r", "postgresql://app:***@db:5432/r"),
        ("cannot reach postgres://u:p%40ss@h/d now", "cannot reach postgres://u:***@h/d now"),
        ("sasl password=hunter2 then", "sasl password=*** then"),
        ("postgresql://app@db/r", "postgresql://app@db/r"),
    ],
)
def test_credentials_are_masked(text: str, shown: str) -> None:
    assert mask_dsn(text) == shown


def _run(env: dict[str, str], code: str) -> str:
    program = (
        "from edge.logs import configure; import logging; configure()\n"
        "log = logging.getLogger('retrainer.test')\n" + code
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stderr


def test_json_logs_are_one_object_per_line_with_the_secret_masked() -> None:
    err = _run(
        {"RETRAINER_LOG_FORMAT": "json"},
        "log.info('connecting to %s', 'postgresql://u:topsecret@h/d')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('failed')\n",
    )
    first, second = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert first["level"] == "INFO"
    assert first["logger"] == "retrainer.test"
    assert first["message"] == "connecting to postgresql://u:***@h/d"
    assert "ZeroDivisionError" in second["exception"]
    assert "topsecret" not in err


def test_the_level_setting_drops_what_is_below_it() -> None:
    err = _run({"RETRAINER_LOG_LEVEL": "WARNING"}, "log.info('quiet'); log.warning('loud')\n")
    assert "loud" in err
    assert "quiet" not in err


def test_text_is_the_default() -> None:
    settings = LogSettings()
    assert settings.log_format is LogFormat.TEXT
    assert settings.log_level is LogLevel.INFO
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure(settings)
        assert len(root.handlers) == 1
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_wrong_format_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError) as caught:
        LogSettings()
    problem = settings_problem(caught.value)
    assert problem is not None
    assert "RETRAINER_LOG_FORMAT" in str(problem)
