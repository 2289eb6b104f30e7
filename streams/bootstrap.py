"""Start the worker: settings, topics, the Faust app and its dependencies, in that order."""

from __future__ import annotations

import gc
import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from edge.logs import LogSettings, configure, kafka_logger
from streams.settings import StreamsSettings

log = logging.getLogger(__name__)


DEAD_LETTER_MAX_BYTES = 16 * 1024 * 1024


class TopicSetupError(Exception):
    """The worker's topics could not be created or checked."""


POLICY_TABLE = "policy-state"
"""The Faust table of the policy's per-family state."""


def policy_changelog(settings: StreamsSettings) -> str:
    """The changelog topic of the policy table (Faust's naming: `<app id>-<table>-changelog`)."""
    return f"{settings.app_id}-{POLICY_TABLE}-changelog"


def ensure_topics(settings: StreamsSettings) -> list[str]:
    """Create the worker's topics that do not exist yet; returns the names created."""
    topics = settings.topics
    partitions = settings.partitions
    wanted = {
        name: NewTopic(name, num_partitions=partitions, replication_factor=1)
        for name in (
            *topics.upstream().values(),
            topics.retrain_requested,
            topics.training_outcome,
            topics.expense_scored,
            topics.customer_scored,
            topics.dead_letter,
            topics.policy_signals,
        )
    }
    # A dead letter carries the original bytes (base64) plus why: for a message that was itself
    # near the upstream size limit it is larger than Kafka's 1 MiB default.
    wanted[topics.dead_letter] = NewTopic(
        topics.dead_letter,
        num_partitions=partitions,
        replication_factor=1,
        config={"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)},
    )
    # Compacted: the latest champion per family stays readable from the start of the topic.
    wanted[topics.model_updated] = NewTopic(
        topics.model_updated,
        num_partitions=partitions,
        replication_factor=1,
        config={"cleanup.policy": "compact"},
    )
    # The policy table's changelog, named as Faust names it. Made here, before the worker's
    # producer first reads the cluster's metadata: Faust would make it while the worker starts,
    # and a policy change written before the producer knew of it crashed the policy agent
    # (aiokafka cannot pick a partition of a topic missing from its metadata).
    changelog = policy_changelog(settings)
    wanted[changelog] = NewTopic(
        changelog,
        num_partitions=partitions,
        replication_factor=1,
        config={"cleanup.policy": "compact"},
    )
    admin = AdminClient(settings.kafka.confluent({"logger": kafka_logger()}))
    try:
        existing = set(admin.list_topics(timeout=15).topics)
    except KafkaException as exc:
        raise TopicSetupError(
            f"cannot reach Kafka at {settings.kafka.describe()}: {exc}; "
            "is the broker up? (`retrainer stack up`)"
        ) from exc
    missing = [topic for name, topic in wanted.items() if name not in existing]
    created: list[str] = []
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=30).items():
            try:
                future.result(timeout=60)
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicSetupError(f"cannot create topic {name}: {exc}") from exc
    return created


class SchemaBehind(Exception):
    """The database lacks migrations this code needs."""


def check_schema(database_url: str) -> None:
    """Refuse to start on a database whose schema is older than this code."""
    import asyncio

    import asyncpg

    from edge.migrations import pending

    try:
        missing = [m.version for m in asyncio.run(pending(database_url))]
    except (OSError, asyncpg.PostgresError) as exc:
        raise SchemaBehind(f"cannot reach PostgreSQL: {exc}") from exc
    if missing:
        raise SchemaBehind(
            f"the database lacks migrations {missing}; run `retrainer db migrate` first"
        )


GC_THRESHOLDS = (50_000, 50, 100)
"""Young-generation collections every 50,000 allocations instead of 700: each batch allocates
(and frees, without cycles) hundreds of thousands of small objects, and the default made the
collector about a sixth of the handlers' CPU."""


def tune_garbage_collector() -> None:
    """Move what start-up allocated (modules, app, settings) out of the collector's sight, and
    collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: StreamsSettings, logs: LogSettings | None = None) -> None:
    """Run the Faust worker until it is stopped (SIGINT/SIGTERM)."""
    import faust
    import pandas as pd

    from streams.app import create_app
    from streams.context import build_context

    logs = logs or LogSettings()
    # pyarrow is installed (the trainer's loads); pandas would then back every str column with
    # it, and Series.isin on those, called per batch here, is ~15x slower than on Python strings.
    pd.set_option("mode.string_storage", "python")

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            # Faust has set up its handlers: ours replace them, in the format both services use.
            configure(logs)

    check_schema(settings.database_url.get_secret_value())
    created = ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    app = create_app(settings, build_context(settings))
    tune_garbage_collector()
    worker = Worker(app, loglevel=logs.log_level.value, quiet=True)
    worker.execute_from_commandline()
