"""Each way the local stack can fail to start says what went wrong and what to do."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from retrainer.stack.errors import PortTaken, ToolMissing
from retrainer.stack.kafka import LocalKafka
from retrainer.stack.settings import StackSettings


def _fake_java(folder: Path, version_line: str) -> None:
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def test_missing_java_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing) as caught:
        LocalKafka.java_major()
    assert "java was not found" in caught.value.message
    assert "openjdk-17" in caught.value.hint


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_java(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing) as caught:
        LocalKafka.java_major()
    assert "Java 11 is too old" in caught.value.message


def test_java_8_version_style_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_java(tmp_path, 'java version "1.8.0_392"')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="Java 8 is too old"):
        LocalKafka.java_major()


def test_current_java_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_java(tmp_path, 'openjdk version "21.0.4" 2024-07-16')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert LocalKafka.java_major() == 21


def test_missing_maven_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    kafka = LocalKafka(StackSettings(home=tmp_path / "home"))
    with pytest.raises(ToolMissing) as caught:
        kafka.resolve_jars()
    assert "mvn was not found" in caught.value.message
    assert "apt-get install maven" in caught.value.hint


def test_a_taken_port_names_the_process(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = StackSettings(home=tmp_path, kafka_port=port, kafka_controller_port=port + 1)
        with pytest.raises(PortTaken) as caught:
            LocalKafka(settings).start()
    assert f"127.0.0.1:{port} is taken by" in caught.value.message
    assert "pid" in caught.value.message
    assert "RETRAINER_KAFKA_PORT" in caught.value.hint


def test_a_cluster_id_never_reads_as_an_option() -> None:
    from retrainer.stack.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
