"""End-to-end fixtures: the worker and the trainer as processes, and the real peers they meet.

Peers are real programs (kcat, promtool, prometheus): a missing one fails the test with the
reason and the fix, it is never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.factories import ROOT, wait_until
from tests.integration.streams.conftest import Workers, free_port

DEPLOY = ROOT / "deploy"


def require_program(name: str) -> str:
    """The path of `name`, or a failed test that says how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed, and the end-to-end tests need it as a real peer. "
            "`make setup` installs it (deploy/local/system-deps.sh: Debian packages kcat and "
            "prometheus); elsewhere install it with your package manager.",
            pytrace=False,
        )
    return path


@pytest.fixture
def services(stack: Stack, fresh_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Workers and a trainer on topics, consumer groups and a database private to one test."""
    group = Workers(stack, fresh_database_url, tmp_path)
    # Faust's data directory inside the test's own tmp_path, removed with it.
    group.extra_env["RETRAINER_WORKER_DATA_DIR"] = str(tmp_path / "faust")
    try:
        yield group
    finally:
        group.close()


@dataclass
class Prometheus:
    """A Prometheus server started by a test, and its HTTP API."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        address = f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"
        with urllib.request.urlopen(address, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of `promql` now: a list of {metric: labels, value: [ts, text]}."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The single value of `promql` now, or None while it has no result."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql} returned several series: {result}"
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def scrape_config(jobs: dict[str, list[str]], rule_files: list[Path]) -> str:
    """A Prometheus config that scrapes each job's targets every second.

    JSON is YAML, so the config is written with the json module (PyYAML is not a dependency).
    """
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }
    return json.dumps(config, indent=2)


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start the Debian `prometheus` binary on a free loopback port; stopped after the test."""
    binary = require_program("prometheus")
    started: list[Prometheus] = []

    def start(jobs: dict[str, list[str]], rule_files: list[Path]) -> Prometheus:
        home = tmp_path / f"prometheus-{len(started)}"
        home.mkdir()
        config = home / "prometheus.yml"
        config.write_text(scrape_config(jobs, rule_files))
        port = free_port()
        log = home / "prometheus.log"
        with log.open("ab") as handle:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=True,
            )
        server = Prometheus(port, proc, log)
        started.append(server)
        wait_until(server.ready, 60, f"prometheus on port {port} to be ready")
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
