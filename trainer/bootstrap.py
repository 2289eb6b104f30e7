"""The trainer's one bootstrap: settings in, connections and handlers built and passed down."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg

from schemas.codec import Codec
from schemas.dead_letter import DeadLettered
from schemas.model_updated import ModelUpdated
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import TrainingOutcome
from trainer import families, metrics, report
from trainer.cluster import with_cluster
from trainer.health import Reachability
from trainer.publisher import Publisher
from trainer.retry import retrying
from trainer.runner import RequestConsumer
from trainer.service import FitFunction, Trainer
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)


def trainer_codec(settings: TrainerSettings) -> Codec:
    """A codec that knows the trainer's topics under their configured names."""
    return Codec(
        topics={
            settings.topics.retrain_requested: RetrainRequested,
            settings.topics.model_updated: ModelUpdated,
            settings.topics.training_outcome: TrainingOutcome,
            settings.topics.dead_letter: DeadLettered,
        }
    )


@dataclass
class TrainerApp:
    """Everything the trainer runs on; `close` releases it."""

    settings: TrainerSettings
    pool: asyncpg.Pool
    executor: ThreadPoolExecutor
    codec: Codec
    publisher: Publisher
    trainer: Trainer
    consumer: RequestConsumer

    async def close(self) -> None:
        await asyncio.to_thread(self.publisher.close)
        await self.pool.close()
        self.executor.shutdown(wait=True)
        await asyncio.to_thread(self.trainer.close)


async def connect(settings: TrainerSettings) -> asyncpg.Pool:
    """A small pool (the trainer runs one request at a time); retried while PostgreSQL starts."""

    async def create() -> asyncpg.Pool:
        return await asyncpg.create_pool(settings.dsn, min_size=1, max_size=4, timeout=10)

    return await retrying(create, settings, "connecting to PostgreSQL")


def _warmed_up(done: Future[None]) -> None:
    if (error := done.exception()) is not None:
        log.warning("the report's plotting code failed to import ahead of time: %r", error)


async def build(
    settings: TrainerSettings | None = None, *, fit: FitFunction = families.fit
) -> TrainerApp:
    """Wire the trainer: pool, executor for fitting, codec, publisher, handler, consumer."""
    settings = settings or TrainerSettings()
    pool = await connect(settings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainer-fit")
    # In the fit thread, before any request: reports are drawn inside the commit transaction.
    executor.submit(report.warm_up).add_done_callback(_warmed_up)
    codec = trainer_codec(settings)
    publisher = Publisher(settings, codec)
    trainer = Trainer(settings, pool, executor, fit=fit, cluster=with_cluster(settings))
    consumer = RequestConsumer(settings, trainer, publisher, codec)
    return TrainerApp(settings, pool, executor, codec, publisher, trainer, consumer)


async def serve(settings: TrainerSettings, stop: asyncio.Event | None = None) -> None:
    """Run the trainer service until SIGINT/SIGTERM (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reachability = Reachability(settings)
    # The first probe runs here, so /health says what is missing from its first answer.
    await asyncio.to_thread(reachability.start)
    metrics.serve(settings.trainer_metrics_port, reachability)
    try:
        app = await build(settings)
        try:
            await app.consumer.run(stop)
        finally:
            await app.close()
    finally:
        reachability.stop()
