"""A worker restarted into a backlog scores it with the champion, not as "no model"."""

from __future__ import annotations

from tests.factories import publish, sheet, wait_until
from tests.integration.streams.conftest import Workers
from tests.integration.streams.test_scorers import (
    ENV,
    TRAINER_ENV,
    _loaded,
    _promoted_for,
    _scalar,
    _trigger,
)

UNSCORED = "SELECT count(*) FROM expense_scores WHERE model_version = ''"
SCORED_BY = "SELECT count(*) FROM expense_scores WHERE model_version = $1"


def test_a_backlog_waiting_at_start_is_scored_by_the_champion(workers: Workers) -> None:
    workers.extra_env.update(ENV)
    workers.create_topics()
    (port,), _ = workers.start_with_trainer(**TRAINER_ENV)
    dsn = workers.database_url
    topic = workers.topic("expense-sheet")

    publish(workers.stack.bootstrap, topic, [sheet(i, 10, workers.prefix) for i in range(30)])
    wait_until(lambda: _scalar(dsn, UNSCORED) == 300, 90, "the first 300 lines scored unmodelled")
    champion = _promoted_for(workers, _trigger(port))
    wait_until(lambda: _loaded(workers) == champion, 60, f"the worker to load {champion}")

    workers.kill(0)  # the worker; the trainer (index 1) keeps running
    backlog = [sheet(1000 + i, 10, workers.prefix) for i in range(300)]
    publish(workers.stack.bootstrap, topic, backlog)
    workers.start()

    wait_until(
        lambda: _scalar(dsn, "SELECT count(*) FROM expense_scores") == 300 + 3000,
        180,
        "the 3,000 lines of the backlog scored",
    )
    assert _scalar(dsn, UNSCORED) == 300, "lines of the backlog were scored without the champion"
    assert _scalar(dsn, SCORED_BY, champion) == 3000
