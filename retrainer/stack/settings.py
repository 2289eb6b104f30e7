"""Settings of the local stack, read once from `RETRAINER_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "retrainer"


class StackSettings(BaseSettings):
    """Where the local Kafka broker and PostgreSQL live and listen.

    Setting `RETRAINER_KAFKA_BOOTSTRAP` or `RETRAINER_DATABASE_URL` points the stack at a server
    you run yourself: `stack up` then only checks that it answers and starts nothing for it.
    """

    model_config = SettingsConfigDict(env_prefix="RETRAINER_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=_default_home, description="cache and state of the stack")
    host: str = "127.0.0.1"

    kafka_bootstrap: str | None = Field(default=None, description="external broker; none = local")
    kafka_version: str = "4.3.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_sasl_port: int = Field(
        default=19094, description="the local broker's SASL_PLAINTEXT listener (PLAIN)"
    )
    kafka_local_username: str = Field(
        default="retrainer", description="the one SASL user of the local broker"
    )
    kafka_local_password: SecretStr = Field(
        default=SecretStr("retrainer-local-sasl"),
        description="that user's password (a local test broker's, not a secret to keep)",
    )
    kafka_heap_mb: int = Field(default=512, le=512, ge=128)
    kafka_start_timeout_s: float = 90.0
    maven_settings: Path | None = Field(
        default=None, description="a Maven settings.xml (mirror, proxy) for resolving the jars"
    )

    database_url: str | None = Field(default=None, description="external PostgreSQL; none = local")
    postgres_port: int = 15432
    postgres_database: str = "retrainer"
    postgres_start_timeout_s: float = 60.0
    # PostgreSQL refuses to run as root; when we are root the server runs as this system user,
    # with its binaries and data under a directory that user can reach.
    postgres_system_user: str = "retrainer-pg"
    postgres_root_home: Path = Path("/var/lib/retrainer")

    @property
    def local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def local_postgres(self) -> bool:
        return self.database_url is None

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The local broker's SASL_PLAINTEXT listener."""
        return f"{self.host}:{self.kafka_sasl_port}"

    @property
    def dsn(self) -> str:
        if self.database_url:
            return self.database_url
        return f"postgresql://postgres@{self.host}:{self.postgres_port}/{self.postgres_database}"

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def postgres_dir(self) -> Path:
        if os.geteuid() == 0:
            return self.postgres_root_home / "postgres"
        return self.home / "postgres"
