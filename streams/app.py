"""The worker's Faust app: `create_app` builds it from a WorkerContext and installs each agent
group and the HTTP API. Importing this module connects to nothing."""

from __future__ import annotations

from pathlib import Path

import faust

from streams.agents import forwarders, health, ingest, models, policy
from streams.context import WorkerContext, build_context
from streams.faust_kafka import broker_credentials
from streams.settings import StreamsSettings
from streams.web import install as install_web


def faust_app(settings: StreamsSettings) -> faust.App:
    """The bare Faust app of a worker: broker, web server, data dir; no agents yet."""
    datadir = settings.worker_data_dir or str(
        Path.home() / ".cache" / "retrainer" / "workers" / settings.app_id
    )
    return faust.App(
        settings.app_id,
        broker=settings.kafka.faust_broker(),
        broker_credentials=broker_credentials(settings.kafka),
        store="memory://",
        datadir=datadir,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        autodiscover=False,
    )


def create_app(settings: StreamsSettings, ctx: WorkerContext | None = None) -> faust.App:
    """Build the worker's Faust app: agents, the policy table, timers and web views."""
    ctx = ctx or build_context(settings)
    app = faust_app(settings)
    ingest.install(app, ctx)
    models.install(app, ctx)
    health.install(app, ctx)
    forwarders.install(app, ctx)
    policy.install(app, ctx)

    install_web(app, ctx)
    return app
