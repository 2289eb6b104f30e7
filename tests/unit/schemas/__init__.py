"""Unit tests of the event contracts, the codec and the exported JSON Schemas."""
