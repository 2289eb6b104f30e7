"""Unit tests of the stream worker's plain logic."""
