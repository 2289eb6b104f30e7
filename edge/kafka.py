"""How every Kafka client of the worker, the trainer and the tools connects: one typed object.

`KafkaConnection` holds the bootstrap servers and the security settings (PLAINTEXT, SSL, SASL
with PLAIN or SCRAM, over plain TCP or TLS) and turns them into each client library's own
configuration: a librdkafka (confluent-kafka) dict, aiokafka keyword arguments, and a plain
description of the broker credentials that the worker turns into Faust's. `KafkaSettings` reads
them from `RETRAINER_KAFKA_*` variables; both services' settings inherit it.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
PROTOCOL_SETTING = "RETRAINER_KAFKA_SECURITY_PROTOCOL"


class SecurityProtocol(StrEnum):
    """librdkafka's `security.protocol` (Kafka's names)."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    """The SASL mechanisms every client here speaks (librdkafka, aiokafka and Faust alike)."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettingsError(ValueError):
    """A Kafka connection that cannot work as configured; the message names the variable."""


@dataclass(frozen=True)
class BrokerAuth:
    """What a Faust app needs to authenticate, without Faust: SASL or TLS (or both), or None.

    `ssl_context` is set for the TLS protocols; `mechanism`, `username` and `password` for SASL.
    """

    protocol: SecurityProtocol
    ssl_context: ssl.SSLContext | None
    mechanism: SaslMechanism | None = None
    username: str | None = None
    password: SecretStr | None = None


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how a client proves who it is (the password stays a secret)."""

    bootstrap: str = DEFAULT_BOOTSTRAP
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.PLAIN
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        problems = connection_problems(
            self.security_protocol,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password,
            ssl_cafile=self.ssl_cafile,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        if problems:
            raise KafkaSettingsError("; ".join(problems.values()))
        if not self.servers:
            raise KafkaSettingsError("RETRAINER_KAFKA_BOOTSTRAP names no server")

    @property
    def servers(self) -> list[str]:
        """The bootstrap servers, one `host:port` each."""
        return [part.strip() for part in self.bootstrap.split(",") if part.strip()]

    def describe(self) -> str:
        """For messages: the address and how we authenticate there, never the password."""
        how = self.security_protocol.value
        if self.security_protocol.sasl:
            how += f", {self.sasl_mechanism.value} as {self.sasl_username}"
        return f"{self.bootstrap} ({how})"

    def confluent(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A confluent-kafka (librdkafka) configuration, with `overrides` (librdkafka's names,
        `{"linger.ms": 5, "logger": ...}`) on top."""
        config: dict[str, Any] = {
            "bootstrap.servers": ",".join(self.servers),
            "security.protocol": self.security_protocol.value,
        }
        if self.security_protocol.sasl:
            config["sasl.mechanism"] = self.sasl_mechanism.value
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = _secret(self.sasl_password)
        if self.ssl_cafile is not None:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile is not None:
            config["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile is not None:
            config["ssl.key.location"] = str(self.ssl_keyfile)
        config.update(overrides or {})
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for Python clients (aiokafka, Faust); None without TLS."""
        if not self.security_protocol.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (consumer, producer or admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol.value,
        }
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.security_protocol.sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism.value
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = _secret(self.sasl_password)
        return kwargs

    def broker_auth(self) -> BrokerAuth | None:
        """How a Faust app authenticates (see BrokerAuth); None on PLAINTEXT."""
        if self.security_protocol is SecurityProtocol.PLAINTEXT:
            return None
        if not self.security_protocol.sasl:
            return BrokerAuth(self.security_protocol, self.ssl_context())
        return BrokerAuth(
            self.security_protocol,
            self.ssl_context(),
            self.sasl_mechanism,
            self.sasl_username,
            self.sasl_password,
        )

    def faust_broker(self) -> list[str]:
        """Faust's broker URLs, one per bootstrap server."""
        return [f"kafka://{server}" for server in self.servers]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def connection_problems(
    protocol: SecurityProtocol,
    *,
    sasl_username: str | None,
    sasl_password: SecretStr | None,
    ssl_cafile: Path | None,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
) -> dict[str, str]:
    """What is wrong with a combination of settings: field name → a line naming the variables.

    SASL protocols need a user and a password; credentials or certificates that the chosen
    protocol would never send are refused too, since a forgotten protocol setting otherwise
    shows up only as a broker hanging up on the client.
    """
    problems: dict[str, str] = {}
    named = f"{PROTOCOL_SETTING}={protocol.value}"
    for field, value in (("username", sasl_username), ("password", sasl_password)):
        variable = f"RETRAINER_KAFKA_SASL_{field.upper()}"
        given = bool(value.get_secret_value() if isinstance(value, SecretStr) else value)
        if protocol.sasl and not given:
            problems[f"kafka_sasl_{field}"] = f"{variable} must be set with {named}"
        elif given and not protocol.sasl:
            problems[f"kafka_sasl_{field}"] = (
                f"{variable} is set but {named} sends no SASL credentials; "
                f"set {PROTOCOL_SETTING} to SASL_PLAINTEXT or SASL_SSL"
            )
    for field, path in (
        ("cafile", ssl_cafile),
        ("certfile", ssl_certfile),
        ("keyfile", ssl_keyfile),
    ):
        if path is not None and not protocol.tls:
            problems[f"kafka_ssl_{field}"] = (
                f"RETRAINER_KAFKA_SSL_{field.upper()} is set but {named} does not use TLS; "
                f"set {PROTOCOL_SETTING} to SSL or SASL_SSL"
            )
    if ssl_keyfile is not None and ssl_certfile is None and "kafka_ssl_keyfile" not in problems:
        problems["kafka_ssl_keyfile"] = (
            "RETRAINER_KAFKA_SSL_KEYFILE is set without RETRAINER_KAFKA_SSL_CERTFILE, the "
            "certificate it belongs to"
        )
    return problems


class KafkaSettings(BaseSettings):
    """The `RETRAINER_KAFKA_*` connection settings that every service and tool reads."""

    # hide_input_in_errors: a refused setting is named, never echoed (it may be a secret).
    model_config = SettingsConfigDict(
        env_prefix="RETRAINER_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap: str = Field(
        default=DEFAULT_BOOTSTRAP, description="Kafka bootstrap servers (comma-separated)"
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default=SecurityProtocol.PLAINTEXT,
        description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default=SaslMechanism.PLAIN,
        description="`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a SASL protocol)",
    )
    kafka_sasl_username: str | None = Field(
        default=None, validate_default=True, description="SASL user (SASL protocols need it)"
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="SASL password (secret; SASL protocols need it)",
    )
    kafka_ssl_cafile: FilePath | None = Field(
        default=None, description="PEM file of the CA that signed the brokers' certificates"
    )
    kafka_ssl_certfile: FilePath | None = Field(
        default=None, description="PEM client certificate, for brokers that ask for one"
    )
    kafka_ssl_keyfile: FilePath | None = Field(
        default=None,
        validate_default=True,
        description="PEM private key of that client certificate",
    )

    @field_validator(
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
    )
    @classmethod
    def _usable(cls, value: Any, info: ValidationInfo) -> Any:
        """Each refusal is raised on the field whose variable it names."""
        protocol = info.data.get("kafka_security_protocol")
        if protocol is None:  # refused itself: that error says what to fix
            return value
        data: dict[str, Any] = {**info.data, str(info.field_name): value}
        problems = connection_problems(
            protocol,
            sasl_username=data.get("kafka_sasl_username"),
            sasl_password=data.get("kafka_sasl_password"),
            ssl_cafile=data.get("kafka_ssl_cafile"),
            ssl_certfile=data.get("kafka_ssl_certfile"),
            ssl_keyfile=data.get("kafka_ssl_keyfile"),
        )
        problem = problems.get(str(info.field_name))
        if problem is not None:
            # Reported as "<variable> is not valid: <problem>": the variable is said once.
            raise ValueError(problem.removeprefix(f"RETRAINER_{str(info.field_name).upper()} "))
        return value

    @property
    def kafka(self) -> KafkaConnection:
        """The connection every Kafka client of this service is built from."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )
