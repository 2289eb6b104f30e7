"""Every setting of every settings class, as rows of docs/configuration.md.

`python -m tests.unit.docs.settings_reference` prints the tables the configuration reference is
written from; test_docs.py checks that each setting still has its row (environment variable and
default) in the right section.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from edge.logs import LogSettings
from edge.settings import TopicNames
from retrainer.stack.settings import StackSettings
from streams.settings import StreamsSettings
from trainer.settings import TrainerSettings

SECTIONS: dict[str, type[BaseModel]] = {
    "Stack settings": StackSettings,
    "Worker settings": StreamsSettings,
    "Topic names": TopicNames,
    "Trainer settings": TrainerSettings,
    "Log settings": LogSettings,
}
"""Heading in docs/configuration.md → the settings class whose variables that section lists."""

FACTORY_DEFAULTS: dict[tuple[type[BaseModel], str], str] = {
    (StackSettings, "home"): "~/.cache/retrainer"
}
"""Defaults computed at run time, as people read them."""


@dataclass(frozen=True)
class Setting:
    """One environment variable of one settings class."""

    owner: type[BaseModel]
    name: str
    variable: str
    default: str
    """As the docs show it: `unset`, or the value between backticks."""
    help: str


def default_text(owner: type[BaseModel], name: str, field: FieldInfo) -> str:
    if (owner, name) in FACTORY_DEFAULTS:
        return FACTORY_DEFAULTS[(owner, name)]
    value: Any = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def attribute_docs(owner: type) -> dict[str, str]:
    """The string literal under each field in the class body (its attribute docstring)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(owner)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


NESTED_PREFIXES: dict[type[BaseModel], str] = {TopicNames: "RETRAINER_TOPICS__"}
"""Models read as one nested settings field: their variables' prefix."""


def settings_of(owner: type[BaseModel]) -> list[Setting]:
    prefix = NESTED_PREFIXES.get(owner) or str(owner.model_config.get("env_prefix", ""))
    docs = attribute_docs(owner)
    return [
        Setting(
            owner=owner,
            name=name,
            variable=f"{prefix}{name}".upper(),
            default=default_text(owner, name, field),
            help=field.description or docs.get(name, ""),
        )
        for name, field in owner.model_fields.items()
        # A nested model has a section of its own (NESTED_PREFIXES).
        if field.annotation not in NESTED_PREFIXES
    ]


def all_settings() -> dict[str, list[Setting]]:
    return {section: settings_of(owner) for section, owner in SECTIONS.items()}


def shown(default: str) -> str:
    return default if default == "unset" else f"`{default}`"


def markdown() -> str:
    """The reference tables (meanings from the code where it has them, to be edited by hand)."""
    parts: list[str] = []
    for section, settings in all_settings().items():
        parts += [f"## {section}", "", "| environment variable | default | meaning |"]
        parts.append("|---|---|---|")
        parts += [f"| `{s.variable}` | {shown(s.default)} | {s.help} |" for s in settings]
        parts.append("")
    return "\n".join(parts)


def markdown_section(text: str, heading: str) -> str:
    """The body of the section titled `heading` (any level, with its subsections); '' if none."""
    lines = text.splitlines()
    titled = [
        (index, len(hashes))
        for index, line in enumerate(lines)
        for hashes, _, title in [line.partition(" ")]
        if hashes and set(hashes) == {"#"} and title.strip() == heading
    ]
    if not titled:
        return ""
    start, level = titled[0]
    body: list[str] = []
    fenced = False
    for line in lines[start + 1 :]:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            hashes = line.split(" ", 1)[0]
            if set(hashes) == {"#"} and len(hashes) <= level:
                break
        body.append(line)
    return "\n".join(body)


def missing_rows(reference: Path) -> dict[str, list[str]]:
    """Per section, the settings without a row that names their variable and default."""
    text = reference.read_text()
    missing: dict[str, list[str]] = {}
    for section, settings in all_settings().items():
        # (variable cell, default cell) of each table row
        rows = [
            (cells[1], cells[2])
            for line in markdown_section(text, section).splitlines()
            if len(cells := line.split("|")) >= 4
        ]
        for setting in settings:
            wanted = shown(setting.default)
            if not any(f"`{setting.variable}`" in name and wanted in dflt for name, dflt in rows):
                missing.setdefault(section, []).append(f"{setting.variable} (default {wanted})")
    return missing


if __name__ == "__main__":
    print(markdown())
