"""The worker's Prometheus metrics, declared once; labels come from small fixed sets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "retrainer_policy_counter_value",
    "The policy's counters per family (new_sheets, new_customers, ...), against the cutoff.",
    ["family", "counter"],
)
THRESHOLD_VALUE = Gauge(
    "retrainer_policy_threshold_value",
    "The count threshold each family's main counter is compared with.",
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
CONSUMER_LAG = Gauge(
    "retrainer_consumer_lag_messages",
    "Messages not yet consumed, per upstream topic and partition assigned to this worker.",
    ["topic", "partition"],
)

# -- scorers -----------------------------------------------------------------------------------

SCORING_SECONDS = Histogram(
    "retrainer_scoring_latency_seconds",
    "Time to score one micro-batch (features + predict), per family.",
    ["family"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENTS_SCORED = Counter(
    "retrainer_events_scored_total",
    "Expense lines and statements scored, by family and model version ('none' before a model).",
    ["family", "model_version"],
)
EVENTS_FLAGGED = Counter(
    "retrainer_events_flagged_total",
    "Scored events flagged as anomalous / likely delinquent, by family.",
    ["family"],
)
MODEL_RELOADS = Counter(
    "retrainer_model_reloads_total",
    "Model reloads after model-updated, by family and outcome (loaded, refused, failed).",
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
    "1 for the model version each family scores with now.",
    ["family", "version"],
)
SHADOW_AGREEMENT = Gauge(
    "retrainer_shadow_agreement_ratio",
    "Share of events on which the shadow candidate and the champion flag alike.",
    ["family"],
)
SHADOW_SCORE_DIFFERENCE = Histogram(
    "retrainer_shadow_score_difference",
    "Absolute difference between the shadow candidate's and the champion's scores.",
    ["family"],
    buckets=(0.001, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1),
)
RELOAD_STALL = Gauge(
    "retrainer_reload_stall_seconds",
    "Longest event-loop stall seen while the last reload ran (how long scoring could wait).",
    ["family"],
)
