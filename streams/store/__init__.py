"""PostgreSQL access of the worker: one module per table group."""
