"""Local stack: a real Apache Kafka broker (KRaft) and PostgreSQL, started without Docker."""
