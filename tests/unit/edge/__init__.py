"""Unit tests of the edge package."""
