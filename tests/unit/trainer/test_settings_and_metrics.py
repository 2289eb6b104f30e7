"""Settings come from RETRAINER_* variables, frozen, secrets hidden; metric names keep the rule."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from trainer import metrics
from trainer.settings import TrainerSettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = TrainerSettings()
    assert defaults.kafka_bootstrap == "127.0.0.1:19092"
    assert defaults.dsn == "postgresql://postgres@127.0.0.1:15432/retrainer"
    assert defaults.trainer_metrics_port == 6067
    assert defaults.max_customers == 0  # all customers: capped sets scored lower AUC
    monkeypatch.setenv("RETRAINER_DATABASE_URL", "postgresql://u:secret@db/x")
    monkeypatch.setenv("RETRAINER_MAX_CUSTOMERS", "0")
    monkeypatch.setenv("RETRAINER_TOPICS__RETRAIN_REQUESTED", "rr")
    settings = TrainerSettings()
    assert settings.max_customers == 0
    assert settings.topics.retrain_requested == "rr"
    assert "secret" not in repr(settings)
    assert settings.dsn.endswith("@db/x")
    with pytest.raises(ValidationError):
        settings.max_customers = 5  # type: ignore[misc]


def test_kafka_config_carries_sasl_only_when_set() -> None:
    assert "sasl.username" not in TrainerSettings().kafka.confluent()
    config = TrainerSettings(
        kafka_sasl_mechanism="PLAIN",  # type: ignore[arg-type]
        kafka_sasl_username="u",
        kafka_sasl_password="p",  # type: ignore[arg-type]
        kafka_security_protocol="SASL_SSL",  # type: ignore[arg-type]
    ).kafka.confluent()
    assert config["sasl.password"] == "p"


def test_metric_names_follow_the_rule() -> None:
    metrics.OUTCOMES.labels("delinquency", "promoted").inc()
    metrics.TRAINING_DURATION.labels("delinquency").observe(1.0)
    metrics.CHAMPION.labels("delinquency").info({"version": "auto_retrain_20260101_000000"})
    text = generate_latest(metrics.REGISTRY).decode()
    names = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    ours = {name for name in names if not name.startswith(("process_", "python_"))}
    assert all(name.startswith("retrainer_") for name in ours), ours
    for expected in (
        "retrainer_training_outcomes_total",
        "retrainer_champion_version_info",
        "retrainer_training_duration_seconds_bucket",
        "retrainer_build_info",
        # The process and Python collectors, as on the worker's default registry.
        "process_cpu_seconds_total",
        "python_info",
    ):
        assert expected in names


def test_a_topic_renamed_the_old_way_is_refused_with_the_new_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRAINER_TOPIC_MODEL_UPDATED", "mu")
    with pytest.raises(ValidationError, match="RETRAINER_TOPICS__MODEL_UPDATED"):
        TrainerSettings()


def test_worker_and_trainer_read_the_topics_and_minimum_data_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.settings import StreamsSettings

    monkeypatch.setenv("RETRAINER_TOPICS__DEAD_LETTER", "dl")
    monkeypatch.setenv("RETRAINER_MIN_SHEETS", "7")
    worker, trainer = StreamsSettings(), TrainerSettings()
    assert worker.topics == trainer.topics
    assert worker.topics.dead_letter == "dl"
    assert worker.min_sheets == trainer.min_sheets == 7
    monkeypatch.setenv("RETRAINER_MIN_LINES_PER_SHEET", "0")
    for settings_class in (StreamsSettings, TrainerSettings):
        with pytest.raises(ValidationError, match="min_lines_per_sheet"):
            settings_class()


def test_an_anomaly_band_upside_down_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import StreamsSettings

    monkeypatch.setenv("RETRAINER_ANOMALY_RATE_LOW", "0.5")
    monkeypatch.setenv("RETRAINER_ANOMALY_RATE_HIGH", "0.3")
    with pytest.raises(ValidationError, match="RETRAINER_ANOMALY_RATE_LOW must be below"):
        StreamsSettings()


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("RETRAINER_TOPICS__EXPENSE_SHEET", "", "RETRAINER_TOPICS__EXPENSE_SHEET is not valid"),
        ("RETRAINER_TOPIC_EXPENSE_SHEET", "x", "set RETRAINER_TOPICS__EXPENSE_SHEET instead"),
        ("RETRAINER_SCORE_CONTEXT_LINES", "20000", "set RETRAINER_EXPENSE_HISTORY_DAYS"),
        ("RETRAINER_MIN_CUSTOMERS", "50", "set RETRAINER_MIN_OBSERVATIONS"),
        ("RETRAINER_COOLDOWN_S", "600", "until new data arrives"),
        ("RETRAINER_SCORE_CONTEXT_REFRESH_S", "5", "set RETRAINER_EXPENSE_HISTORY_DAYS"),
        ("RETRAINER_EXPENSE_HISTORY_DAYS", "0", "RETRAINER_EXPENSE_HISTORY_DAYS"),
        ("RETRAINER_ANOMALY_RATE_LOW", "0.9", "RETRAINER_ANOMALY_RATE_LOW must be below"),
    ],
)
def test_a_refused_setting_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    from schemas.diagnostics import settings_problem
    from streams.settings import StreamsSettings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        StreamsSettings()
    problem = settings_problem(refused.value)
    assert problem is not None
    assert said in str(problem)
    assert "RETRAINER_?" not in str(problem)


def test_unknown_categories_are_counted_by_field_in_both_services() -> None:
    from prometheus_client import REGISTRY as WORKER_REGISTRY

    from streams import metrics as worker_metrics
    from trainer import metrics as trainer_metrics

    for module, registry in ((trainer_metrics, trainer_metrics.REGISTRY), (worker_metrics, None)):
        read = (registry or WORKER_REGISTRY).get_sample_value
        name = "retrainer_unknown_category_total"
        before = read(name, {"field": "employment_status"})
        assert before is not None  # exported from the start
        module.count_unknown_categories({"employment_status": 3})
        module.count_unknown_categories({"employment_status": 0})
        assert read(name, {"field": "employment_status"}) == before + 3
