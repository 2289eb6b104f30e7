"""Which customers a delinquency model trains on: new ones first, topped up with existing ones."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class CustomerSelection:
    """The customers chosen, how many of them are new, and how many new ones were waiting."""

    customer_ids: tuple[str, ...]
    new_selected: int
    existing_selected: int
    new_available: int


def select_customers(candidates: pd.DataFrame, max_customers: int) -> CustomerSelection:
    """Pick up to `max_customers` (0 = all) from `candidates`.

    `candidates` has customer_id, included_in_training (bool) and first_seen. New customers
    (never included in training) come first, the longest-waiting first; the rest of the cap is
    filled with already-trained customers, the most recently seen first (they look most like
    today's customers). Ties break on customer_id, so the choice is deterministic.
    """
    included = candidates["included_in_training"].fillna(False).astype(bool)
    new = candidates.loc[~included].sort_values(["first_seen", "customer_id"], kind="stable")
    existing = candidates.loc[included].sort_values(
        ["first_seen", "customer_id"], ascending=[False, True], kind="stable"
    )
    cap = len(candidates) if max_customers == 0 else max_customers
    chosen_new = new["customer_id"].head(cap).tolist()
    chosen_existing = existing["customer_id"].head(cap - len(chosen_new)).tolist()
    return CustomerSelection(
        customer_ids=tuple(str(c) for c in chosen_new + chosen_existing),
        new_selected=len(chosen_new),
        existing_selected=len(chosen_existing),
        new_available=len(new),
    )
