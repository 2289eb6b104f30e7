"""The worker's settings for code that runs in-process (topic setup, replay, rebuild): built from
explicit values only, never from this process's environment."""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from edge.kafka import KafkaSettings
from edge.settings import TopicNames
from retrainer.harness.scope import TOPICS, Scope
from streams.settings import StreamsSettings


class ExplicitStreamsSettings(StreamsSettings):
    """StreamsSettings that read nothing but their arguments."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def topic_names(prefix: str) -> TopicNames:
    """Every topic as `<prefix>-<name>`, each given explicitly."""
    return TopicNames(**{name.replace("-", "_"): f"{prefix}-{name}" for name in TOPICS})


def streams_settings(scope: Scope, **values: Any) -> StreamsSettings:
    """The settings a worker of `scope` runs with, as far as in-process code needs them:
    its broker, database, app id and topics, then `values` (settings fields)."""
    fields: dict[str, Any] = {
        "kafka_bootstrap": scope.bootstrap,
        "database_url": scope.database_url,
        "app_id": scope.app_id,
        "topics": topic_names(scope.prefix),
    }
    # The run's own Kafka connection settings (a SASL listener, say) hold in-process too.
    for variable, value in scope.settings.items():
        name = variable.removeprefix("RETRAINER_").lower()
        if name in KafkaSettings.model_fields:
            fields[name] = value
    fields.update(values)
    return ExplicitStreamsSettings(**fields)
