"""The service harness: the environment that renames topics, the in-process settings, and how a
service process is stopped (real child processes, no Kafka or PostgreSQL needed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.settings import TopicNames
from retrainer.harness import TOPICS, Scope, Service, ServiceError, Services, topic_env
from retrainer.harness.settings import streams_settings
from streams.settings import StreamsSettings
from tests.factories import wait_until
from trainer.settings import TrainerSettings


def scope(tmp_path: Path, **settings: str) -> Scope:
    return Scope(
        bootstrap="127.0.0.1:1",
        database_url="postgresql://postgres@127.0.0.1:1/run",
        prefix="run1",
        folder=tmp_path,
        api_token="a-token-long-enough",
        settings=settings,
    )


def test_the_harness_knows_every_topic_of_the_worker() -> None:
    assert {name.replace("-", "_") for name in TOPICS} == set(TopicNames.model_fields)


def test_topic_env_renames_every_topic_for_the_worker_and_the_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in topic_env("run1").items():
        monkeypatch.setenv(name, value)
    worker = StreamsSettings().topics
    assert {key: getattr(worker, key) for key in TopicNames.model_fields} == {
        name.replace("-", "_"): f"run1-{name}" for name in TOPICS
    }
    trainer = TrainerSettings()
    assert (trainer.topics.retrain_requested, trainer.topics.dead_letter) == (
        "run1-retrain-requested",
        "run1-dead-letter",
    )


def test_topic_env_renames_single_topics_and_refuses_unknown_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only = topic_env(model_updated="announcements")
    for name, value in only.items():
        monkeypatch.setenv(name, value)
    assert len(only) == 1
    assert TrainerSettings().topics.model_updated == "announcements"
    both = topic_env("p", dead_letter="dlq").values()
    assert sorted(both) == sorted(
        ["dlq", *(f"p-{name}" for name in TOPICS if name != "dead-letter")]
    )
    with pytest.raises(ValueError, match="no such topic: model_update"):
        topic_env(model_update="x")


def test_the_services_see_the_runs_settings_and_none_of_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINER_PARTITIONS", "9")
    env = scope(tmp_path, RETRAINER_POLICY_TICK_S="2").env(web_port=7001, RETRAINER_API_TOKEN="")
    assert "RETRAINER_PARTITIONS" not in env
    assert env["RETRAINER_POLICY_TICK_S"] == "2"
    assert env["RETRAINER_API_TOKEN"] == ""  # overrides come last
    assert env["RETRAINER_APP_ID"] == "run1-worker"
    assert env["RETRAINER_WORKER_DATA_DIR"] == str(tmp_path / "worker-data-7001")
    assert topic_env("run1").items() <= env.items()


def test_in_process_settings_read_nothing_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINER_PARTITIONS", "9")
    for name, value in topic_env(expense_sheet="someone-elses").items():
        monkeypatch.setenv(name, value)
    settings = streams_settings(scope(tmp_path), partitions=2)
    assert settings.partitions == 2
    assert settings.app_id == "run1-worker"
    assert settings.topics.expense_sheet == "run1-expense-sheet"
    assert settings.database_url.get_secret_value().endswith("/run")
    # A copy (replay and rebuild make them) keeps the run's topics.
    assert settings.model_copy(update={"partitions": 1}).topics.dead_letter == "run1-dead-letter"


def _child(services: Services, tmp_path: Path, ignore_term: bool) -> Service:
    """A real child in its own session, that says when it is ready (and may ignore SIGTERM)."""
    code = (
        "import signal, sys, time\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
        + "print('ready', flush=True)\n"
        + "time.sleep(120)\n"
    )
    log = tmp_path / f"child-{len(services.started)}.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=handle, start_new_session=True)
    service = Service("child", proc, log, port=0)
    services.started.append(service)
    wait_until(lambda: "ready" in log.read_text(), 30, "the child to be ready")
    return service


def test_stop_ends_a_service_that_obeys_sigterm(tmp_path: Path) -> None:
    services = Services()
    service = _child(services, tmp_path, ignore_term=False)
    assert service.stop(grace_s=10) == f"child (pid {service.pid}) stopped"
    assert service.proc.returncode == -signal.SIGTERM


def test_stop_kills_a_service_that_ignores_sigterm_at_the_deadline(tmp_path: Path) -> None:
    services = Services()
    stubborn = _child(services, tmp_path, ignore_term=True)
    obedient = _child(services, tmp_path, ignore_term=False)
    began = time.monotonic()
    notes = services.stop_all(grace_s=1.0)
    took = time.monotonic() - began
    assert notes == [
        f"child (pid {stubborn.pid}) killed after 1 s",
        f"child (pid {obedient.pid}) stopped",
    ]
    assert stubborn.proc.returncode == -signal.SIGKILL
    assert 1.0 <= took < 10, took  # one deadline for all, not one per service
    assert services.stop_all(grace_s=1.0) == []  # stopped ones are not stopped again
    services.check()  # and their exit is no failure


def test_a_service_that_exited_by_itself_is_reported(tmp_path: Path) -> None:
    services = Services()
    service = _child(services, tmp_path, ignore_term=False)
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(timeout=30)
    with pytest.raises(ServiceError, match=r"the child exited with code -15; its log: "):
        services.check()
    assert services.stop_all(grace_s=1.0) == [f"child (pid {service.pid}) had exited with code -15"]


def test_waiting_for_health_fails_at_once_when_the_process_exits(tmp_path: Path) -> None:
    services = Services()
    service = services.start(
        "worker", ["no-such-command"], scope(tmp_path).env(), tmp_path / "w.log", port=1
    )
    began = time.monotonic()
    with pytest.raises(ServiceError, match=r"the worker exited with code 2; its log: .*w\.log"):
        service.wait_healthy(within_s=60)
    assert time.monotonic() - began < 30
