"""One Kafka connection for every client library, read from RETRAINER_KAFKA_* and checked."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from edge.kafka import (
    KafkaConnection,
    KafkaSettings,
    KafkaSettingsError,
    SaslMechanism,
    SecurityProtocol,
)
from schemas.diagnostics import settings_problem
from streams.faust_kafka import broker_credentials
from streams.settings import StreamsSettings
from trainer.settings import TrainerSettings

SASL = {
    "RETRAINER_KAFKA_BOOTSTRAP": "b1:9094,b2:9094",
    "RETRAINER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "RETRAINER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "RETRAINER_KAFKA_SASL_USERNAME": "svc",
    "RETRAINER_KAFKA_SASL_PASSWORD": "hunter2-secret",
}


def test_plaintext_by_default_with_the_bootstrap_kept() -> None:
    kafka = KafkaSettings().kafka
    assert kafka.confluent() == {
        "bootstrap.servers": "127.0.0.1:19092",
        "security.protocol": "PLAINTEXT",
    }
    assert kafka.aiokafka() == {
        "bootstrap_servers": ["127.0.0.1:19092"],
        "security_protocol": "PLAINTEXT",
    }
    assert kafka.broker_auth() is None
    assert broker_credentials(kafka) is None
    assert kafka.faust_broker() == ["kafka://127.0.0.1:19092"]


@pytest.mark.parametrize("settings_class", [KafkaSettings, StreamsSettings, TrainerSettings])
def test_both_services_read_the_same_sasl_settings(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[KafkaSettings]
) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    kafka = settings_class().kafka
    assert kafka.confluent({"linger.ms": 5}) == {
        "bootstrap.servers": "b1:9094,b2:9094",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "hunter2-secret",
        "linger.ms": 5,
    }
    assert kafka.aiokafka() == {
        "bootstrap_servers": ["b1:9094", "b2:9094"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "hunter2-secret",
    }
    credentials = broker_credentials(kafka)
    assert credentials is not None
    assert (credentials.protocol.value, credentials.mechanism.value) == (  # type: ignore[attr-defined]
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )
    assert "hunter2" not in repr(kafka) + kafka.describe() + repr(settings_class())
    assert kafka.describe() == "b1:9094,b2:9094 (SASL_PLAINTEXT, SCRAM-SHA-512 as svc)"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        (
            {"RETRAINER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RETRAINER_KAFKA_SASL_USERNAME": "u"},
            ["RETRAINER_KAFKA_SASL_PASSWORD"],
        ),
        (
            {"RETRAINER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            ["RETRAINER_KAFKA_SASL_PASSWORD", "RETRAINER_KAFKA_SASL_USERNAME"],
        ),
        ({"RETRAINER_KAFKA_SASL_PASSWORD": "hunter2-secret"}, ["RETRAINER_KAFKA_SASL_PASSWORD"]),
        ({"RETRAINER_KAFKA_SECURITY_PROTOCOL": "TLS"}, ["RETRAINER_KAFKA_SECURITY_PROTOCOL"]),
        ({"RETRAINER_KAFKA_SASL_MECHANISM": "GSSAPI"}, ["RETRAINER_KAFKA_SASL_MECHANISM"]),
        ({"RETRAINER_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"}, ["RETRAINER_KAFKA_SSL_CAFILE"]),
    ],
)
def test_a_connection_that_cannot_work_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: list[str]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        TrainerSettings()
    problem = str(settings_problem(caught.value))
    assert f"(fix or unset {', '.join(named)})" in problem
    assert "hunter2" not in problem


def test_tls_files_make_a_context_for_python_clients(tmp_path: Path) -> None:
    certificate = tmp_path / "client.pem"
    certificate.write_text("not a certificate")
    with pytest.raises(KafkaSettingsError, match="does not use TLS"):
        KafkaConnection("b:9093", ssl_cafile=certificate)
    with pytest.raises(KafkaSettingsError, match="without RETRAINER_KAFKA_SSL_CERTFILE"):
        KafkaConnection("b:9093", SecurityProtocol.SSL, ssl_keyfile=certificate)
    kafka = KafkaConnection("b:9093", SecurityProtocol.SSL)
    assert isinstance(kafka.ssl_context(), ssl.SSLContext)
    assert kafka.aiokafka()["security_protocol"] == "SSL"
    credentials = broker_credentials(kafka)
    assert credentials is not None
    assert credentials.protocol.value == "SSL"
    sasl_ssl = KafkaConnection(
        "b:9093",
        SecurityProtocol.SASL_SSL,
        SaslMechanism.PLAIN,
        "u",
        SecretStr("p"),
        ssl_cafile=certificate,
    )
    assert sasl_ssl.confluent()["ssl.ca.location"] == str(certificate)
