"""A worker that loses partitions in a rebalance stops exporting their lag: each partition's lag
comes from the one worker that owns it, never from a stale gauge left on the one before."""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from edge.settings import TopicNames
from schemas.base import Event
from tests.factories import customer, label, publish, sheet, statement, wait_until
from tests.integration.streams.conftest import Workers

Partition = tuple[str, str]  # (upstream topic, partition)


def lagging(workers: Workers, port: int) -> set[Partition]:
    """The upstream partitions whose lag the worker on `port` exports."""
    text = workers.get("/metrics", port)
    return {
        (sample.labels["topic"], sample.labels["partition"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "retrainer_consumer_lag_messages"
    }


def feed(workers: Workers, start: int, count: int) -> None:
    """`count` events on each upstream topic, their keys spread over its partitions."""
    sheets = [sheet(start + i, lines=1, prefix=workers.prefix) for i in range(count)]
    customers = [customer(start + i, workers.prefix) for i in range(count)]
    events: dict[str, Sequence[Event]] = {
        "expense-sheet": sheets,
        "expense-label": [label(s.lines[0].expense_id, is_fraud=False) for s in sheets],
        "customer-created": customers,
        "customer-activity": [statement(c.customer_id, 0) for c in customers],
    }
    for topic, items in events.items():
        publish(workers.stack.bootstrap, workers.topic(topic), items)


def test_lag_of_partitions_lost_in_a_rebalance_is_removed(workers: Workers) -> None:
    workers.create_topics()
    names = [workers.topic(t) for t in TopicNames.model_construct().upstream()]
    admin = AdminClient({"bootstrap.servers": workers.stack.bootstrap})

    def all_listed() -> object:
        # A topic just created may be missing from the broker's metadata for a moment.
        topics = admin.list_topics(timeout=10).topics
        return topics if all(name in topics for name in names) else None

    listed = wait_until(all_listed, 30, "the new topics in the broker's metadata")
    assert isinstance(listed, dict)
    every = {
        (name.removeprefix(f"{workers.prefix}-"), str(p))
        for name in names
        for p in listed[name].partitions
    }
    assert len(every) > 1, "a rebalance needs partitions to share"

    first = workers.start()
    feed(workers, 0, 100)
    wait_until(
        lambda: lagging(workers, first) == every,
        90,
        "the only worker to export the lag of every upstream partition",
    )

    # A worker exports the lag of a partition once it has read from it: events keep coming
    # until the second worker has read from each partition it was given.
    second = workers.start()
    seen: dict[str, set[Partition]] = {}
    fed = [1000]

    def shared_out() -> bool:
        seen["first"], seen["second"] = lagging(workers, first), lagging(workers, second)
        if (
            seen["second"]
            and not seen["first"] & seen["second"]
            and seen["first"] | seen["second"] == every
        ):
            return True
        feed(workers, fed[0], 10)
        fed[0] += 10
        return False

    try:
        wait_until(shared_out, 90, "each partition's lag to come from its one owner")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; lag exported by each worker: {seen}") from None
