"""`retrainer publish`: options reach the publisher, results and errors reach the user."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from retrainer.simulator.cli import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the retrainer command."""

    register(app)
    return app


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["publish", *args])
    return result.exit_code, result.stdout, result.stderr


def test_file_mode_writes_every_topic_and_prints_a_json_summary(tmp_path: Path) -> None:
    code, out, _ = _run(
        "--customers", "20", "--statements-per-customer", "3", "--sheets", "10",
        "--seed", "5", "--bad-rate", "0.05", "--drift-at", "0.2",
        "--out", str(tmp_path), "--format", "csv", "--json",
    )  # fmt: skip
    assert code == 0
    summary = json.loads(out)
    assert summary["mode"] == "file"
    assert summary["ok"] is True
    assert summary["total_sent"] + summary["skipped"] == 20 + 20 * 3 + 10 + summary["sent"].get(
        "expense-label.jsonl", 0
    )
    assert {p.name for p in tmp_path.iterdir()} == {
        "customer-created.jsonl",
        "customer-activity.jsonl",
        "expense-label.jsonl",
        "expense-sheet.csv",
    }


def test_backfill_from_the_written_files(tmp_path: Path) -> None:
    _run("--customers", "5", "--sheets", "5", "--out", str(tmp_path / "export"), "--json")
    files = sorted(str(p) for p in (tmp_path / "export").iterdir())
    args = [arg for path in files for arg in ("--from-file", path)]
    code, out, _ = _run(*args, "--out", str(tmp_path / "again"), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["mode"] == "from-file-to-file"
    assert summary["total_rejected"] == 0
    for path in (tmp_path / "export").iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()


def test_human_summary_goes_to_stderr(tmp_path: Path) -> None:
    code, out, err = _run("--customers", "2", "--sheets", "2", "--out", str(tmp_path), "-q")
    assert code == 0
    assert out == ""
    assert "messages in" in err


def test_bad_input_exits_with_2_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "nothing.jsonl").write_text("")
    code, _, err = _run("--from-file", str(tmp_path / "nothing.jsonl"), "--out", str(tmp_path))
    assert code == 2
    assert "cannot tell the topic" in err
    code, _, err = _run("--topic", "no-equals-sign", "--out", str(tmp_path))
    assert code == 2
    code, _, err = _run("--end", "someday", "--out", str(tmp_path))
    assert code == 2


def test_end_now_anchors_the_scenario_before_the_present(tmp_path: Path) -> None:
    code, _, _ = _run("--customers", "3", "--sheets", "3", "--end", "now", "--out", str(tmp_path))
    assert code == 0
    last = (tmp_path / "customer-activity.jsonl").read_text().splitlines()[-1]
    _key, _, value = last.partition("\t")
    assert json.loads(value)["occurred_at"] >= "2026"
