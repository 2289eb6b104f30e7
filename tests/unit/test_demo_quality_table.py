"""The demo's quality table: each trained version's F1 at its threshold beside the yardsticks."""

from __future__ import annotations

import io

from rich.console import Console

from retrainer.demo.observe import Request
from retrainer.demo.summary import quality_table


def _request(status: str | None, metrics: dict[str, float]) -> Request:
    return Request(
        request_id="r",
        family="delinquency",
        reason="new_customers",
        reason_text="New customers: 50",
        requested_by="policy",
        requested_at=0.0,
        status=status,
        version="v1",
        metrics=metrics,
        samples=100,
        duration_s=1.0,
        outcome_reason="",
        finished_at=1.0,
        promoted_at=None,
    )


def test_the_table_shows_the_f1_at_the_threshold_beside_the_yardsticks() -> None:
    trained = _request(
        "promoted",
        {
            "threshold": 0.31,
            "auc": 0.912,
            "f1": 0.702,
            "f1_at_0_5": 0.087,
            "best_f1": 0.731,
            "past_due_rule_f1": 0.655,
        },
    )
    skipped = _request("skipped", {})
    table = quality_table([trained, skipped, _request(None, {})])
    assert table is not None
    out = io.StringIO()
    # Piped, not a terminal: plain text, no colour codes.
    Console(file=out, width=200, force_terminal=False).print(table)
    text = out.getvalue()
    assert "\x1b[" not in text
    line = next(row for row in text.splitlines() if "v1" in row)
    for figure in ("0.310", "0.912", "0.702", "0.087", "0.731", "0.655"):
        assert figure in line
    assert "skipped" not in text


def test_no_trained_version_no_table() -> None:
    assert quality_table([_request("skipped", {})]) is None
