"""Run real worker processes with topics, consumer group and database private to each test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.bootstrap import ensure_topics
from streams.settings import StreamsSettings
from tests.conftest import Stack
from tests.factories import ROOT, new_prefix, start_worker, wait_until, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Workers:
    """Worker processes sharing one consumer group, topics and database."""

    stack: Stack
    database_url: str
    logs: Path
    prefix: str = field(default_factory=new_prefix)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def env(self, port: int) -> dict[str, str]:
        return worker_env(
            self.stack.bootstrap,
            self.database_url,
            self.prefix,
            port,
            data_dir=self.logs,
            **self.extra_env,
        )

    def create_topics(self) -> None:
        env = self.env(0)
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith("RETRAINER_")})
        try:
            ensure_topics(StreamsSettings())
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self) -> int:
        port = free_port()
        proc = start_worker(self.env(port), self.logs / f"worker-{port}.log")
        self.procs.append(proc)
        self.ports.append(port)
        wait_until(lambda: self.alive(proc, port), 90, f"worker on port {port} to answer /health")
        return port

    def start_trainer(self, **extra: str) -> int:
        """Run the trainer service on the same topics and database; returns its metrics port."""
        port = free_port()
        env = self.env(0)
        env.update(
            {
                "RETRAINER_TRAINER_GROUP_ID": f"{self.prefix}-trainer",
                "RETRAINER_TRAINER_METRICS_PORT": str(port),
                **extra,
            }
        )
        handle = (self.logs / "trainer.log").open("ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "retrainer.cli", "trainer"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        finally:
            handle.close()
        self.procs.append(proc)

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the trainer exited with {proc.returncode}; see {self.logs}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(answers, 90, "the trainer to answer /health")
        return port

    def metric(self, name: str, port: int | None = None, **labels: str) -> float:
        """The sum of a metric's samples on a worker whose labels include `labels`."""
        total = 0.0
        for line in self.get("/metrics", port).splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def alive(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"a worker exited with {proc.returncode}; see {self.logs}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def assert_healthy(self, port: int) -> None:
        """The worker's /health says ok, with PostgreSQL and Kafka both reached."""
        health = self.get("/health", port)
        assert {k: health[k] for k in ("status", "database", "kafka")} == {
            "status": "ok",
            "database": True,
            "kafka": True,
        }
        assert {name: check["ok"] for name, check in health["checks"].items()} == {
            "database": True,
            "kafka": True,
        }

    def get(self, path: str, port: int | None = None) -> Any:
        url = f"http://127.0.0.1:{port or self.ports[-1]}{path}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if path != "/metrics" else body.decode()

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[index]
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)

    def close(self) -> None:
        """For the fixture that owns the prefix: stop everything and delete the group's topics
        (Faust's changelogs too), so test runs do not pile up on a shared broker."""
        self.stop_all()
        delete_prefixed_topics(self.stack.bootstrap, self.prefix)

    def stop_all(self) -> None:
        """Stop every process (the topics stay: a test may start workers on them again)."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


_LEADERSHIP_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._TRANSPORT,
}


def delete_prefixed_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named `<prefix>-…`, so test runs do not pile up on a shared broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=15).topics if t.startswith(f"{prefix}-")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)


@pytest.fixture
def workers(stack: Stack, fresh_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(stack, fresh_database_url, tmp_path)
    yield group
    group.close()


def _end_offset(consumer: Consumer, partition: TopicPartition) -> int:
    """The partition's high watermark; a broker just restarted may not lead it for a moment."""
    found: list[int] = []

    def asked() -> bool:
        try:
            found.append(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in _LEADERSHIP_MOVING:
                raise
            return False
        return True

    wait_until(asked, 60, f"a leader for {partition.topic}[{partition.partition}]")
    return found[-1]


def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message now in `topic`, read to the end offsets captured first."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{new_prefix()}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: _end_offset(consumer, TopicPartition(topic, p)) for p in partitions}
        wanted = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        out: list[tuple[bytes | None, bytes]] = []
        done: set[int] = set()

        def drained() -> bool:
            for message in consumer.consume(500, timeout=0.5):
                if message.error():
                    continue
                out.append((message.key(), message.value() or b""))
                if message.offset() + 1 >= wanted[message.partition()]:
                    done.add(message.partition())
            return done >= set(wanted)

        wait_until(drained, 60, f"reading {topic} to its end")
        return out
    finally:
        consumer.close()
