"""The export file formats; a module of its own so the command line can name them cheaply."""

from __future__ import annotations

from enum import StrEnum


class FileFormat(StrEnum):
    """How file mode writes sheets; every other topic is always JSON lines."""

    JSONL = "jsonl"
    CSV = "csv"
