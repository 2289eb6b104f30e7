"""Training on a dask.distributed cluster, when RETRAINER_DASK_SCHEDULER names one.

The delinquency window is read in the cluster's workers, one customer-hash range per task (each
its own COPY into Arrow), and each range builds its customers' point-in-time features and labels
with the same code as the local path: whole customers per range, so nothing is shuffled and
nothing differs from one frame of all of them. The trainer gathers only the small per-customer
facts the selection needs, then the numeric rows of the chosen customers, put back in the order
the local path has them. XGBoost fits through `xgboost.dask` (histogram method, one rank per
worker); the forests through joblib's Dask backend (the trees are the ones a local fit grows, to
the bit, since their seeds are drawn before they are dispatched).

Everything here blocks: the service runs it off the event loop. A scheduler that cannot be
reached is an outage (ClusterUnavailable: retried, the request handled again later); a cluster
that fails a task (a worker killed, a collective timed out) fails the request with that reason
(ClusterFailed), rather than retrying a training that may kill the next worker too.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from schemas.bundles import ModelBundle
from schemas.features import labelled_by_day, unknown_categories
from trainer import datasets, families
from trainer.errors import TrainerError
from trainer.selection import CustomerSelection, customer_rows, select_customers
from trainer.settings import TrainerSettings

if TYPE_CHECKING:
    import xgboost as xgb
    from distributed import Client

log = logging.getLogger(__name__)
T = TypeVar("T")


class ClusterUnavailable(ConnectionError):
    """The Dask scheduler (or any worker) could not be reached: retried like an outage."""


class ClusterFailed(TrainerError):
    """The cluster failed a task of this request (a worker lost, a collective timed out)."""


def customer_hash(column: str, part: int, parts: int) -> str:
    """SQL: the rows of customer-hash range `part` of `parts` (PostgreSQL's own text hash, the
    same for every table, so a customer's statements and profile fall in the same range)."""
    return f"mod(hashtext({column})::bigint + 2147483648, {parts}) = {part}"


# --- tasks (run in the Dask workers) ------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One customer-hash range of the window, as loaded: statements and customers."""

    statements: pd.DataFrame
    customers: pd.DataFrame


@dataclass(frozen=True)
class PartSummary:
    """What the selection needs of one range: its candidates and their labelled observations."""

    part: int
    candidates: pd.DataFrame
    observations: pd.DataFrame | None
    rows: int


def load_part(cutoff: datetime, settings: TrainerSettings, part: int, parts: int) -> Part:
    """Range `part`'s statements and customers, through binary COPY."""
    at, dsn = datasets.at_literal(cutoff), settings.dsn
    statements = datasets.as_frame(
        [
            datasets.arrow_table(
                dsn,
                datasets.activity_query(at, settings, customer_hash("a.customer_id", part, parts)),
            )
        ],
        datasets.ACTIVITY_TYPES,
    )
    customers = datasets.as_frame(
        [
            datasets.arrow_table(
                dsn,
                datasets.customers_query(at, settings, customer_hash("c.customer_id", part, parts)),
            )
        ],
        datasets.CUSTOMER_TYPES,
    )
    datasets.to_date(statements, "statement_date")
    return Part(statements, customers)


def summarise_part(
    loaded: Part, part: int, cutoff: datetime, settings: TrainerSettings, observations: bool
) -> PartSummary:
    """The range's candidates (and, for a capped selection, their labelled observations)."""
    cutoff_day = datasets.day_number(cutoff)
    horizon = settings.delinquency_horizon_days
    return PartSummary(
        part=part,
        candidates=datasets.customer_candidates(
            loaded.customers, loaded.statements, cutoff_day, horizon
        ),
        observations=(
            labelled_by_day(
                loaded.statements,
                cutoff_day=cutoff_day,
                horizon_days=horizon,
                delinquent_days_past_due=settings.delinquent_days_past_due,
            )
            if observations
            else None
        ),
        rows=len(loaded.statements) + len(loaded.customers),
    )


def build_part(
    loaded: Part, chosen: frozenset[str], cutoff: datetime, settings: TrainerSettings
) -> tuple[families.DelinquencyRows, dict[str, int]]:
    """The chosen customers' labelled rows in this range, and their unknown categories."""
    statements = loaded.statements.loc[customer_rows(loaded.statements["customer_id"], set(chosen))]
    profiles = loaded.customers.loc[
        customer_rows(loaded.customers["customer_id"], set(chosen)), list(datasets.PROFILE_FIELDS)
    ]
    rows = families.delinquency_rows(
        statements.reset_index(drop=True),
        profiles.reset_index(drop=True),
        cutoff_day=datasets.day_number(cutoff),
        settings=settings,
    )
    return rows, unknown_categories(profiles)


# --- the trainer's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterDelinquency:
    """The chosen customers' rows, gathered from the cluster, with what the local load reports."""

    rows: families.DelinquencyRows
    selection: CustomerSelection
    unknown_categories: dict[str, int]
    loaded_rows: int


def _failing(what: str, exc: BaseException) -> Exception:
    """The error a cluster failure becomes: an outage when the scheduler is gone, else a failed
    request naming what the cluster said."""
    from distributed.comm.core import CommClosedError

    if isinstance(exc, CommClosedError | OSError) and not isinstance(exc, TimeoutError):
        return ClusterUnavailable(f"Dask scheduler unreachable while {what}: {exc}")
    said = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ in LOST_WORKER_ERRORS:
        return ClusterFailed(
            f"a Dask worker was lost while {what} (killed, restarted or out of memory; see the "
            f"workers' logs and memory limit), so the request failed rather than wait: {said}"
        )
    return ClusterFailed(f"the Dask cluster failed while {what}: {said}")


LOST_WORKER_ERRORS = frozenset(
    {"KilledWorker", "FutureCancelledError", "CancelledError", "FutureLostError"}
)
"""What distributed raises for a task whose worker died (its result, or its peer, gone)."""


@contextmanager
def _reporting(what: str) -> Iterator[None]:
    try:
        yield
    except (ClusterFailed, ClusterUnavailable, TrainerError, datasets.LoadUnavailable):
        raise  # already says what failed (a task's own outage or refusal)
    except Exception as exc:  # distributed raises many kinds: each is sorted by _failing
        raise _failing(what, exc) from exc


class Cluster:
    """One client of the configured scheduler, opened on first use and reopened after a loss."""

    def __init__(self, settings: TrainerSettings) -> None:
        if not settings.dask_scheduler:
            raise ValueError("Cluster needs RETRAINER_DASK_SCHEDULER")
        self._settings = settings
        self._address = settings.dask_scheduler
        self._client: Client | None = None

    def client(self) -> Client:
        """The connected client, with at least one worker (raises ClusterUnavailable)."""
        from distributed import Client

        if self._client is not None and self._client.status == "running":
            return self._client
        self.close()
        timeout = self._settings.dask_connect_timeout_s
        try:
            client = Client(self._address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnavailable(f"Dask scheduler {self._address} unreachable: {exc}") from exc
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            client.close()
            raise ClusterUnavailable(
                f"Dask scheduler {self._address} has no workers: {exc}"
            ) from exc
        self._client = client
        return client

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close(timeout=5)
            except (OSError, TimeoutError) as exc:
                log.warning("closing the Dask client: %s", exc)

    def threads(self) -> int:
        """Threads across the cluster's workers."""
        return max(1, int(sum(self.client().nthreads().values())))

    def load_delinquency(
        self, cutoff: datetime, settings: TrainerSettings, cap: int
    ) -> ClusterDelinquency:
        """Load, select and build on the cluster: the chosen customers' rows, gathered."""
        client = self.client()
        parts = settings.dask_partitions
        with _reporting("loading the delinquency window"):
            loaded = [
                client.submit(load_part, cutoff, settings, i, parts, pure=False)
                for i in range(parts)
            ]
            try:
                summaries: list[PartSummary] = client.gather(
                    [
                        client.submit(summarise_part, part, i, cutoff, settings, cap > 0)
                        for i, part in enumerate(loaded)
                    ]
                )
                selection, chosen = _select(summaries, cutoff, settings, cap)
                built = client.gather(
                    [
                        client.submit(build_part, part, chosen[i], cutoff, settings)
                        for i, part in enumerate(loaded)
                    ]
                )
            finally:
                client.cancel(loaded)
        unknown: dict[str, int] = {}
        for _, counts in built:
            for name, count in counts.items():
                unknown[name] = unknown.get(name, 0) + count
        return ClusterDelinquency(
            rows=families.merged_rows([rows for rows, _ in built]),
            selection=selection,
            unknown_categories=unknown,
            loaded_rows=sum(s.rows for s in summaries),
        )

    def boost(self) -> families.Boost:
        """Gradient-boosted trees through xgboost.dask, on the cluster's workers."""

        def fit(
            features: np.ndarray, rows: np.ndarray, truth: np.ndarray, settings: TrainerSettings
        ) -> xgb.Booster:
            import xgboost.dask as xgb_dask
            from xgboost.collective import Config

            client = self.client()
            with _reporting("fitting XGBoost"), client.as_current():
                x, y = _scattered(client, features, rows, truth)
                trained = xgb_dask.train(
                    client,
                    families.xgboost_params(settings),
                    xgb_dask.DaskDMatrix(client, x, y),
                    settings.xgb_rounds,
                    verbose_eval=False,
                    coll_cfg=Config(timeout=int(settings.dask_collective_timeout_s)),
                )
            booster: xgb.Booster = trained["booster"]
            return booster

        return fit

    def fitting(self, fit: Callable[[], T], settings: TrainerSettings) -> T:
        """Run `fit` with joblib's work (the forests' trees) dispatched to the cluster."""
        import joblib

        client = self.client()
        with (
            _reporting("fitting the forests"),
            joblib.parallel_config(backend="dask", client=client),
        ):
            return fit()

    def fit(self, data: families.TrainingSet, settings: TrainerSettings) -> ModelBundle:
        """`families.fit` with the boosted trees and the forests fitted on the cluster."""
        spread = _spread(settings, self.threads())
        return self.fitting(lambda: families.fit(data, spread, self.boost()), spread)

    def refit(
        self, data: families.TrainingSet, settings: TrainerSettings, evaluated: ModelBundle
    ) -> ModelBundle:
        """`families.refit` on the cluster."""
        spread = _spread(settings, self.threads())
        return self.fitting(lambda: families.refit(data, spread, evaluated, self.boost()), spread)


def _scattered(
    client: Client, features: np.ndarray, rows: np.ndarray, truth: np.ndarray
) -> tuple[Any, Any]:
    """`rows` of `features`, and `truth`, as Dask arrays of one block per worker, each block
    copied out and sent to its worker once (scattered), not written into the task graph."""
    import dask.array as da
    from dask.delayed import delayed

    workers = sorted(client.scheduler_info()["workers"])
    bounds = np.linspace(0, len(truth), len(workers) + 1).astype(np.int64)
    xs, ys = [], []
    for worker, (low, high) in zip(workers, itertools.pairwise(bounds.tolist()), strict=True):
        if high <= low:
            continue
        block_x, block_y = client.scatter(
            [features[rows[low:high]], truth[low:high]], workers=[worker]
        )
        shape = (high - low, features.shape[1])
        xs.append(da.from_delayed(delayed(block_x), shape, dtype=features.dtype))
        ys.append(da.from_delayed(delayed(block_y), shape[:1], dtype=truth.dtype))
    return da.concatenate(xs), da.concatenate(ys)


def _spread(settings: TrainerSettings, threads: int) -> TrainerSettings:
    """The settings with one job per thread of the cluster (the forests' batches of trees)."""
    return settings.model_copy(update={"training_threads": threads})


def _select(
    summaries: list[PartSummary], cutoff: datetime, settings: TrainerSettings, cap: int
) -> tuple[CustomerSelection, dict[int, frozenset[str]]]:
    """The selection over every range's candidates; the chosen ids of each range."""
    candidates = pd.concat([s.candidates.assign(part=s.part) for s in summaries], ignore_index=True)
    observed = [s.observations for s in summaries if s.observations is not None]
    observations = pd.concat(observed, ignore_index=True) if observed else None
    selection = select_customers(
        candidates,
        cap,
        seed=cutoff.astimezone(UTC).isoformat(),
        observations=observations if 0 < cap < len(candidates) else None,
        minimums=settings.minimums(),
    )
    wanted = set(selection.customer_ids)
    kept = candidates.loc[customer_rows(candidates["customer_id"], wanted)]
    chosen = {
        s.part: frozenset(
            kept.loc[kept["part"] == s.part, "customer_id"].to_numpy(dtype=object).tolist()
        )
        for s in summaries
    }
    return selection, chosen


def with_cluster(settings: TrainerSettings) -> Cluster | None:
    """The cluster the settings name, or None for the local path."""
    return Cluster(settings) if settings.dask_scheduler else None
