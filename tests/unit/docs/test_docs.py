"""README.md and docs/ keep up with the code: settings, topics, metrics, alerts, endpoints.

Every check reads files and imports modules only (no stack). Each fails with what is missing, so
a setting, topic, metric, alert or endpoint added to the code without its row here is caught.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pytest
import typer.main
import yaml

from retrainer.cli import app
from retrainer.stack.settings import StackSettings
from schemas.topics import TOPICS
from tests.e2e.promql import exported_families
from tests.factories import ROOT
from tests.unit.docs.settings_reference import markdown_section, missing_rows

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200

OPENAPI = ROOT / "schemas" / "openapi.json"
# The OpenAPI document is generated from the API's models by a change of its own; until it is in
# the tree, the docs may link it and name `GET /openapi.json` ahead of it. Exactly these two.
LINK_NOT_YET_IN_THE_TREE = OPENAPI.resolve()
ENDPOINT_NOT_YET_SERVED = "/openapi.json"


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def section(path: Path, heading: str) -> str:
    body = markdown_section(path.read_text(), heading)
    assert body, f"{path.relative_to(ROOT)} has no section {heading!r}"
    return body


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `")]


# -- reference tables -----------------------------------------------------------------------------


def test_every_setting_has_its_variable_and_default() -> None:
    missing = missing_rows(DOCS / "configuration.md")
    assert missing == {}, (
        "run `python -m tests.unit.docs.settings_reference` and add these rows to "
        "docs/configuration.md"
    )


def test_every_topic_has_a_row_with_its_key_event_and_schema() -> None:
    doc = DOCS / "topics.md"
    rows = table_rows(section(doc, "Topics and schemas"))
    for name, topic in TOPICS.items():
        found = [row for row in rows if row.startswith(f"| `{name}` |")]
        assert len(found) == 1, f"docs/topics.md: no single row for topic {name}"
        [row] = found
        assert f"`{topic.key_field}`" in row, name
        assert f"`{topic.event_type.__name__}`" in row, name
        assert f"(../schemas/json/{name}.json)" in row, name
    linked = set(re.findall(r"\(\.\./schemas/json/([^)]+)\)", doc.read_text()))
    on_disk = {path.name for path in (ROOT / "schemas" / "json").glob("*.json")}
    assert linked == on_disk


def test_every_topic_name_setting_is_a_topic() -> None:
    """The renaming table names the same topics as the topic table (and the internal one)."""
    rows = table_rows(section(DOCS / "configuration.md", "Topic names"))
    defaults = {m.group(1) for row in rows if (m := re.match(r"\| `[A-Z_]+` \| `([^`]+)`", row))}
    assert set(TOPICS) <= defaults


def test_every_exported_metric_is_documented() -> None:
    documented = section(DOCS / "metrics.md", "Metrics")
    names = set().union(*exported_families().values())
    ours = {name for name in names if name.startswith("retrainer_")}
    assert len(ours) >= 20
    missing = sorted(name for name in ours if f"| `{name}` |" not in documented)
    assert missing == []


def test_every_alert_says_what_to_do() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert alerts
    table = section(DOCS / "operations.md", "Alerts")
    missing = [name for name in alerts if f"| `{name}` |" not in table]
    assert missing == []


# -- endpoints ------------------------------------------------------------------------------------


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def served_endpoints() -> set[str]:
    """Paths the worker serves: its Faust pages and routes, and the OpenAPI document's paths."""
    found: set[str] = set()
    for source in (ROOT / "streams").rglob("*.py"):
        found |= set(re.findall(r'\.(?:page|route)\(\s*"(/[^"]*)"', source.read_text()))
    if OPENAPI.exists():
        import json

        found |= set(json.loads(OPENAPI.read_text()).get("paths", {}))
        found.add("/openapi.json")
    return {_template(path) for path in found}


def named_endpoints(text: str) -> set[str]:
    return {_template(path) for path in re.findall(r"`(?:GET|POST) (/[^` ?]*)", text)}


def test_the_endpoints_the_docs_name_exist() -> None:
    served = served_endpoints()
    assert len(served) >= 10
    for path in documents():
        unknown = named_endpoints(path.read_text()) - served
        if not OPENAPI.exists():
            unknown.discard(ENDPOINT_NOT_YET_SERVED)
        assert unknown == set(), f"{path.relative_to(ROOT)} names endpoints nobody serves"


def test_every_endpoint_served_is_in_the_api_reference() -> None:
    table = "\n".join(table_rows(section(DOCS / "api.md", "HTTP API")))
    missing = served_endpoints() - named_endpoints(table)
    assert missing == set(), "add a row to the table of docs/api.md"


def test_the_api_reference_links_its_machine_readable_contract() -> None:
    text = (DOCS / "api.md").read_text()
    assert "(../schemas/openapi.json)" in text
    assert "`GET /openapi.json`" in text


# -- commands -------------------------------------------------------------------------------------


def _code(text: str) -> list[str]:
    """Fenced code lines and inline code spans: where the docs show commands."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    outside = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    lines = [line for block in blocks for line in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", outside)


def test_every_retrainer_command_named_exists() -> None:
    cli = typer.main.get_command(app)
    commands = cli.commands  # type: ignore[attr-defined]
    for path in documents():
        for code in _code(path.read_text()):
            for name, sub in re.findall(
                r"(?:^|[\s/(])retrainer ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", code
            ):
                assert name in commands, f"{path.relative_to(ROOT)}: `retrainer {name}` ({code})"
                group = commands[name]
                if sub and hasattr(group, "commands"):
                    assert sub in group.commands, f"{path.relative_to(ROOT)}: {code}"


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    for path in documents():
        for code in _code(path.read_text()):
            for target in re.findall(r"(?:^|\s)make (?:[A-Z_]+=\S+ )*([a-z][a-z-]*)", code):
                assert target in targets, f"{path.relative_to(ROOT)}: `make {target}` ({code})"


# -- the README is a map --------------------------------------------------------------------------


def test_the_readme_is_a_map() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    quickstart = section(README, "Quickstart")
    for command in ("make setup", "retrainer stack up", "make demo", "make test"):
        assert command in quickstart, command
    assert "```mermaid\nflowchart" in section(README, "Architecture")
    next_reads = section(README, "Where to read next")
    unlisted = [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in next_reads]
    assert unlisted == [], "every page of docs/ is listed under “Where to read next”"


def test_the_addresses_the_readme_gives_are_the_stacks_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in os.environ:
        if name.startswith("RETRAINER_"):
            monkeypatch.delenv(name)
    settings = StackSettings()
    text = README.read_text()
    assert settings.bootstrap in text
    assert settings.dsn in text


def test_the_earlier_systems_map_onto_retrainer() -> None:
    mapping = section(DOCS / "migrating.md", "Coming from the earlier systems")
    for seed in (
        "GET /retraining/status",
        "POST /retraining/trigger",
        "`model_retraining_log`",
        "`customer_training_status`",
        "`customers`",
        "`check-and-retrain`",
        "`retrainer check",
        "POST /expenses/upload",
        "POST /sheets/{id}/analyze",
        "POST /analysis/bulk",
        "POST /analysis/train",
        "`scheduled-training`",
        "`retrainer scheduled-training",
    ):
        assert seed in mapping, seed


# -- links ----------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in {"L", "N"})
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"`[^`\n]*`", "code", text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def test_every_relative_link_points_at_a_file_and_heading_that_exist() -> None:
    broken: list[str] = []
    checked = 0
    for path in documents():
        for link in relative_links(path):
            target, _, fragment = link.partition("#")
            file = (path.parent / target).resolve() if target else path
            checked += 1
            if not file.exists():
                if file == LINK_NOT_YET_IN_THE_TREE:
                    continue
                broken.append(f"{path.relative_to(ROOT)}: {link} (no such file)")
            elif fragment and file.suffix == ".md" and fragment not in anchors(file):
                broken.append(f"{path.relative_to(ROOT)}: {link} (no such heading)")
    assert checked >= 30
    assert broken == []
