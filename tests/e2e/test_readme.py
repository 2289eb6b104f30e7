"""README.md keeps up with the code: every setting, topic, schema, metric, alert and endpoint."""

from __future__ import annotations

import re

import pytest
import yaml

from schemas.topics import TOPICS
from tests.e2e.conftest import DEPLOY
from tests.e2e.promql import exported_families
from tests.e2e.settings_reference import missing_rows, readme_section
from tests.factories import ROOT

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"


def section(heading: str) -> str:
    """A `##` section with its `###` subsections."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_every_setting_has_its_variable_and_default() -> None:
    missing = missing_rows(README)
    assert missing == {}, "run `python -m tests.e2e.settings_reference` and add these rows"


def test_every_topic_has_a_row_with_its_key_and_schema() -> None:
    rows = [line for line in section("Topics and schemas").splitlines() if line.startswith("| `")]
    for name, topic in TOPICS.items():
        [row] = [r for r in rows if r.startswith(f"| `{name}` |")]
        assert f"`{topic.key_field}`" in row, name
        assert f"`{topic.event_type.__name__}`" in row, name
        assert f"(schemas/json/{name}.json)" in row, name
    linked = set(re.findall(r"\(schemas/json/([^)]+)\)", README.read_text()))
    on_disk = {path.name for path in (ROOT / "schemas" / "json").glob("*.json")}
    assert linked == on_disk


def test_every_exported_metric_is_documented() -> None:
    documented = section("Metrics")
    names = set().union(*exported_families().values())
    ours = {name for name in names if name.startswith("retrainer_")}
    assert len(ours) >= 20
    missing = sorted(name for name in ours if f"`{name}`" not in documented)
    assert missing == []


def test_every_alert_says_what_to_do() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    table = readme_section(README.read_text(), "Alerts")
    missing = [name for name in alerts if f"| `{name}` |" not in table]
    assert missing == []


def test_the_endpoints_it_names_exist() -> None:
    from streams.web.routes import ROUTES

    served = {re.sub(r"\{[^}]+\}", "{}", route.path) for route in ROUTES}
    named = re.findall(r"`(?:GET|POST) (/[^` ?]*)", README.read_text())
    assert named
    unknown = sorted({p for p in named if re.sub(r"\{[^}]+\}", "{}", p) not in served})
    assert unknown == []


def test_the_earlier_systems_map_onto_retrainer() -> None:
    mapping = section("Coming from the earlier systems")
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


def test_quickstart_and_architecture() -> None:
    quickstart = section("Quickstart")
    assert "make demo" in quickstart
    assert "make test" in quickstart
    assert "```mermaid\nflowchart" in section("Architecture")
