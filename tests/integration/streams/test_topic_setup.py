"""The worker makes every topic it writes before its Kafka clients start, Faust's table
changelog included: a policy change written before the producer knew of its changelog topic
crashed the policy agent (aiokafka cannot partition for a topic missing from its metadata)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.conftest import Stack
from tests.factories import wait_until
from tests.integration.streams.conftest import Workers, delete_prefixed_topics

pytestmark = pytest.mark.integration


def test_the_policy_changelog_is_made_compacted_with_the_worker_topics(
    stack: Stack, tmp_path: Path
) -> None:
    workers = Workers(stack, stack.dsn, tmp_path)
    try:
        workers.create_topics()
        admin = AdminClient({"bootstrap.servers": stack.bootstrap})
        changelog = f"{workers.prefix}-worker-policy-state-changelog"
        # Kafka confirms a creation before every metadata answer lists the topic.
        wait_until(
            lambda: changelog in admin.list_topics(timeout=15).topics, 30, f"{changelog} listed"
        )
        topics = admin.list_topics(timeout=15).topics
        signals = topics[workers.topic("policy-signals")]
        assert len(topics[changelog].partitions) == len(signals.partitions)
        resource = ConfigResource(ConfigResource.Type.TOPIC, changelog)
        [config] = [f.result(timeout=30) for f in admin.describe_configs([resource]).values()]
        assert config["cleanup.policy"].value == "compact"
    finally:
        delete_prefixed_topics(stack.bootstrap, workers.prefix)
