"""After a fraud-heavy drift with a new kind of fraud, the retrain the drift calls for learns it.

The simulated world has no fraud of the new kind before its drift and mostly that kind after
it. The champion trained before the drift cannot know it; the model trained once the drift's
labels have come in must catch it (its recall must not collapse, as it did when the detector
learnt the new fraud as normal), and stay close to an oracle that learnt from every other row.
The delinquency model refitted on its whole window after the macro shock must not lose what it
knew: its newest rows once taught it that lateness itself was risk (outcomes of customers whose
statements stop were known only when bad), and it flagged most customers.
"""

from __future__ import annotations

import pytest

from schemas.base import ModelFamily
from tests.quality import drift_world, run_drift_scenario

pytestmark = pytest.mark.integration

EXPENSE = ModelFamily.EXPENSE_FRAUD
DELINQUENCY = ModelFamily.DELINQUENCY
AFTER = "after-retrain"


async def test_the_retrains_after_a_drift_catch_up(
    fresh_database_url: str,
) -> None:
    # Only the period after the retrain is asserted on: its oracles are the ones fitted.
    result = await run_drift_scenario(fresh_database_url, drift_world(), scored=(AFTER,))
    assert result.outcomes[f"{EXPENSE} retrained"].startswith("promoted"), result.outcomes
    champion = result.get(EXPENSE, "champion", AFTER)
    retrained = result.get(EXPENSE, "retrained", AFTER)
    oracle = result.get(EXPENSE, "oracle", AFTER)
    figures = f"champion {champion}, retrained {retrained}, oracle {oracle}"
    assert champion.new_kind_recall is not None
    assert retrained.new_kind_recall is not None
    # The old champion has never seen the new kind; the retrained model has.
    assert retrained.new_kind_recall >= 0.6, figures
    assert retrained.new_kind_recall > champion.new_kind_recall + 0.3, figures
    assert retrained.f1 >= 0.8 * oracle.f1, figures
    assert retrained.auc >= champion.auc, figures
    delinquency = {
        model: result.get(DELINQUENCY, model, AFTER)
        for model in ("champion", "retrained", "oracle", "past-due-rule")
    }
    assert result.outcomes[f"{DELINQUENCY} retrained"].startswith("promoted"), result.outcomes
    assert delinquency["retrained"].auc >= delinquency["champion"].auc - 0.02, delinquency
    assert delinquency["retrained"].f1 >= 0.9 * delinquency["oracle"].f1, delinquency
