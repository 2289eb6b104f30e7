"""promtool accepts deploy/prometheus: the scrape config, the alert rules and their unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
