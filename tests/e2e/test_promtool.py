"""promtool accepts deploy/prometheus (scrape config, alert rules, their unit tests) and the
metrics both services export."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

import streams.metrics
import trainer.metrics
from tests.e2e.conftest import DEPLOY, require_program

pytestmark = pytest.mark.e2e

PROMETHEUS_DIR = DEPLOY / "prometheus"


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    binary = require_program("promtool")
    done = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_scrape_config_is_valid_and_finds_the_rules() -> None:
    output = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: prometheus.yml is valid" in output
    assert "1 rule files found" in output


def test_alert_rules_are_valid() -> None:
    output = promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in output


def test_alert_rules_pass_their_unit_tests() -> None:
    output = promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in output


def test_both_registries_pass_promtool_check_metrics() -> None:
    """The lint on what each service exports before any event (live scrapes: test_live_metrics)."""
    registries = {"worker": REGISTRY, "trainer": trainer.metrics.REGISTRY}
    assert streams.metrics.BUILD_INFO is not None  # the import registers the worker's metrics
    for service, registry in registries.items():
        done = subprocess.run(
            [require_program("promtool"), "check", "metrics"],
            input=generate_latest(registry),
            capture_output=True,
            timeout=60,
            check=False,
        )
        problems = (done.stdout + done.stderr).decode().strip()
        assert (done.returncode, problems) == (0, ""), f"{service}:\n{problems}"
