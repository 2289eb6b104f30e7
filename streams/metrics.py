"""The worker's Prometheus metrics, declared once; labels come from small fixed sets.

Every label set known in advance is exported from the start (counters and histograms at 0,
gauges at 0 or NaN while unknown), so `rate()` and `increase()` see the first event and a
dashboard shows a flat line rather than no data. Only the consumer lag (per assigned partition)
and the model info (per live version) come and go.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from schemas.base import ModelFamily
from schemas.build import build_labels
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated
from schemas.errors import RejectReason
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.features import CATEGORICAL_FIELDS, DELINQUENCY_FEATURES, EXPENSE_FEATURES
from schemas.retrain_requested import RetrainReason
from streams.policy import Action, Counters

UPSTREAM_TOPICS = tuple(
    event.TOPIC
    for event in (ExpenseSheetSubmitted, CustomerCreated, CustomerActivityRecorded, ExpenseLabelled)
)
"""The `topic` label of ingest metrics: the default (logical) name of each upstream topic."""
SCORED_TOPICS = (ExpenseSheetSubmitted.TOPIC, CustomerActivityRecorded.TOPIC)
FAMILIES = tuple(family.value for family in ModelFamily)
STORE_OUTCOMES = ("new", "present")
RELOAD_OUTCOMES = ("loaded", "refused", "failed", "fallback")
POLICY_COUNTERS = tuple(Counters(observed_at=datetime.now(UTC)).as_dict())
FAMILY_FEATURES = {
    ModelFamily.EXPENSE_FRAUD.value: EXPENSE_FEATURES,
    ModelFamily.DELINQUENCY.value: DELINQUENCY_FEATURES,
}
"""The `feature` label of the PSI gauge: each family's features (a fixed set per code version)."""

BUILD_INFO = Gauge(
    "retrainer_build_info",
    "1, labelled with the running build: package version, Python version and git commit.",
    ["version", "python", "commit"],
)

EVENTS_CONSUMED = Counter(
    "retrainer_events_consumed_total", "Messages read from upstream topics.", ["topic"]
)
EVENTS_STORED = Counter(
    "retrainer_events_stored_total",
    "Decoded events by what the sink found: new rows or already present (a redelivery).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "retrainer_dead_letters_total",
    "Messages set aside to the dead-letter topic, by source topic, stage and reason.",
    ["topic", "stage", "reason"],
)
SINK_BATCH_SECONDS = Histogram(
    "retrainer_sink_batch_seconds",
    "Time to store one batch in PostgreSQL, retries included.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_RETRIES = Counter(
    "retrainer_sink_retries_total", "Sink attempts that failed and were retried.", ["topic"]
)
COUNTER_VALUE = Gauge(
    "retrainer_policy_counted_events",
    "The policy's counters per family (new_sheets, new_customers, ...), against the cutoff.",
    ["family", "counter"],
)
THRESHOLD_VALUE = Gauge(
    "retrainer_policy_threshold_events",
    "The count threshold each family's main counter is compared with (NaN until evaluated).",
    ["family"],
)
ANOMALY_RATE = Gauge(
    "retrainer_anomaly_rate_ratio",
    "Flagged share of scores by the champion in the rolling window (NaN before any score).",
    ["family"],
)
RETRAIN_REQUESTS = Counter(
    "retrainer_retrain_requests_total",
    "RetrainRequested events emitted (re-sends included), by family and reason.",
    ["family", "reason"],
)
REQUESTS_IN_FLIGHT = Gauge(
    "retrainer_requests_in_flight", "Retrain requests awaiting an answer (0 or 1).", ["family"]
)
POLICY_DECISIONS = Counter(
    "retrainer_policy_decisions_total", "Policy evaluations by outcome.", ["family", "action"]
)
FEATURE_PSI = Gauge(
    "retrainer_feature_psi",
    "PSI of each feature of the champion's recent scored rows against its training reference "
    "(NaN until computed on the minimum sample).",
    ["family", "feature"],
)
SCORE_PSI = Gauge(
    "retrainer_score_psi",
    "PSI of the champion's recent scores against its training reference (NaN until computed).",
    ["family"],
)
SCORE_KS = Gauge(
    "retrainer_score_ks_ratio",
    "KS distance of the champion's recent scores from its training reference's, at the "
    "reference's bin edges (NaN until computed).",
    ["family"],
)
DRIFT_SAMPLE = Gauge(
    "retrainer_drift_sample_events",
    "Scored rows of the champion the drift figures were computed on.",
    ["family"],
)
REALISED_AUC = Gauge(
    "retrainer_realised_auc_ratio",
    "AUC of the champion's live scores against the labels that arrived since (NaN until a "
    "labelled sample holds both classes).",
    ["family"],
)
REALISED_PRECISION = Gauge(
    "retrainer_realised_precision_ratio",
    "Share of the champion's flagged, labelled scores that were positive (NaN before any).",
    ["family"],
)
REALISED_RECALL = Gauge(
    "retrainer_realised_recall_ratio",
    "Share of the positive labels the champion flagged (NaN before any).",
    ["family"],
)
REALISED_SAMPLE = Gauge(
    "retrainer_realised_labelled_events",
    "Live scores of the champion with a label known now, in the performance window.",
    ["family"],
)
SCORING_RETRIES = Counter(
    "retrainer_scoring_retries_total",
    "Scoring attempts that failed on an outage (PostgreSQL or Kafka) and were retried.",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "retrainer_consumer_lag_messages",
    "Messages not yet consumed, per upstream topic and partition assigned to this worker.",
    ["topic", "partition"],
)

# -- scorers -----------------------------------------------------------------------------------

SCORING_SECONDS = Histogram(
    "retrainer_scoring_latency_seconds",
    "Time to score one micro-batch (reading its history, features, predict), per family.",
    ["family"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENTS_SCORED = Counter(
    "retrainer_events_scored_total",
    "Expense lines and statements scored, by family (the version: retrainer_model_info).",
    ["family"],
)
EVENTS_FLAGGED = Counter(
    "retrainer_events_flagged_total",
    "Scored events flagged as anomalous / likely delinquent, by family.",
    ["family"],
)
MODEL_RELOADS = Counter(
    "retrainer_model_reloads_total",
    "Model reloads after model-updated, by family and outcome (loaded, refused, failed, fallback).",
    ["family", "outcome"],
)
MODEL_RELOAD_SECONDS = Histogram(
    "retrainer_model_reload_seconds",
    "Time from a model-updated event to the new model scoring (fetch, verify, load, warm up).",
    ["family"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MODEL_INFO = Gauge(
    "retrainer_model_info",
    "1 for the model version each family scores with now (no series before a model loads).",
    ["family", "version"],
)
SHADOW_AGREEMENT = Gauge(
    "retrainer_shadow_agreement_ratio",
    "Share of events on which the shadow candidate and the champion flag alike (NaN before).",
    ["family"],
)
SHADOW_SCORE_DIFFERENCE = Histogram(
    "retrainer_shadow_score_difference",
    "Absolute difference between the shadow candidate's and the champion's scores.",
    ["family"],
    buckets=(0.001, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1),
)
UNKNOWN_CATEGORIES = Counter(
    "retrainer_unknown_category_total",
    "Profile values outside a field's known set, scored as the `other` bucket, by field.",
    ["field"],
)
RELOAD_STALL = Gauge(
    "retrainer_reload_stall_seconds",
    "Longest event-loop stall seen while the last reload ran (how long scoring could wait).",
    ["family"],
)


def count_unknown_categories(counts: dict[str, int]) -> None:
    """Add what `schemas.features.unknown_categories` found to UNKNOWN_CATEGORIES."""
    for field, count in counts.items():
        if count:
            UNKNOWN_CATEGORIES.labels(field).inc(count)


def _export_known_label_sets() -> None:
    BUILD_INFO.labels(**build_labels()).set(1)
    for topic in UPSTREAM_TOPICS:
        EVENTS_CONSUMED.labels(topic)
        for outcome in STORE_OUTCOMES:
            EVENTS_STORED.labels(topic, outcome)
        for reason in RejectReason:
            DEAD_LETTERS.labels(topic, "decode", reason.value)
        SINK_BATCH_SECONDS.labels(topic)
        SINK_RETRIES.labels(topic)
    for topic in SCORED_TOPICS:
        SCORING_RETRIES.labels(topic)
    for family in FAMILIES:
        for counter in POLICY_COUNTERS:
            COUNTER_VALUE.labels(family, counter).set(0)
        THRESHOLD_VALUE.labels(family).set(float("nan"))
        ANOMALY_RATE.labels(family).set(float("nan"))
        for feature in FAMILY_FEATURES[family]:
            FEATURE_PSI.labels(family, feature).set(float("nan"))
        for gauge in (SCORE_PSI, SCORE_KS, REALISED_AUC, REALISED_PRECISION, REALISED_RECALL):
            gauge.labels(family).set(float("nan"))
        DRIFT_SAMPLE.labels(family).set(0)
        REALISED_SAMPLE.labels(family).set(0)
        for retrain_reason in RetrainReason:
            RETRAIN_REQUESTS.labels(family, retrain_reason.value)
        REQUESTS_IN_FLIGHT.labels(family).set(0)
        for action in Action:
            POLICY_DECISIONS.labels(family, action.value)
        SCORING_SECONDS.labels(family)
        EVENTS_SCORED.labels(family)
        EVENTS_FLAGGED.labels(family)
        for reload_outcome in RELOAD_OUTCOMES:
            MODEL_RELOADS.labels(family, reload_outcome)
        MODEL_RELOAD_SECONDS.labels(family)
        SHADOW_AGREEMENT.labels(family).set(float("nan"))
        SHADOW_SCORE_DIFFERENCE.labels(family)
        RELOAD_STALL.labels(family).set(0)
    for field in CATEGORICAL_FIELDS:
        UNKNOWN_CATEGORIES.labels(field)


_export_known_label_sets()
