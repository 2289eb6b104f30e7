"""Publishing simulated or exported events: to Kafka, to files, or from files into Kafka.

`run_publish(options)` is the single entry point (the `retrainer publish` command calls it).
Every delivery failure and every rejected record is counted and reported, never dropped.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edge.kafka import KafkaSettings
from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.errors import SimulatorError
from retrainer.simulator.files import (
    ExportWriter,
    count_records,
    parse_source,
    read_records,
)
from retrainer.simulator.formats import FileFormat
from retrainer.simulator.scenario import Scenario, SimMessage
from schemas import Codec, DecodeError

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
EXPECTED_REJECT_HEADER = "retrainer-simulator-expected-reject"
"""Header on a deliberately malformed message naming the reason the codec must give."""

_SAMPLES = 10  # how many individual failures a summary quotes

# librdkafka logs every reconnect attempt; its errors reach the summary through error_cb
# (deduplicated), so its log goes to logging, silent unless the application configures it.
_kafka_log = logging.getLogger("retrainer.simulator.kafka")
_kafka_log.addHandler(logging.NullHandler())


def default_bootstrap() -> str:
    return os.environ.get("RETRAINER_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP


class PublishMode(StrEnum):
    KAFKA = "kafka"
    FILE = "file"
    FROM_FILE = "from-file"
    FROM_FILE_TO_FILE = "from-file-to-file"


@dataclass(frozen=True)
class PublishOptions:
    """What to publish (a scenario, or export files) and where (Kafka, or a directory)."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    bootstrap: str = field(default_factory=default_bootstrap)
    topic_prefix: str = ""
    topic_overrides: Mapping[str, str] = field(default_factory=dict)
    """Default topic name -> the name to publish to (wins over the prefix)."""
    rate: float | None = None
    """Messages per second; None = as fast as the broker takes them. Kafka only."""
    out_dir: Path | None = None
    """Write files here instead of publishing to Kafka."""
    file_format: FileFormat = FileFormat.JSONL
    from_files: tuple[str | Path, ...] = ()
    """Publish these exports (`PATH` or `TOPIC=PATH`) instead of a simulated scenario."""
    producer_config: Mapping[str, Any] = field(default_factory=dict)
    """Extra librdkafka settings, applied last."""
    delivery_timeout_s: float = 30.0
    """How long a message may wait for the broker before it counts as failed."""

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise SimulatorError("rate must be positive (or None for as fast as possible)")
        if self.delivery_timeout_s <= 0:
            raise SimulatorError("delivery_timeout_s must be positive")

    @property
    def mode(self) -> PublishMode:
        if self.from_files:
            return PublishMode.FROM_FILE_TO_FILE if self.out_dir else PublishMode.FROM_FILE
        return PublishMode.FILE if self.out_dir is not None else PublishMode.KAFKA

    def topic_name(self, default: str) -> str:
        """The topic a message of `default` goes to: an override, or prefix + default name."""
        return self.topic_overrides.get(default) or f"{self.topic_prefix}{default}"


@dataclass(frozen=True)
class PublishSummary:
    """What a publish run did; `ok` is False when a message failed to reach its destination or
    when every record of an export was refused."""

    mode: PublishMode
    destination: str
    sent: Mapping[str, int]
    """Messages delivered (Kafka: acknowledged by the broker) or written, per topic or file."""
    malformed: Mapping[str, int]
    """Deliberately malformed messages among `sent`, by the reason the codec will give."""
    rejected: Mapping[str, int]
    """Export records the codec refused (not published), by reason."""
    reject_samples: tuple[str, ...]
    skipped: int
    """File mode: malformed messages a text file cannot hold (binary garbage)."""
    delivery_failures: int
    failure_samples: tuple[str, ...]
    seconds: float
    warnings: tuple[str, ...] = ()
    """Client errors the producer reported while it retried (e.g. a broker going away)."""

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def rate(self) -> float:
        """Messages per second over the whole run."""
        return self.total_sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Nothing failed to arrive, and an export that had records did not have only bad ones."""
        return self.delivery_failures == 0 and not (self.total_sent == 0 and self.total_rejected)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "destination": self.destination,
            "sent": dict(self.sent),
            "total_sent": self.total_sent,
            "malformed": dict(self.malformed),
            "rejected": dict(self.rejected),
            "total_rejected": self.total_rejected,
            "reject_samples": list(self.reject_samples),
            "skipped": self.skipped,
            "delivery_failures": self.delivery_failures,
            "failure_samples": list(self.failure_samples),
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "ok": self.ok,
        }


class TokenBucket:
    """Paces messages to `rate` per second with bursts up to `burst`, without busy-waiting.

    `take()` spends one token and says how long to wait until it was due; the caller waits in
    a blocking call (the producer's poll), so pacing costs no CPU.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise SimulatorError("rate must be positive")
        self.rate = rate
        # A tenth of a second of burst smooths timer jitter without visible lumps.
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    def take(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class Sink(Protocol):
    """Where messages go: Kafka or files."""

    def send(self, message: SimMessage) -> None: ...

    def wait(self, seconds: float) -> None: ...


class KafkaSink:
    """A confluent-kafka producer that accounts for every delivery, good or bad."""

    def __init__(self, options: PublishOptions) -> None:
        self._options = options
        # The security settings (SASL, TLS) are the services' RETRAINER_KAFKA_* ones.
        kafka = KafkaSettings(kafka_bootstrap=options.bootstrap).kafka
        config: dict[str, Any] = kafka.confluent(
            {
                "client.id": "retrainer-simulator",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                # Compression keeps batches small, and lets an over-limit payload (sent on
                # purpose to test the consumer's size check) pass the broker, which measures
                # compressed batches.
                "compression.type": "lz4",
                "message.max.bytes": 8 * 1024 * 1024,
                "message.timeout.ms": int(options.delivery_timeout_s * 1000),
                "error_cb": self._on_error,
                "logger": _kafka_log,
            }
        )
        config.update(options.producer_config)
        self._producer = Producer(config)
        self.delivered: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.failures = 0
        self.failure_samples: list[str] = []
        self.client_errors: list[str] = []

    def check_reachable(self, timeout_s: float = 10.0) -> None:
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise SimulatorError(
                f"cannot reach Kafka at {self._options.bootstrap}: {exc}; start the local "
                "stack (`retrainer stack up`) or set RETRAINER_KAFKA_BOOTSTRAP / --bootstrap"
            ) from exc

    def _on_error(self, error: KafkaError) -> None:
        # Client-level errors (broker down, …) are retried by librdkafka; the messages they
        # affect fail through their delivery reports, which is where they are counted. The
        # errors themselves are kept as warnings: they say why deliveries failed.
        if error.fatal():
            self._record_failure(f"fatal producer error: {error}")
        elif len(self.client_errors) < _SAMPLES and str(error) not in self.client_errors:
            self.client_errors.append(str(error))

    def _record_failure(self, text: str, count: int = 1) -> None:
        self.failures += count
        if len(self.failure_samples) < _SAMPLES:
            self.failure_samples.append(text)

    def send(self, message: SimMessage) -> None:
        topic = self._options.topic_name(message.topic)
        headers: list[tuple[str, str | bytes | None]] | None = None
        reason = message.expected_reject.value if message.expected_reject else None
        if reason is not None:
            headers = [(EXPECTED_REJECT_HEADER, reason.encode())]

        def delivered(error: KafkaError | None, _msg: Any) -> None:
            if error is not None:
                self._record_failure(f"{topic} key={message.key!r}: {error}")
            else:
                self.delivered[topic] += 1
                if reason is not None:
                    self.malformed[reason] += 1

        while True:
            try:
                self._producer.produce(
                    topic,
                    value=message.value,
                    key=message.key,
                    headers=headers,
                    on_delivery=delivered,
                )
            except BufferError:
                # The local queue is full: let deliveries drain it, blocking rather than spinning.
                self._producer.poll(0.1)
                continue
            except KafkaException as exc:
                self._record_failure(f"{topic} key={message.key!r}: {exc}")
            break
        self._producer.poll(0)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        remaining = seconds
        while remaining > 0:
            # poll() returns early when it served a delivery report; wait out the rest.
            self._producer.poll(remaining)
            remaining = deadline - time.monotonic()

    def close(self) -> None:
        """Wait for every outstanding delivery; what does not arrive in time counts as failed."""
        undelivered = self._producer.flush(self._options.delivery_timeout_s + 5.0)
        if undelivered:
            self._record_failure(f"{undelivered} message(s) undelivered after flush", undelivered)


class FileSink:
    """Writes messages to export files instead of Kafka."""

    def __init__(self, writer: ExportWriter) -> None:
        self._writer = writer
        self.malformed: Counter[str] = Counter()

    def send(self, message: SimMessage) -> None:
        written = self._writer.write(message.topic, message.value, message.event, message.key)
        if written and message.expected_reject is not None:
            self.malformed[message.expected_reject.value] += 1

    def wait(self, seconds: float) -> None:
        """Files need no pacing."""


@contextmanager
def _progress_bar(
    enabled: bool, total: int, description: str
) -> Iterator[Callable[[int, bool], None]]:
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} msg/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )
    began = time.monotonic()
    with progress:
        task = progress.add_task(description, total=total, rate=0.0)

        def advance(done: int, finished: bool) -> None:
            elapsed = max(time.monotonic() - began, 1e-9)
            # Rejected records never reach the sink, so the final count may fall short of the
            # estimate; the finished bar shows what was really sent.
            progress.update(
                task,
                completed=done,
                total=done if finished else total,
                rate=done / elapsed,
            )

        yield advance


def _simulated(options: PublishOptions) -> tuple[int, Iterator[SimMessage]]:
    scenario = Scenario(options.scenario)
    return len(scenario), scenario.messages()


def _from_files(
    options: PublishOptions, codec: Codec, rejected: Counter[str], samples: list[str]
) -> tuple[int, Iterator[SimMessage]]:
    sources = [parse_source(spec) for spec in options.from_files]
    total = sum(count_records(topic, path) for topic, path in sources)

    def validated() -> Iterator[SimMessage]:
        position = 0
        for topic, path in sources:
            for record in read_records(topic, path):
                try:
                    if record.problem is not None:
                        raise record.problem
                    event = codec.decode(record.topic, record.value)
                except DecodeError as exc:
                    rejected[exc.reason.value] += 1
                    if len(samples) < _SAMPLES:
                        samples.append(f"{record.source}: {exc}")
                    continue
                # Re-encoding publishes the current version, so old shapes are upcast once here.
                yield SimMessage(
                    position=position,
                    topic=record.topic,
                    key=codec.key_of(event),
                    value=codec.encode(event),
                    at=event.occurred_at,
                    event=event,
                    expected_reject=None,
                )
                position += 1

    return total, validated()


def run_publish(options: PublishOptions, progress: bool = False) -> PublishSummary:
    """Publish as `options` say and return what happened; raises SimulatorError on bad input."""
    rejected: Counter[str] = Counter()
    reject_samples: list[str] = []
    if options.from_files:
        total, messages = _from_files(options, Codec(), rejected, reject_samples)
        description = "backfilling"
    else:
        total, messages = _simulated(options)
        description = "simulating"
    began = time.monotonic()
    if options.out_dir is not None:
        with ExportWriter(options.out_dir, options.file_format) as writer:
            file_sink = FileSink(writer)
            _pump(messages, file_sink, None, progress, total, description)
        return PublishSummary(
            mode=options.mode,
            destination=str(options.out_dir),
            sent=dict(writer.written),
            malformed=dict(file_sink.malformed),
            rejected=dict(rejected),
            reject_samples=tuple(reject_samples),
            skipped=writer.skipped,
            delivery_failures=0,
            failure_samples=(),
            seconds=time.monotonic() - began,
        )
    kafka = KafkaSink(options)
    kafka.check_reachable()
    bucket = TokenBucket(options.rate) if options.rate is not None else None
    try:
        _pump(messages, kafka, bucket, progress, total, description)
    finally:
        kafka.close()
    return PublishSummary(
        mode=options.mode,
        destination=options.bootstrap,
        sent=dict(kafka.delivered),
        malformed=dict(kafka.malformed),
        rejected=dict(rejected),
        reject_samples=tuple(reject_samples),
        skipped=0,
        delivery_failures=kafka.failures,
        failure_samples=tuple(kafka.failure_samples),
        seconds=time.monotonic() - began,
        warnings=tuple(kafka.client_errors),
    )


def _pump(
    messages: Iterator[SimMessage],
    sink: Sink,
    bucket: TokenBucket | None,
    progress: bool,
    total: int,
    description: str,
) -> None:
    with _progress_bar(progress, total, description) as advance:
        done = 0
        for message in messages:
            if bucket is not None:
                delay = bucket.take()
                if delay > 0:
                    sink.wait(delay)
            sink.send(message)
            done += 1
            if done % 512 == 0:
                advance(done, False)
        advance(done, True)
