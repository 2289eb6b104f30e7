"""The stack manager against the real services: reuse, status, and an unreachable Maven Central."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from retrainer.stack import manager
from retrainer.stack.errors import DownloadFailed
from retrainer.stack.kafka import LocalKafka
from retrainer.stack.settings import StackSettings
from tests.conftest import Stack


def test_second_up_reuses_the_running_services(stack: Stack) -> None:
    before = manager.status(StackSettings())
    result = manager.up(StackSettings())
    after = manager.status(StackSettings())
    assert not result.kafka_started
    assert not result.postgres_started
    for name in ("kafka", "postgres"):
        assert before["services"][name].get("pid") == after["services"][name].get("pid")


def test_status_json_parses_and_names_the_addresses(stack: Stack) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(out.stdout)
    assert report["kafka_bootstrap"] == stack.bootstrap
    assert report["database_url"] == stack.dsn
    assert report["healthy"] is True
    assert {name: svc["state"] for name, svc in report["services"].items()} in (
        {"kafka": "running", "postgres": "running"},
        {"kafka": "external", "postgres": "running"},
        {"kafka": "running", "postgres": "external"},
        {"kafka": "external", "postgres": "external"},
    )


def test_unreachable_maven_central_is_reported(tmp_path: Path) -> None:
    # A mirror on a closed loopback port stands where Maven Central would be.
    settings_xml = tmp_path / "settings.xml"
    settings_xml.write_text(
        "<settings><mirrors><mirror><id>closed</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    kafka = LocalKafka(StackSettings(home=tmp_path / "home", maven_settings=settings_xml))
    with pytest.raises(DownloadFailed) as caught:
        kafka.resolve_jars()
    assert "Maven Central is unreachable" in caught.value.message
    assert "proxy" in caught.value.hint
    assert not kafka.jars_cached()
