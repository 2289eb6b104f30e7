"""Unit tests of the trainer: features, selection, evaluation, gate, versions, artifacts."""
