"""Exports one JSON Schema (draft 2020-12) per topic to schemas/json/, for upstream producers.

``python -m schemas.jsonschema`` writes the files; ``--check`` exits 1 when they are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.topics import TOPICS, Topic

DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_DIR = Path(__file__).resolve().parent / "json"
"""Where the exported schemas live (inside the package, so they ship with it)."""


def topic_schema(topic: Topic) -> dict[str, Any]:
    """The JSON Schema a producer validates one message of `topic` against."""
    schema = topic.event_type.model_json_schema(mode="validation")
    schema["$schema"] = DIALECT
    # Annotations for people and tools; validators ignore keywords they do not know.
    schema["x-kafka-topic"] = topic.name
    schema["x-kafka-key"] = topic.key_field
    return schema


def render(schema: Mapping[str, Any]) -> str:
    """The file text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> text, for every topic in the registry."""
    return {f"{name}.json": render(topic_schema(topic)) for name, topic in TOPICS.items()}


def stale_files(directory: Path = JSON_DIR) -> list[str]:
    """Files in `directory` that are missing, differ from the code, or belong to no topic."""
    expected = expected_files()
    problems = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    if directory.is_dir():
        problems += sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    return sorted(problems)


def write(directory: Path = JSON_DIR) -> list[str]:
    """Write every schema into `directory`, remove ones of topics that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    changed = stale_files(directory)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m schemas.jsonschema",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is stale"
    )
    parser.add_argument("--dir", type=Path, default=JSON_DIR, help="output directory")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        for name in stale:
            sys.stderr.write(f"stale: {args.dir / name}\n")
        if stale:
            sys.stderr.write("run `python -m schemas.jsonschema` and commit the result\n")
            return 1
        return 0
    for name in write(args.dir):
        sys.stdout.write(f"wrote {args.dir / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
