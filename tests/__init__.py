"""retrainer's tests: unit, integration (real Kafka + PostgreSQL), end-to-end, benchmarks."""
