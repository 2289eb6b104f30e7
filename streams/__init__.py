"""The Faust worker: ingest, counters, retraining policy, scorers, HTTP API and metrics."""
