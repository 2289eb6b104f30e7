"""The worker's settings: one frozen object read from `RETRAINER_*` environment variables."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.settings import SharedSettings
from schemas.limits import CodecLimits
from streams.policy import PolicyConfig
from streams.quality import QualityConfig

MIN_API_TOKEN_LENGTH = 16
"""Shortest RETRAINER_API_TOKEN a worker starts with: a short token can be guessed."""


class StreamsSettings(SharedSettings):
    """Everything the worker needs to know, read once at start (`kafka` connects its clients)."""

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:15432/retrainer")
    app_id: str = "retrainer-worker"
    worker_data_dir: str = Field(
        default="", description="Faust's data dir; empty = ~/.cache/retrainer/workers/<app_id>"
    )
    partitions: int = Field(default=4, ge=1, description="partitions of topics the worker makes")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    api_token: SecretStr | None = Field(
        default=None,
        description=f"bearer token for mutations, at least {MIN_API_TOKEN_LENGTH} characters; "
        "unset or blank = mutations answer 401",
    )

    batch_size: int = Field(default=500, ge=1)
    batch_within_s: float = Field(default=0.5, gt=0)
    policy_debounce_s: float = Field(default=1.0, gt=0)
    policy_tick_s: float = Field(default=30.0, gt=0)
    sink_retry_initial_s: float = Field(default=0.5, gt=0)
    sink_retry_max_s: float = Field(default=5.0, gt=0)
    db_pool_size: int = 8
    statement_history_customers: int = Field(
        default=100_000,
        ge=0,
        description="customers whose recent statements scoring keeps between batches; "
        "0 = read them from PostgreSQL for every batch",
    )
    statement_history_statements: int = Field(
        default=6, ge=4, description="statements kept per customer (the newest)"
    )
    # A worker killed without leaving the group holds its partitions until this runs out.
    session_timeout_s: float = Field(default=10.0, ge=6)
    upload_wait_s: float = Field(default=10.0, ge=0, description="upload waits for storage")
    models_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="at start, how long upstream consumption waits for the champions to load",
    )

    analysis_wait_s: float = Field(default=120.0, ge=0, description="analyze waits for training")

    new_sheets_threshold: int = Field(default=10, ge=1)
    anomaly_min_sample: int = Field(default=200, ge=1)
    anomaly_window_days: int = Field(default=30, ge=1)
    interval_hours: float = Field(default=24.0, gt=0)
    request_timeout_s: float = Field(default=900.0, gt=0)
    min_training_interval_s: float = Field(
        default=600.0,
        ge=0,
        description="automatic trainings of a family start at least this long after its last one",
    )

    # Drift and realised performance of the champion (streams.quality.QualityConfig).
    drift_psi_threshold: float = Field(
        default=0.2, gt=0, description="PSI of a feature or the score that calls for a retraining"
    )
    drift_min_sample: int = Field(default=500, ge=1, description="scored rows PSI needs")
    drift_max_sample: int = Field(default=5000, ge=1, description="newest scored rows PSI reads")
    drift_window_days: int = Field(default=7, ge=1)
    performance_auc_floor: float = Field(default=0.6, ge=0, le=1)
    performance_auc_margin: float = Field(default=0.1, ge=0, le=1)
    performance_min_sample: int = Field(default=200, ge=2)
    performance_max_sample: int = Field(default=50_000, ge=2)
    performance_window_days: int = Field(default=90, ge=1)
    delinquency_performance_window_days: int = Field(default=365, ge=1)
    quality_refresh_s: float = Field(default=300.0, gt=0)

    max_amount: Decimal = Decimal(1_000_000)
    max_string_length: int = 2000
    max_payload_bytes: int = 1_048_576

    @property
    def upstream_group_id(self) -> str:
        """The consumer group that stores and scores the upstream topics (Faust's is app_id)."""
        return f"{self.app_id}-upstream"

    @model_validator(mode="after")
    def _samples_fit(self) -> StreamsSettings:
        for name in ("drift", "performance"):
            least, most = getattr(self, f"{name}_min_sample"), getattr(self, f"{name}_max_sample")
            if least > most:
                raise ValueError(
                    f"RETRAINER_{name.upper()}_MIN_SAMPLE must not exceed "
                    f"RETRAINER_{name.upper()}_MAX_SAMPLE ({least} > {most})"
                )
        return self

    @field_validator("api_token")
    @classmethod
    def _usable_token(cls, token: SecretStr | None) -> SecretStr | None:
        """Blank reads as unset (mutations refused); a short or unsendable token stops the start."""
        if token is None or not token.get_secret_value().strip():
            return None
        value = token.get_secret_value().strip()
        if len(value) < MIN_API_TOKEN_LENGTH:
            raise ValueError(
                f"RETRAINER_API_TOKEN has {len(value)} characters; it needs at least "
                f"{MIN_API_TOKEN_LENGTH}, e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        if not all("!" <= c <= "~" for c in value):
            raise ValueError(
                "RETRAINER_API_TOKEN must be printable ASCII without spaces (it is sent in an "
                "HTTP header)"
            )
        return SecretStr(value)

    def codec_limits(self) -> CodecLimits:
        """The worker's codec limits; replay and rescore use them too, so they accept exactly
        what the worker accepts."""
        return CodecLimits(
            max_payload_bytes=self.max_payload_bytes,
            max_amount=self.max_amount,
            max_string_length=self.max_string_length,
        )

    def policy(self) -> PolicyConfig:
        return PolicyConfig(
            new_sheets_threshold=self.new_sheets_threshold,
            new_customers_threshold=self.new_customers_threshold,
            anomaly_rate_low=self.anomaly_rate_low,
            anomaly_rate_high=self.anomaly_rate_high,
            anomaly_min_sample=self.anomaly_min_sample,
            anomaly_window=timedelta(days=self.anomaly_window_days),
            interval=timedelta(hours=self.interval_hours),
            request_timeout=timedelta(seconds=self.request_timeout_s),
            min_training_interval=timedelta(seconds=self.min_training_interval_s),
            minimums=self.minimums(),
            quality=QualityConfig(
                drift_psi_threshold=self.drift_psi_threshold,
                drift_min_sample=self.drift_min_sample,
                drift_max_sample=self.drift_max_sample,
                drift_window=timedelta(days=self.drift_window_days),
                performance_auc_floor=self.performance_auc_floor,
                performance_auc_margin=self.performance_auc_margin,
                performance_min_sample=self.performance_min_sample,
                performance_max_sample=self.performance_max_sample,
                performance_window=timedelta(days=self.performance_window_days),
                delinquency_performance_window=timedelta(
                    days=self.delinquency_performance_window_days
                ),
                delinquency_horizon_days=self.delinquency_horizon_days,
                delinquent_days_past_due=self.delinquent_days_past_due,
                refresh=timedelta(seconds=self.quality_refresh_s),
            ),
        )
