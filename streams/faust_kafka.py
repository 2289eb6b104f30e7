"""The worker's Faust app connects as every other client does: broker URLs and credentials from
the one KafkaConnection (edge knows no Faust, so the translation lives here)."""

from __future__ import annotations

from faust.auth import Credentials, SASLCredentials, SSLCredentials

from edge.kafka import KafkaConnection


def broker_credentials(kafka: KafkaConnection) -> Credentials | None:
    """Faust's `broker_credentials` for the connection; None on PLAINTEXT."""
    auth = kafka.broker_auth()
    if auth is None:
        return None
    if auth.mechanism is None:
        return SSLCredentials(auth.ssl_context)
    return SASLCredentials(
        username=auth.username,
        password=auth.password.get_secret_value() if auth.password is not None else None,
        ssl_context=auth.ssl_context,
        mechanism=auth.mechanism.value,
    )
