"""Trainer integration tests on the real local stack (Kafka + PostgreSQL)."""
