"""Scorers hot-reload on the real stack: every line scored once across swaps, tampering refused."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.base import ModelFamily
from schemas.model_updated import ModelUpdated
from tests.factories import CODEC, publish, sheet, wait_until
from tests.integration.streams.conftest import Workers

TOKEN = "test-token-of-the-http-api"  # tests.factories.API_TOKEN


def _query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def _scalar(dsn: str, sql: str, *args: Any) -> Any:
    return _query(dsn, sql, *args)[0][0]


def _trigger(port: int) -> str:
    """Ask for a forced expense-fraud retraining once the previous one has been answered."""

    def accepted() -> str | None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/retraining/trigger",
            data=json.dumps({"family": "expense-fraud", "force": True}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            body = json.loads(response.read())
        return str(body["request_id"]) if body["status"] == "accepted" else None

    return str(wait_until(accepted, 60, "the previous request to be answered"))


def _loaded(workers: Workers, port: int | None = None) -> str | None:
    version = workers.get("/models", port)["loaded"]["expense-fraud"]["version"]
    return str(version) if version else None


def _promoted_for(workers: Workers, request_id: str) -> str:
    def promoted() -> str | None:
        rows = _query(
            workers.database_url,
            "SELECT status, model_version FROM model_retraining_log WHERE request_id = $1",
            request_id,
        )
        if rows and rows[0]["status"] != "promoted":
            raise AssertionError(f"request {request_id} ended {rows[0]['status']}")
        return str(rows[0]["model_version"]) if rows else None

    version = wait_until(promoted, 120, f"request {request_id} to be promoted")
    return str(version)


ENV = {
    # Only the forced triggers of the test may train: the sheet threshold and the anomaly-rate
    # band's minimum sample stay out of reach.
    "RETRAINER_NEW_SHEETS_THRESHOLD": "100000000",
    "RETRAINER_ANOMALY_MIN_SAMPLE": "100000000",
}
TRAINER_ENV = {"RETRAINER_FOREST_TREES": "40", "RETRAINER_TRAINING_THREADS": "1"}


def test_every_line_is_scored_once_across_two_promotions_and_tampering_is_refused(
    workers: Workers,
) -> None:
    workers.extra_env.update(ENV)
    workers.create_topics()
    (port,), _ = workers.start_with_trainer(**TRAINER_ENV)
    sheets_topic = workers.topic("expense-sheet")
    dsn = workers.database_url

    # Before any model: stored and scored as "no model", nothing dropped.
    warmup = [sheet(i, lines=10, prefix=workers.prefix) for i in range(200)]
    publish(workers.stack.bootstrap, sheets_topic, warmup)
    # Storing and scoring are separate agents: the training below needs the lines stored.
    wait_until(
        lambda: (
            _scalar(dsn, "SELECT count(*) FROM expense_scores WHERE model_version = ''") == 2000
            and _scalar(dsn, "SELECT count(*) FROM expenses") == 2000
        ),
        90,
        "the first 2,000 lines stored, and scored without a model",
    )
    first = _promoted_for(workers, _trigger(port))
    wait_until(lambda: _loaded(workers) == first, 60, f"the worker to load {first}")

    # 50,000 lines while two more versions are trained and promoted. The producer stays a few
    # thousand lines ahead of scoring, so lines are in flight at every swap, and holds at two
    # points until the next version scores, so each version gets lines of its own.
    stream = [sheet(1000 + i, lines=10, prefix=workers.prefix) for i in range(5000)]
    swapped = [threading.Event(), threading.Event()]
    holds = {20_000: swapped[0], 38_000: swapped[1]}
    failures: list[BaseException] = []

    def scored() -> int:
        return int(_scalar(dsn, "SELECT count(*) FROM expense_scores"))

    def produce() -> None:
        try:
            for start in range(0, len(stream), 250):
                sent = start * 10
                for at, event in holds.items():
                    if sent >= at and not event.wait(timeout=240):
                        raise AssertionError(f"no swap before line {at}")
                wait_until(lambda n=sent: scored() >= 2000 + n - 3000, 120, "scoring to follow")
                publish(workers.stack.bootstrap, sheets_topic, stream[start : start + 250])
        except BaseException as exc:  # handed to the main thread, which re-raises it
            failures.append(exc)
            raise

    producer = threading.Thread(target=produce)
    producer.start()
    versions = [first]
    for lines_before, event in ((12_000, swapped[0]), (30_000, swapped[1])):
        wait_until(
            lambda n=lines_before: scored() > n,
            180,
            f"{lines_before} lines scored",
        )
        version = _promoted_for(workers, _trigger(port))
        versions.append(version)
        wait_until(lambda v=version: _loaded(workers) == v, 60, f"the worker to load {version}")
        event.set()
    producer.join(timeout=300)
    assert not failures, failures
    total = 2000 + 50_000
    # Storing and scoring are separate agents; each gets there on its own.
    wait_until(
        lambda: (
            _scalar(dsn, "SELECT count(*) FROM expense_scores") == total
            and _scalar(dsn, "SELECT count(*) FROM expenses") == total
        ),
        240,
        "every line stored and scored",
    )
    assert _scalar(dsn, "SELECT count(DISTINCT expense_id) FROM expense_scores") == total

    # Scores switch version at the swap: ordered by time, each version's scores come after
    # every score of the one before it, and no line scored by an older model after a swap.
    spans = _query(
        dsn,
        "SELECT model_version, min(scored_at) AS first, max(scored_at) AS last, count(*) AS n "
        "FROM expense_scores GROUP BY model_version ORDER BY min(scored_at)",
    )
    assert [r["model_version"] for r in spans] == ["", *versions]
    for before, after in itertools.pairwise(spans):
        assert before["last"] <= after["first"], (before, after)
    assert all(r["n"] > 0 for r in spans)
    assert workers.metric("retrainer_model_reloads_total", outcome="loaded") == 3
    stall = workers.metric("retrainer_reload_stall_seconds", family="expense-fraud")
    print(f"worst event-loop stall during the last reload: {stall * 1000:.1f} ms")

    # A version whose stored bytes no longer match their sha256 is refused; the champion stays.
    tampered = f"{versions[-1]}_tampered"
    _query(
        dsn,
        "INSERT INTO model_versions (version, family, status, metrics, params, samples, "
        "data_cutoff, code_version) SELECT $2, family, 'candidate', metrics, params, samples, "
        "data_cutoff, code_version FROM model_versions WHERE version = $1",
        versions[-1],
        tampered,
    )
    _query(
        dsn,
        "INSERT INTO model_artifacts (artifact_id, version, role, format, sha256, size_bytes, "
        "content) SELECT artifact_id || '-t', $2, role, format, sha256, size_bytes, "
        "content || '\\x00'::bytea FROM model_artifacts WHERE version = $1",
        versions[-1],
        tampered,
    )
    artifact = _query(
        dsn, "SELECT artifact_id, sha256 FROM model_artifacts WHERE version = $1", tampered
    )[0]
    update = ModelUpdated(
        occurred_at=datetime.now(UTC),
        family=ModelFamily.EXPENSE_FRAUD,
        version=tampered,
        artifact_id=artifact["artifact_id"],
        sha256=artifact["sha256"].strip(),
        metrics={},
        samples=1,
        data_cutoff=datetime.now(UTC),
        request_id=None,
        promoted_at=datetime.now(UTC),
    )
    publish(workers.stack.bootstrap, workers.topic("model-updated"), [update])
    wait_until(
        lambda: workers.metric("retrainer_model_reloads_total", outcome="refused") == 1,
        60,
        "the tampered version to be refused",
    )
    assert _loaded(workers) == versions[-1]
    after = [sheet(6000 + i, lines=5, prefix=workers.prefix) for i in range(10)]
    publish(workers.stack.bootstrap, sheets_topic, after)
    wait_until(
        lambda: (
            _scalar(
                dsn,
                "SELECT count(*) FROM expense_scores "
                "WHERE sheet_id = ANY($1) AND model_version = $2",
                [s.sheet_id for s in after],
                versions[-1],
            )
            == 50
        ),
        60,
        "new lines scored by the champion after the refusal",
    )
    assert CODEC.decode_as(ModelUpdated, CODEC.encode(update)).version == tampered


def test_two_workers_both_reload_on_every_model_updated(workers: Workers) -> None:
    workers.extra_env.update(ENV)
    workers.create_topics()
    ports, _ = workers.start_with_trainer(2, **TRAINER_ENV)
    publish(
        workers.stack.bootstrap,
        workers.topic("expense-sheet"),
        [sheet(i, lines=8, prefix=workers.prefix) for i in range(100)],
    )
    wait_until(
        lambda: (
            _scalar(workers.database_url, "SELECT count(*) FROM expense_scores") == 800
            and _scalar(workers.database_url, "SELECT count(*) FROM expenses") == 800
        ),
        90,
        "the lines stored and scored",
    )
    for _ in range(2):
        version = _promoted_for(workers, _trigger(ports[0]))
        for port in ports:
            wait_until(
                lambda v=version, p=port: _loaded(workers, p) == v,
                60,
                f"worker {port} to load {version}",
            )
    for port in ports:
        assert workers.metric("retrainer_model_reloads_total", port, outcome="loaded") == 2


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=200) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_analysis_endpoints_and_shadow_scoring(workers: Workers) -> None:
    workers.extra_env.update({**ENV, "RETRAINER_ANALYSIS_WAIT_S": "120"})
    workers.create_topics()
    (port,), _ = workers.start_with_trainer(**TRAINER_ENV)
    sheets = [sheet(i, lines=8, prefix=workers.prefix) for i in range(60)]
    publish(workers.stack.bootstrap, workers.topic("expense-sheet"), sheets)
    dsn = workers.database_url
    # Storing and scoring are separate agents: wait for both.
    wait_until(
        lambda: (
            _scalar(dsn, "SELECT count(*) FROM expense_scores") == 480
            and _scalar(dsn, "SELECT count(*) FROM expenses") == 480
        ),
        90,
        "lines stored and scored",
    )

    # The expense app's manual training: answered once the models are trained.
    status, trained = _post(port, "/analysis/train", {})
    assert status == 200, trained
    assert trained["status"] == "promoted"
    assert trained["sheets_used"] == 60
    assert trained["models_trained"] == ["isolation_forest"]
    first = trained["model_version"]
    wait_until(lambda: _loaded(workers) == first, 60, f"the worker to load {first}")

    # Nothing is due: analysed at once with the champion, in the expense app's shape.
    status, analysed = _post(port, f"/sheets/{sheets[0].sheet_id}/analyze", {})
    assert status == 200, analysed
    assert analysed["training_status"] == "No training needed"
    summary = analysed["analysis_summary"]
    assert summary["model_version"] == first
    assert summary["expenses"] == 8
    assert all(r["anomaly_score"] is not None for r in summary["results"])
    status, missing = _post(port, "/sheets/no-such-sheet/analyze", {})
    assert (status, missing["reason"]) == (404, "unknown_sheet")
    status, bulk = _post(port, "/analysis/bulk", {"sheet_ids": [s.sheet_id for s in sheets[:5]]})
    assert status == 200, bulk
    assert bulk["analysis_summary"]["expenses"] == 40
    assert bulk["training_status"] == "No training needed"

    # A second version, then the first one scored in shadow beside it.
    second = _promoted_for(workers, _trigger(port))
    wait_until(lambda: _loaded(workers) == second, 60, f"the worker to load {second}")
    status, shadow = _post(port, "/models/shadow", {"family": "expense-fraud", "version": first})
    assert (status, shadow) == (200, {"family": "expense-fraud", "shadow": first})
    assert workers.get("/models")["loaded"]["expense-fraud"] == {"version": second, "shadow": first}
    publish(
        workers.stack.bootstrap,
        workers.topic("expense-sheet"),
        [sheet(100 + i, lines=8, prefix=workers.prefix) for i in range(10)],
    )
    wait_until(
        lambda: (
            workers.metric("retrainer_shadow_score_difference_count", family="expense-fraud") >= 80
        ),
        60,
        "shadow scores for the new lines",
    )
    agreement = workers.metric("retrainer_shadow_agreement_ratio", family="expense-fraud")
    assert 0.0 <= agreement <= 1.0
    status, refused = _post(port, "/models/shadow", {"family": "delinquency", "version": first})
    assert (status, refused["reason"]) == (422, "invalid_value")
