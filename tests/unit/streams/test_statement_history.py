"""The kept statement history stays bounded and lets go of what it can no longer vouch for."""

from __future__ import annotations

from datetime import date, timedelta

from streams.statement_history import Delivery, StatementHistory, statement_row
from tests.factories import statement


def _stored(customer: str, months: range) -> list[tuple[object, ...]]:
    return [statement_row(statement(customer, m)) for m in months]  # type: ignore[arg-type]


def _history(customers: int = 10, keep: int = 4) -> StatementHistory:
    history = StatementHistory(customers=customers, keep=keep)
    history.fill(_stored("a", range(6)), [("a", 30, 1.0, 2, "employed")], {"a": 0})
    return history


def test_a_read_customer_keeps_its_newest_statements_and_counts_the_older() -> None:
    history = _history()
    known, missing = history.known(["a"], {"a": ["a-s5"]})
    assert missing == []
    assert [row[0] for row in known.statements] == ["a-s2", "a-s3", "a-s4"]
    assert known.older == {"a": 2}
    assert known.profiles == [("a", 30, 1.0, 2, "employed")]


def test_new_statements_are_added_and_the_oldest_kept_ones_counted_instead() -> None:
    history = _history()
    new = [statement("a", 6), statement("a", 7)]
    history.stored(new, Delivery([0, 0], {"a-s6", "a-s7"}))
    known, _ = history.known(["a"], {"a": ["a-s7"]})
    assert [row[0] for row in known.statements] == ["a-s4", "a-s5", "a-s6"]
    assert known.older == {"a": 4}


def test_a_redelivered_statement_no_longer_kept_has_the_customer_read_again() -> None:
    history = _history()
    history.stored([statement("a", 1)], Delivery([0], set()))
    _, missing = history.known(["a"], {"a": ["a-s1"]})
    assert missing == ["a"]


def test_a_statement_stored_by_someone_else_drops_the_customer() -> None:
    history = _history()
    late = statement("a", 9)
    history.stored([late], Delivery([0], set()))  # present, yet not kept here
    assert "a" not in history


def test_a_statement_on_another_partition_drops_the_customer() -> None:
    history = _history()
    history.stored([statement("a", 6)], Delivery([3], {"a-s6"}))
    assert "a" not in history


def test_a_revoked_partition_lets_its_customers_go_before_the_next_use() -> None:
    history = _history()
    history.revoke([0])
    _, missing = history.known(["a"], {"a": ["a-s5"]})
    assert missing == ["a"]
    assert "a" not in history


def test_the_least_recently_scored_customers_go_first() -> None:
    history = StatementHistory(customers=2, keep=4)
    for name in ("a", "b", "c"):
        history.fill(_stored(name, range(2)), [], {name: 0})
    assert len(history) == 2
    assert "a" not in history


def test_a_statement_with_fewer_than_three_kept_before_it_is_read_again() -> None:
    history = _history()
    day = date(2026, 1, 28) + timedelta(days=30 * 2, hours=0)
    early = statement("a", 2).model_copy(update={"statement_id": "a-s2b", "statement_date": day})
    history.stored([early], Delivery([0], {"a-s2b"}))
    _, missing = history.known(["a"], {"a": ["a-s2b"]})
    assert missing == ["a"]
