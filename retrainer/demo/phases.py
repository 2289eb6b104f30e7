"""The demo's four phases, one trigger each: what is published, and the wait for the request,
its outcome and the worker's reload that follow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrainer.demo.common import (
    ANOMALY_REASONS,
    DELINQUENCY,
    EXPENSE_FRAUD,
    PHASE_S,
    DemoError,
    demo_policy,
)
from retrainer.demo.observe import NEW_SHEETS, Observer, Request, Snapshot, call
from retrainer.demo.traffic import (
    BAD_RATE,
    DRIFT_LINES,
    DRIFTED_FRAUD_RATE,
    Published,
    Traffic,
    line_count,
    nth_line,
    nth_valid,
    pick_drifted,
    publish,
)

if TYPE_CHECKING:
    from retrainer.demo.setup import DemoRun
    from retrainer.demo.view import View
    from retrainer.simulator.scenario import SimMessage


@dataclass
class Trigger:
    """One trigger fired by the demo, from the event that crossed its threshold to the reload."""

    kind: str
    family: str
    event_at: float
    request: Request | None = None
    reload_at: float | None = None


class Demo:
    """Runs the phases against the run's services and records each trigger's timeline."""

    def __init__(self, run: DemoRun, view: View, observer: Observer, traffic: Traffic) -> None:
        self.run = run
        self.view = view
        self.observer = observer
        self.traffic = traffic
        self.triggers: list[Trigger] = []

    async def send(self, messages: Sequence[SimMessage], note: str = "") -> Published:
        done = await asyncio.to_thread(publish, self.run.bootstrap, self.run.prefix, messages)
        self.view.published.update(done.sent)
        parts = ", ".join(f"{n} {topic}" for topic, n in done.sent.items())
        bad = f" ({done.malformed} malformed on purpose)" if done.malformed else ""
        self.view.log(f"published {parts}{bad}{note}; acknowledged in {done.seconds:.1f} s")
        return done

    async def send_crossing(self, messages: Sequence[SimMessage], crossing: int) -> float:
        """Publish, in two parts; returns when the broker acknowledged the crossing message.

        messages[crossing] is the event that brings the trigger's count to its threshold: the
        moment the broker holds it is where the latency to the scorers is measured from.
        """
        first = await self.send(messages[: crossing + 1], " — the last one crosses the threshold")
        if crossing + 1 < len(messages):
            await self.send(messages[crossing + 1 :])
        return first.acked_at

    async def follow(
        self, trigger: Trigger, reasons: Sequence[str], seen: set[str], need_promotion: bool
    ) -> Trigger:
        """Wait for the request, its outcome, and (when promoted) the worker's reload."""
        family = trigger.family

        def requested(snap: Snapshot) -> Request | None:
            for r in snap.requests:
                if r.family == family and r.request_id not in seen:
                    if r.reason not in reasons:
                        raise DemoError(
                            f"{family} was retrained for {r.reason} (“{r.reason_text}”), "
                            f"not for {' or '.join(reasons)}"
                        )
                    return r
            return None

        def explain(snap: Snapshot) -> str:
            policy = snap.policy.get(family)
            if policy is None:
                return ""
            rate = policy.anomaly_rate
            window = (
                f" (champion's anomaly rate {rate:.1%} over {policy.window_scored} lines)"
                if rate is not None and family == EXPENSE_FRAUD
                else ""
            )
            return f"; the policy says: {policy.reason_text}{window}"

        try:
            first = await self.observer.until(requested, PHASE_S, f"a {family} retrain request")
        except DemoError as exc:
            raise DemoError(f"{exc}{explain(self.observer.latest)}") from exc
        request_id = first.request_id

        def finished(snap: Snapshot) -> Request | None:
            r = snap.request(request_id)
            return r if r is not None and r.status is not None else None

        request = await self.observer.until(finished, PHASE_S, f"the trainer to answer {family}")
        trigger.request = request
        if request.status != "promoted":
            if need_promotion:
                raise DemoError(
                    f"{family} was {request.status}, not promoted: {request.outcome_reason}"
                )
            return trigger
        version = request.version

        def reloaded(snap: Snapshot) -> bool:
            policy = snap.policy.get(family)
            return (
                snap.loaded.get(family) == version
                and policy is not None
                and policy.model_version == version
            )

        await self.observer.until(reloaded, PHASE_S, f"the worker to score {family} with {version}")
        trigger.request = self.observer.latest.request(request_id) or request
        trigger.reload_at = self.observer.reloaded_at.get((family, version or ""))
        return trigger

    def seen(self) -> set[str]:
        return {r.request_id for r in self.observer.latest.requests}

    async def history(self, messages: Sequence[SimMessage]) -> None:
        """Publish what a model learns from, and wait until the worker has handled all of it.

        Then the trigger's data cutoff, taken when the counted events arrive, includes it all.
        """
        done = await self.send(messages)

        def handled(snap: Snapshot) -> bool:
            return all(
                snap.stored.get(topic, 0) + snap.dead.get(topic, 0) >= count
                for topic, count in done.sent.items()
            )

        await self.observer.until(handled, PHASE_S, "the worker to store the history")

    async def new_customers(self) -> None:
        self.view.phase(
            f"phase 1/4 · {demo_policy().new_customers_threshold} new customers: their two years "
            "of statements first "
            f"(~{BAD_RATE:.0%} of the messages malformed), then the customer records "
            "→ delinquency"
        )
        seen = self.seen()
        await self.history(self.traffic.statements)
        customers = self.traffic.customers
        crossing = nth_valid(customers, demo_policy().new_customers_threshold)
        event_at = await self.send_crossing(customers, crossing)
        trigger = Trigger("new customers", DELINQUENCY, event_at)
        self.triggers.append(await self.follow(trigger, ["new_customers"], seen, True))

    async def new_sheets(self) -> None:
        sheets = self.traffic.sheets
        self.view.phase(
            f"phase 2/4 · {len(sheets)} expense sheets ({line_count(sheets)} lines), after "
            "the auditors' labels of some of their lines → expense-fraud"
        )
        seen = self.seen()
        await self.history(self.traffic.labels)
        event_at = await self.send_crossing(
            sheets, nth_valid(sheets, demo_policy().new_sheets_threshold)
        )
        trigger = Trigger("new sheets", EXPENSE_FRAUD, event_at)
        self.triggers.append(await self.follow(trigger, ["new_sheets"], seen, True))

    async def drift(self) -> None:
        policy = demo_policy()
        already = int(await self.observer.conn.fetchval(NEW_SHEETS, EXPENSE_FRAUD))
        budget = policy.new_sheets_threshold - 1 - already
        chosen = pick_drifted(self.traffic.drifted, budget, DRIFT_LINES)
        lines = line_count(chosen)
        if lines < policy.anomaly_min_sample:
            raise DemoError(
                f"the drift phase needs {policy.anomaly_min_sample} lines in at most {budget} "
                f"sheets; the largest drifted sheets hold only {lines} (try another --seed)"
            )
        self.view.phase(
            f"phase 3/4 · drift: {len(chosen)} sheets, {lines} lines, ~{DRIFTED_FRAUD_RATE:.0%} "
            "fraud (mostly round amounts just under the approval limit): under the "
            f"{policy.new_sheets_threshold}-sheet count, over the {policy.anomaly_min_sample}-line "
            f"sample of the default {policy.anomaly_rate_low:.0%}–{policy.anomaly_rate_high:.0%} "
            "anomaly-rate band → expense-fraud"
        )
        seen = self.seen()
        event_at = await self.send_crossing(chosen, nth_line(chosen, policy.anomaly_min_sample))
        trigger = Trigger("anomaly rate", EXPENSE_FRAUD, event_at)
        self.triggers.append(await self.follow(trigger, ANOMALY_REASONS, seen, False))

    async def manual(self) -> None:
        self.view.phase("phase 4/4 · POST /retraining/trigger (bearer token) → delinquency")
        seen = self.seen()
        body = json.dumps({"family": DELINQUENCY, "requested_by": "retrainer demo"}).encode()
        status, answer = await asyncio.to_thread(
            call, f"{self.run.web}/retraining/trigger", self.run.token, body
        )
        answered_at = time.time()
        reply = json.loads(answer)
        if status != 202 or reply.get("status") != "accepted":
            raise DemoError(f"POST /retraining/trigger answered {status}: {reply}")
        self.view.log(f"POST /retraining/trigger → {status} request {reply['request_id']}")
        trigger = Trigger("manual (API)", DELINQUENCY, answered_at)
        self.triggers.append(await self.follow(trigger, ["manual"], seen, True))
