"""Integration tests against the real local Kafka broker and PostgreSQL."""
