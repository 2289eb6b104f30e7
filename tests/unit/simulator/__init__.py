"""Unit tests of the upstream simulator and its publisher (no broker needed)."""
