"""Rebuild the worker's policy state from PostgreSQL, for a new deployment or a lost changelog.

Counters need no rebuild: the policy reads them from PostgreSQL against the family's data cutoff.
What the policy table remembers (champion version, data cutoff, last training time) is in the
registry and the retraining log; this sends it to the worker as PROMOTED signals.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.base import ModelFamily
from streams.bootstrap import TopicSetupError, ensure_topics
from streams.policy import Decision, FamilyState, decide, model_promoted
from streams.replay import (
    ReplayError,
    committed_offsets,
    group_members,
    send_signals,
    set_group_offsets,
)
from streams.services.policy import PolicyState, PolicyStep
from streams.settings import StreamsSettings
from streams.signals import PolicySignal, SignalKind
from streams.store.counts import read_counters
from streams.store.policy_state import mirror_step, registry_facts


@dataclass(frozen=True)
class FamilyRecord:
    """What PostgreSQL says a family's policy state is."""

    family: ModelFamily
    version: str | None
    data_cutoff: datetime | None
    last_trained_at: datetime | None
    open_requests: tuple[uuid.UUID, ...] = ()

    def state(self) -> FamilyState:
        """The policy state these facts give, starting from nothing."""
        blank = FamilyState(self.family)
        if self.version is None or self.data_cutoff is None:
            return blank
        return model_promoted(
            blank, self.version, self.data_cutoff, self.last_trained_at or self.data_cutoff
        )

    def signal(self) -> PolicySignal | None:
        """The PROMOTED signal that teaches a worker this state; None when there is no model."""
        if self.version is None or self.data_cutoff is None:
            return None
        return PolicySignal(
            kind=SignalKind.PROMOTED,
            family=self.family,
            # The policy takes a promotion's time from the signal: it is the last training.
            sent_at=self.last_trained_at or self.data_cutoff,
            version=self.version,
            data_cutoff=self.data_cutoff,
            requested_by="rebuild-state",
        )


async def read_family(conn: asyncpg.Connection, family: ModelFamily) -> FamilyRecord:
    facts = await registry_facts(conn, family)
    cutoffs = [c for c in (facts.champion_cutoff, facts.trained_cutoff) if c]
    trainings = [t for t in (facts.promoted_at, facts.last_trained_at) if t]
    return FamilyRecord(
        family=family,
        version=facts.champion,
        data_cutoff=max(cutoffs) if cutoffs else None,
        last_trained_at=max(trainings) if trainings else None,
        open_requests=facts.open_requests,
    )


@dataclass(frozen=True)
class FamilyOutcome:
    """What the rebuild did for one family."""

    record: FamilyRecord
    signalled: bool
    decision: Decision | None
    """The policy's verdict on the rebuilt state (when the mirror was written)."""

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "family": r.family.value,
            "model_version": r.version,
            "data_cutoff": r.data_cutoff.isoformat() if r.data_cutoff else None,
            "last_trained_at": r.last_trained_at.isoformat() if r.last_trained_at else None,
            "signalled": self.signalled,
            "decision": self.decision.action.value if self.decision else None,
            "reason": self.decision.reason_text if self.decision else None,
            "open_requests": [str(i) for i in r.open_requests],
        }


@dataclass(frozen=True)
class RebuildSummary:
    """The end of a rebuild."""

    group: str
    worker_running: bool
    signal_partitions_reset: int
    mirror_written: bool
    dry_run: bool
    families: tuple[FamilyOutcome, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "worker_running": self.worker_running,
            "signal_partitions_reset": self.signal_partitions_reset,
            "mirror_written": self.mirror_written,
            "dry_run": self.dry_run,
            "families": [f.as_dict() for f in self.families],
        }


# Leadership and coordinators settle within moments of a topic being (re)created; librdkafka
# does not flag all of these as retriable when they come back from a one-off query.
_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
    }
)


def position_signals(settings: StreamsSettings, admin: AdminClient) -> int:
    """Start the worker group's reading of the signal topic at its end where it has no offset.

    A group that was deleted (or never existed) would otherwise read every old signal from the
    beginning on a blank state, and might decide before it reaches the rebuilt one. A topic
    created moments ago may not have its leaders yet: retriable errors are retried a while.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            return _position_signals(settings, admin)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _position_signals(settings: StreamsSettings, admin: AdminClient) -> int:
    topic = settings.topics.policy_signals
    metadata = admin.list_topics(topic, timeout=15).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return 0  # the worker creates it and starts at its (empty) beginning
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    known = committed_offsets(admin, settings.app_id, partitions)
    missing = [tp for tp in partitions if (tp.topic, tp.partition) not in known]
    if not missing:
        return 0
    probe = Consumer(settings.kafka.confluent({"group.id": f"probe-{uuid.uuid4().hex}"}))
    try:
        ends = {
            (tp.topic, tp.partition): probe.get_watermark_offsets(tp, timeout=15)[1]
            for tp in missing
        }
    finally:
        probe.close()
    set_group_offsets(admin, settings.app_id, ends)
    return len(ends)


async def rebuild_state(
    settings: StreamsSettings,
    families: Sequence[ModelFamily] = tuple(ModelFamily),
    dry_run: bool = False,
) -> RebuildSummary:
    """Read each family's state from PostgreSQL and hand it to the workers (see module doc)."""
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2, timeout=15
    )
    try:
        async with pool.acquire() as conn:
            records = [await read_family(conn, family) for family in families]
        admin = AdminClient(settings.kafka.confluent())
        running = group_members(admin, settings.app_id) > 0
        if dry_run:
            outcomes = tuple(FamilyOutcome(r, False, None) for r in records)
            return RebuildSummary(settings.app_id, running, 0, False, True, outcomes)
        # A new deployment (or one that lost its internal topics) gets them as the worker makes
        # them, with the worker's partition count, before any signal is sent.
        try:
            ensure_topics(settings)
        except TopicSetupError as exc:
            raise ReplayError(str(exc)) from exc
        # With a worker running, its policy agent takes the signals and mirrors the result.
        reset = 0 if running else position_signals(settings, admin)
        send_signals(settings, [s for s in (r.signal() for r in records) if s is not None])
        written: list[FamilyOutcome] = []
        for record in records:
            decision = None if running else await _write_mirror(pool, settings, record)
            written.append(FamilyOutcome(record, record.signal() is not None, decision))
    finally:
        await pool.close()
    return RebuildSummary(settings.app_id, running, reset, not running, False, tuple(written))


async def _write_mirror(
    pool: asyncpg.Pool, settings: StreamsSettings, record: FamilyRecord
) -> Decision:
    """Write policy_state as the worker would after learning `record` (no request is sent)."""
    config = settings.policy()
    state = record.state()
    async with pool.acquire() as conn:
        counters = await read_counters(
            conn, record.family, state.cutoff, state.model_version, config
        )
    decision = decide(record.family, counters, state, config, datetime.now(UTC))
    step = PolicyStep(PolicyState(state), decision, counters, [])
    await mirror_step(pool, step)
    return decision
