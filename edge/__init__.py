"""What the worker and the trainer share at their edges (logging today; Kafka and PostgreSQL
clients as they move here). Imports neither service."""
