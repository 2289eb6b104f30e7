"""The trainer's settings: one frozen object read once from `RETRAINER_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from edge.settings import SharedSettings
from trainer.thresholds import ThresholdRule


class TrainerSettings(SharedSettings):
    """Everything the trainer service is told from outside; built once, in the bootstrap.

    The Kafka connection (`kafka`, from `RETRAINER_KAFKA_*`) comes from KafkaSettings."""

    # Connections
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:15432/retrainer")

    # Topics and consumer group
    trainer_group_id: str = "retrainer-trainer"
    trainer_metrics_port: int = Field(default=6067, ge=0, le=65535)
    """HTTP port of /metrics; 0 = do not serve metrics."""

    # Minimum data (the seeds' gate before training); a forced request bypasses these
    min_labelled_expenses: int = Field(default=50, ge=2)
    """The RandomForest is trained only with this many labels (both classes present)."""
    min_fraud_labels: int = Field(default=5, ge=1)

    # Data and evaluation
    max_customers: int = Field(default=0, ge=0)
    """Delinquency training set cap in customers (up to half new, the rest existing, topped up
    past the cap until the minimum data is reached); 0 = all. Off by default: on simulator data
    every capped set scored a lower holdout AUC than all customers (see trainer/selection.py)."""
    decision_threshold: float = Field(default=0.5, gt=0, lt=1)
    """The threshold when none can be chosen on data (the out-of-fold scores lack a class)."""
    threshold_rule: str = "max_f1"
    """How the threshold is chosen on out-of-fold scores: max_f1, precision:T or recall:T."""
    threshold_folds: int = Field(default=3, ge=2, le=10)
    """Folds (of whole customers or sheets) whose out-of-fold scores choose the threshold."""
    threshold_max_rows: int = Field(default=200_000, ge=100)
    """Out-of-fold scoring uses at most about this many training rows (whole groups, sampled)."""
    point_in_time_ingestion: bool = True
    """Also require rows to have been stored (ingested_at) by the cutoff: reproducible reruns."""

    # Models (shallow and few trees: the seed-sized set is ~1,000 rows; tuned on simulator data)
    random_seed: int = 42
    xgb_rounds: int = Field(default=100, ge=1)
    xgb_max_depth: int = Field(default=3, ge=1)
    xgb_learning_rate: float = Field(default=0.05, gt=0)
    forest_trees: int = Field(default=200, ge=1)
    isolation_contamination: float = Field(default=0.1, gt=0, le=0.5)
    """The IsolationForest's expected share of anomalies while labels are too few to measure it."""
    contamination_follows_labels: bool = True
    """With min_labelled_expenses labels, contamination = the observed fraud rate (clipped)."""
    training_threads: int = Field(default=0, ge=0)
    """Threads a model may use while fitting; 0 = every core."""

    # Cluster training (dask.distributed); unset scheduler = train in this process
    dask_scheduler: str | None = None
    """Address of a Dask scheduler (e.g. tcp://dask-scheduler:8786): load, build and fit there."""
    dask_partitions: int = Field(default=8, ge=1, le=1024)
    """Customer-hash ranges the delinquency window is read in (one COPY and one task each)."""
    dask_connect_timeout_s: float = Field(default=30.0, gt=0)
    """How long to wait for the scheduler (and for at least one worker) before a retry."""
    dask_collective_timeout_s: float = Field(default=300.0, gt=0)
    """A cluster fit whose workers stop answering each other this long fails (a lost worker)."""

    # Gate
    promotion_tolerance: float = Field(default=0.01, ge=0)
    """A challenger whose AUC is lower than the champion's by more than this is rejected."""
    gate_max_score_psi: float = Field(default=0.25, gt=0)
    """Without labelled evidence: largest PSI of challenger vs champion scores still promoted."""
    gate_min_flag_agreement: float = Field(default=0.9, ge=0, le=1)
    """Without labelled evidence: or the share of holdout rows both models flag alike."""

    # Admission
    max_cutoff_skew_s: float = Field(default=300.0, ge=0)
    """A request whose data cutoff lies more than this many seconds after now is dead-lettered."""

    # Resilience
    retry_attempts: int = Field(default=5, ge=1)
    retry_base_delay_s: float = Field(default=0.5, gt=0)
    retry_max_delay_s: float = Field(default=10.0, gt=0)
    publish_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("threshold_rule")
    @classmethod
    def _readable_rule(cls, text: str) -> str:
        return str(ThresholdRule.parse(text))

    @property
    def rule(self) -> ThresholdRule:
        """The parsed threshold rule."""
        return ThresholdRule.parse(self.threshold_rule)

    @property
    def dsn(self) -> str:
        return self.database_url.get_secret_value()
