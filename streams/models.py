"""Which model each family scores with, and how a worker follows model-updated to swap it.

Every worker reads model-updated without a consumer group, from the start of the compacted topic,
so each one sees every promotion whatever partitions it was assigned. A new version is fetched
from the registry, checked against its sha256, decoded (never unpickled) and warmed up in a
thread; only then is it swapped in, between two batches. A version that fails its check is
refused and the old one keeps scoring; a worker with no model to keep (a cold start whose
announced champion is refused) falls back to the newest promoted version that verifies.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from edge.kafka import KafkaConnection
from edge.logs import kafka_logger
from schemas.artifacts import ArtifactIntegrityError
from schemas.base import ModelFamily
from schemas.bundles import ModelBundle
from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.model_updated import ModelUpdated
from streams import metrics
from streams.scoring_frames import LoadedModel
from streams.store.models import StoredVersion, champion_versions, stored_version

log = logging.getLogger(__name__)


class ModelRefused(Exception):
    """A version cannot be used: its artifacts fail their checks or it is unknown."""


class ModelHolder:
    """The current (and optional shadow) model per family; replaced whole, never mutated."""

    def __init__(self) -> None:
        self._current: dict[ModelFamily, LoadedModel] = {}
        self._shadow: dict[ModelFamily, LoadedModel] = {}
        self.changed = asyncio.Event()

    def current(self, family: ModelFamily) -> LoadedModel | None:
        return self._current.get(family)

    def shadow(self, family: ModelFamily) -> LoadedModel | None:
        return self._shadow.get(family)

    def swap(self, model: LoadedModel) -> None:
        old = self._current.get(model.family)
        self._current[model.family] = model
        if old is not None:  # only the live version keeps a series
            metrics.MODEL_INFO.remove(model.family.value, old.version)
        metrics.MODEL_INFO.labels(model.family.value, model.version).set(1)
        self.changed.set()
        self.changed = asyncio.Event()

    def set_shadow(self, model: LoadedModel | None, family: ModelFamily) -> None:
        if model is None:
            self._shadow.pop(family, None)
        else:
            self._shadow[family] = model

    def versions(self) -> dict[str, dict[str, str | None]]:
        return {
            family.value: {
                "version": m.version if (m := self._current.get(family)) else None,
                "shadow": s.version if (s := self._shadow.get(family)) else None,
            }
            for family in ModelFamily
        }


async def fetch_version(conn: asyncpg.Connection, version: str) -> StoredVersion:
    """`version` as stored, or ModelRefused when the registry does not have it."""
    stored = await stored_version(conn, version)
    if stored is None:
        raise ModelRefused(f"version {version} is not in the registry (or has no artifacts)")
    return stored


STEP_S = 0.001
"""How long a reload rebuilds trees on the event loop before it lets the loop's other callbacks
run (a tree takes a fraction of that): the loop goes on scoring while a version loads."""


def build_model(stored: StoredVersion, prefer_fast: bool = True) -> LoadedModel:
    """Verify, decode and warm up a version at once (a tool's way; the worker's is
    ModelLoader.build, which leaves the loop free meanwhile)."""
    bundle = ModelBundle.from_artifacts(
        stored.family, stored.params, stored.artifacts, prefer_fast=prefer_fast
    )
    warm_up(bundle)
    return LoadedModel(stored.family, stored.version, bundle, stored.request_id)


def warm_up(bundle: ModelBundle) -> None:
    """Score two rows: the first prediction builds lazy internals (XGBoost's, scikit-learn's);
    pay for it here, not in a scoring batch."""
    bundle.score(np.zeros((2, len(bundle.feature_names)), dtype=np.float64))


class StallMonitor:
    """Measures how late the event loop wakes up while a reload runs (scoring's worst stall).

    Every wake-up's lateness is kept in `samples` (a reload lasts well under a second: a few
    hundred floats) for percentiles; `worst` is their maximum."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.worst = 0.0
        self.samples: list[float] = []

    async def watch(self, done: asyncio.Event) -> None:
        while not done.is_set():
            began = time.perf_counter()
            await asyncio.sleep(self.interval)
            late = time.perf_counter() - began - self.interval
            self.samples.append(late)
            self.worst = max(self.worst, late)


class ModelLoader:
    """Fetch, verify, load and swap versions into a holder, with metrics and logs.

    `prefer_fast` (the default) decodes forests from their tree arrays when a version has
    them; off, from skops as versions before those were (kept to measure the two side by
    side)."""

    def __init__(
        self,
        holder: ModelHolder,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        prefer_fast: bool = True,
    ) -> None:
        self.holder = holder
        self.pool = pool
        self.prefer_fast = prefer_fast
        self.last_stall_s = 0.0

    async def load(self, version: str) -> LoadedModel:
        pool = await self.pool()
        async with pool.acquire() as conn:
            stored = await fetch_version(conn, version)
        return await self.build(stored)

    async def build(self, stored: StoredVersion) -> LoadedModel:
        """Decode `stored` while the loop goes on scoring; records the loop's worst stall.

        Verifying the digests, decoding skops or XGBoost, and the warm-up run in a thread.
        Forests stored as tree arrays are rebuilt on the loop instead, for STEP_S at a time:
        each step is a few copies, and a thread doing the same Python work would take the GIL
        from the scoring loop every time its compiled code lets go of it (hundreds of times per
        batch), stalling it for tens of milliseconds. A version without tree arrays decodes
        its forests from skops in the thread, as before they were stored.
        """
        done = asyncio.Event()
        monitor = StallMonitor()
        watcher = asyncio.create_task(monitor.watch(done))
        # Decoding a model allocates many objects, so a full collection tends to start inside
        # the loading thread and hold the GIL while it walks the whole heap (~60 ms on a
        # worker). Frozen objects are skipped by the collector: freeze what lives now for the
        # duration of the load (and pause collection: it lasts well under a second), and the
        # scoring loop is not held up by it.
        gc.freeze()
        gc.disable()
        try:
            decoding = await asyncio.to_thread(
                ModelBundle.decoding,
                stored.family,
                stored.params,
                stored.artifacts,
                prefer_fast=self.prefer_fast,
            )
            built = decoding.build(1)
            while not built:
                await asyncio.sleep(0)  # the loop's other callbacks run between two steps
                step_ends = time.perf_counter() + STEP_S
                built = decoding.build(1)
                while not built and time.perf_counter() < step_ends:
                    built = decoding.build(1)
            bundle = decoding.bundle()
            await asyncio.to_thread(warm_up, bundle)
            return LoadedModel(stored.family, stored.version, bundle, stored.request_id)
        finally:
            gc.enable()
            gc.unfreeze()
            done.set()
            await watcher
            self.last_stall_s = monitor.worst
            metrics.RELOAD_STALL.labels(stored.family.value).set(monitor.worst)

    async def apply(self, update: ModelUpdated) -> bool:
        """Swap in the version `update` announces; False when it is refused.

        A refused version leaves the old model scoring or, with none to keep, the newest promoted
        version that verifies (see `fall_back`).
        """
        family = update.family.value
        began = time.perf_counter()
        current = self.holder.current(update.family)
        if current is not None and current.version == update.version:
            return True
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                stored = await fetch_version(conn, update.version)
            announced = stored.digests.get(update.artifact_id)
            if announced is not None and announced != update.sha256:
                raise ArtifactIntegrityError(
                    f"artifact {update.artifact_id} is stored with sha256 {announced}, "
                    f"model-updated announced {update.sha256}"
                )
            model = await self.load(update.version)
        except (ArtifactIntegrityError, ModelRefused) as exc:
            metrics.MODEL_RELOADS.labels(family, "refused").inc()
            if current is not None:
                log.error(
                    "refused %s %s, keeping %s: %s", family, update.version, current.version, exc
                )
            else:
                log.error("refused %s %s with no model to keep: %s", family, update.version, exc)
                await self.fall_back(update.family, refused=update.version)
            return False
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            metrics.MODEL_RELOADS.labels(family, "failed").inc()
            log.error("could not load %s %s: %s", family, update.version, exc)
            return False
        self.holder.swap(model)
        elapsed = time.perf_counter() - began
        metrics.MODEL_RELOADS.labels(family, "loaded").inc()
        metrics.MODEL_RELOAD_SECONDS.labels(family).observe(elapsed)
        log.info(
            "scoring %s with %s (reload %.0f ms, worst loop stall %.1f ms)",
            family,
            update.version,
            elapsed * 1000,
            self.last_stall_s * 1000,
        )
        return True

    async def fall_back(self, family: ModelFamily, refused: str) -> LoadedModel | None:
        """Load the newest promoted version of `family` whose artifacts verify, if any.

        For a worker that has no model to keep: rather than score without a model, it scores
        with the last good champion until model-updated announces one that loads.
        """
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                versions = await champion_versions(conn, family, refused)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            metrics.MODEL_RELOADS.labels(family.value, "failed").inc()
            log.error("could not look for a %s version to fall back to: %s", family.value, exc)
            return None
        for version in versions:
            try:
                model = await self.load(version)
            except (ArtifactIntegrityError, ModelRefused) as exc:
                metrics.MODEL_RELOADS.labels(family.value, "refused").inc()
                log.error("refused %s %s as a fallback too: %s", family.value, version, exc)
                continue
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                metrics.MODEL_RELOADS.labels(family.value, "failed").inc()
                log.error("could not load %s %s as a fallback: %s", family.value, version, exc)
                return None
            self.holder.swap(model)
            metrics.MODEL_RELOADS.labels(family.value, "fallback").inc()
            log.warning(
                "scoring %s with %s, the newest promoted version that verifies (%s was refused)",
                family.value,
                version,
                refused,
            )
            return model
        log.error("no promoted %s version verifies; scoring without a model", family.value)
        return None


class ModelFollower:
    """Reads model-updated from the beginning, without a group, and applies every update."""

    def __init__(
        self, kafka: KafkaConnection, topic: str, codec: Codec, loader: ModelLoader
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.codec = codec
        self.loader = loader
        self.ready = asyncio.Event()
        self.seen = 0

    def _decode(self, value: bytes | None) -> ModelUpdated | None:
        try:
            return self.codec.decode_as(ModelUpdated, value or b"")
        except DecodeError as exc:
            log.error("ignoring an undecodable model-updated message: %s", exc)
            return None

    async def run(self) -> None:
        """Follow the topic until cancelled; reconnects when the broker goes away."""
        delay = 0.5
        while True:
            try:
                await self._follow()
            except (KafkaError, KafkaException) as exc:
                # aiokafka's errors, or librdkafka's from the metadata request for partitions
                log.warning("model-updated follower lost the broker (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.kafka.aiokafka(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            # Catch up first, keeping only the newest update per family: no need to load every
            # version a worker slept through.
            latest: dict[ModelFamily, ModelUpdated] = {}
            while await self._behind(consumer, ends):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        update = self._decode(record.value)
                        if update is not None:
                            latest[update.family] = update
            for update in latest.values():
                await self.loader.apply(update)
                self.seen += 1
            self.ready.set()
            while True:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        update = self._decode(record.value)
                        if update is not None:
                            await self.loader.apply(update)
                            self.seen += 1
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        # A group-less aiokafka consumer only learns about topics it subscribes to; ask the
        # cluster directly how many partitions the topic has.
        admin = AdminClient(self.kafka.confluent({"logger": kafka_logger()}))
        deadline = time.monotonic() + 60
        while True:
            metadata = await asyncio.to_thread(admin.list_topics, self.topic, 10)
            found = metadata.topics.get(self.topic)
            if found is not None and found.error is None and found.partitions:
                return [TopicPartition(self.topic, p) for p in sorted(found.partitions)]
            if time.monotonic() > deadline:
                raise KafkaError(f"topic {self.topic} does not exist")
            await asyncio.sleep(0.5)

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return True
        return False
