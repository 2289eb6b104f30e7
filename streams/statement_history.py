"""Each customer's newest statements and profile, kept between scoring batches.

A statement's delinquency features read the customer's statements before it: the last
STATEMENT_LAGS of them, and how many there are (months on book). Reading every stored statement
of a batch's customers for each batch cost more than everything else the worker did; this keeps,
per customer, the `keep` newest stored statements, how many older ones there are, and the
profile, filled from PostgreSQL on a miss and updated from the batches the worker stores itself.

What is kept is exactly what PostgreSQL holds, or the customer is not used from here:

- statements are insert-only (`ON CONFLICT DO NOTHING`): a statement this worker stored new is
  added; one the sink found already stored that is not kept here (stored by someone else, or a
  second event for the same id) drops the customer, who is read again on the next batch;
- a customer's statements are keyed by customer id, so they all arrive on one partition, which
  one worker owns at a time. A customer is dropped when its partition is revoked (another worker
  stores its statements meanwhile) or when one of its statements arrives on another partition;
- a profile, once stored, never changes; a customer without one is looked up again each batch;
- a statement older than the kept ones, or with fewer than STATEMENT_LAGS kept ones before it,
  is scored from a fresh read (`covers` says which customers need one).

Knows no SQL and no Kafka: the scorer (streams.services.scoring) reads and feeds it.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.customer_activity import CustomerActivityRecorded

STATEMENT_LAGS = 3
"""The furthest earlier statement a delinquency feature reads: missed_minimum_3 looks at the
payments of the last three statements, each against the minimum due of the one before it."""

_DATES = 10_000
"""Distinct statement dates shared at most (statements fall on few dates)."""

Row = tuple[Any, ...]
"""A statement in `schemas.features.ACTIVITY_COLUMNS` order, as the store reads it."""


def statement_row(s: CustomerActivityRecorded) -> Row:
    """A statement as the store reads it back (numbers as float8, the date as a date)."""
    return (
        s.statement_id,
        s.customer_id,
        s.statement_date,
        float(s.balance),
        float(s.credit_limit),
        float(s.payment_amount),
        float(s.minimum_due),
        float(s.purchase_amount),
        float(s.cash_advance_amount),
        s.days_past_due,
    )


def _key(row: Row) -> tuple[date, str]:
    """Where a statement sorts among its customer's: by date, then id (as the features sort)."""
    return row[2], row[0]


@dataclass
class CustomerHistory:
    """The newest stored statements of one customer (sorted), how many older ones are stored, the
    partition they arrive on and the stored profile (None: not stored when last read)."""

    partition: int
    rows: list[Row]
    older: int
    profile: Row | None

    def holds(self, statement_id: str) -> bool:
        return any(row[0] == statement_id for row in self.rows)

    def add(self, row: Row, keep: int) -> None:
        """A statement just stored (new to PostgreSQL)."""
        if self.holds(row[0]):
            return
        if self.older and self.rows and _key(row) < _key(self.rows[0]):
            self.older += 1  # among the statements not kept
            return
        bisect.insort(self.rows, row, key=_key)
        while len(self.rows) > keep:
            self.rows.pop(0)
            self.older += 1

    def covers(self, statement_ids: Iterable[str]) -> bool:
        """Whether these stored statements are kept here and score the same from the kept ones
        alone: no older statement is left out, or STATEMENT_LAGS kept ones come before each."""
        positions = {row[0]: n for n, row in enumerate(self.rows)}
        for statement_id in statement_ids:
            position = positions.get(statement_id)
            if position is None or (self.older and position < STATEMENT_LAGS):
                return False
        return True


@dataclass(frozen=True)
class Delivery:
    """Where a batch of stored statements came from: the partition of each statement, and the
    ids the sink stored new (the others were stored before)."""

    partitions: Sequence[int]
    new_ids: AbstractSet[str]


@dataclass(frozen=True)
class Known:
    """What the history holds for a batch: each customer's kept statements (the batch's own
    left out), how many older ones were left out, the stored profiles, and the customers held
    here whose profile was not stored when last read."""

    statements: list[Row]
    older: dict[str, int]
    profiles: list[Row]
    without_profile: list[str]


class StatementHistory:
    """Bounded: at most `customers` customers (least recently scored go first), `keep`
    statements each."""

    def __init__(self, customers: int = 100_000, keep: int = 6) -> None:
        if keep <= STATEMENT_LAGS:
            raise ValueError(f"keep must exceed {STATEMENT_LAGS} statements, got {keep}")
        self.limit = customers
        self.keep = keep
        self._customers: OrderedDict[str, CustomerHistory] = OrderedDict()
        # Revocations arrive on the Kafka client's thread; applied before the next use.
        self._revoked: list[int] = []
        self._lock = threading.Lock()
        self._dates: dict[date, date] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._customers)

    def __contains__(self, customer: object) -> bool:
        return customer in self._customers

    def revoke(self, partitions: Iterable[int]) -> None:
        """Partitions of customer-activity this worker no longer owns (any thread)."""
        with self._lock:
            self._revoked.extend(partitions)

    def _apply_revocations(self) -> None:
        with self._lock:
            revoked, self._revoked = set(self._revoked), []
        if revoked:
            for customer in [c for c, h in self._customers.items() if h.partition in revoked]:
                del self._customers[customer]

    def stored(
        self, statements: Sequence[CustomerActivityRecorded], delivery: Delivery
    ) -> dict[str, int]:
        """`statements` are in PostgreSQL now (see `Delivery`); returns the partition of each
        customer whose history may be kept from this batch on (see `fill`)."""
        self._apply_revocations()
        repeated = Counter(s.statement_id for s in statements)
        owners: dict[str, int] = {}
        doubtful: set[str] = set()
        for s, partition in zip(statements, delivery.partitions, strict=True):
            customer = s.customer_id
            if owners.setdefault(customer, partition) != partition or repeated[s.statement_id] > 1:
                doubtful.add(customer)  # two partitions, or two events for one statement id
        for customer in doubtful:
            owners.pop(customer, None)
            self._customers.pop(customer, None)
        for s in statements:
            history = self._customers.get(s.customer_id)
            if history is None:
                continue
            if history.partition != owners[s.customer_id]:
                del self._customers[s.customer_id]
            elif s.statement_id in delivery.new_ids:
                history.add(self._compact(statement_row(s), s.customer_id), self.keep)
            elif not history.holds(s.statement_id):
                # Stored before, not by this worker since the customer was read: read it again.
                del self._customers[s.customer_id]
        return owners

    def known(
        self, customers: Sequence[str], batch: Mapping[str, Sequence[str]]
    ) -> tuple[Known, list[str]]:
        """The history of `customers` held here, and the customers to read from the store.

        `batch` maps each customer to the ids of its statements being scored (all stored).
        """
        self._apply_revocations()
        rows: list[Row] = []
        older: dict[str, int] = {}
        profiles: list[Row] = []
        without_profile: list[str] = []
        missing: list[str] = []
        for customer in customers:
            history = self._customers.get(customer)
            scoring = batch.get(customer, ())
            if history is None or not history.covers(scoring):
                missing.append(customer)
                self.misses += 1
                continue
            self.hits += 1
            self._customers.move_to_end(customer)
            left_out = set(scoring)
            rows.extend(row for row in history.rows if row[0] not in left_out)
            if history.older:
                older[customer] = history.older
            if history.profile is not None:
                profiles.append(history.profile)
            else:
                without_profile.append(customer)
        return Known(rows, older, profiles, without_profile), missing

    def fill(
        self, statements: Sequence[Row], profiles: Sequence[Row], owners: Mapping[str, int]
    ) -> None:
        """Keep what the store read: every stored statement of some customers, and their
        profiles; only customers in `owners` (what `stored` returned) are kept."""
        by_customer: dict[str, list[Row]] = {}
        for row in statements:
            by_customer.setdefault(row[1], []).append(row)
        for customer, rows in by_customer.items():
            partition = owners.get(customer)
            if partition is None:
                continue
            rows.sort(key=_key)
            kept = [self._compact(row, customer) for row in rows[-self.keep :]]
            self._customers[customer] = CustomerHistory(
                partition, kept, len(rows) - len(kept), None
            )
            self._customers.move_to_end(customer)
        self.profiles_read(profiles)
        while len(self._customers) > self.limit:
            self._customers.popitem(last=False)

    def _compact(self, row: Row, customer: str) -> Row:
        """`row` sharing the customer id and date objects already held (memory per customer)."""
        day = self._dates.setdefault(row[2], row[2])
        if len(self._dates) > _DATES:
            self._dates.clear()
        return (row[0], customer, day, *row[3:])

    def profiles_read(self, profiles: Sequence[Row]) -> None:
        """Profiles the store holds now (in `schemas.features.PROFILE_COLUMNS` order)."""
        for profile in profiles:
            history = self._customers.get(profile[0])
            if history is not None:
                history.profile = profile
