"""Unit tests of the README and docs/: read against the code, without a stack."""
