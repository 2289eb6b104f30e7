"""Integration tests of the stream worker on the real broker and PostgreSQL."""
