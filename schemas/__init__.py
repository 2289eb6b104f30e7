"""Event contracts shared by every retrainer service: events, codec, JSON Schema, SQL migrations."""
