"""Which retrain requests the trainer acts on: plain rules, no Kafka, no SQL.

A data cutoff may not lie in the future beyond a small clock skew: there is no data there yet,
and a model promoted with it would leave the count triggers comparing against the future. A
request id names one request: the same id asking for something else is refused, never answered
with the first request's outcome.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainRequested
from trainer.errors import TrainerError

CUTOFF_IN_FUTURE = "data_cutoff_in_future"
"""Reason code of a request whose data cutoff lies after now plus the allowed skew."""
REQUEST_ID_REUSED = "request_id_reused"
"""Reason code of a request whose id was first seen with another family or content."""


class RequestRefused(TrainerError):
    """A request the trainer will not act on; it goes to dead-letter with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def check_cutoff(request: RetrainRequested, now: datetime, skew: timedelta) -> None:
    """Refuse a data cutoff after `now + skew` (the skew absorbs clocks that differ a little)."""
    latest = now + skew
    if request.data_cutoff > latest:
        raise RequestRefused(
            CUTOFF_IN_FUTURE,
            f"data_cutoff {request.data_cutoff.isoformat()} is after now + {skew} "
            f"({latest.astimezone(UTC).isoformat()}): there is no data from the future",
        )


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def content_sha256(request: RetrainRequested) -> str:
    """The digest of what a request asks for.

    Left out: the envelope (event_id, occurred_at, schema_version), since a re-sent request is
    a new event, and the counters, which the policy reads afresh each time it re-sends.
    """
    content = {
        "family": request.family.value,
        "data_cutoff": _instant(request.data_cutoff),
        "force": request.force,
        "reason": request.reason.value,
        "reason_text": request.reason_text,
        "requested_by": request.requested_by,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RequestIdentity:
    """What a request id stands for: the family and the content of the request first seen."""

    request_id: UUID
    family: ModelFamily
    data_cutoff: datetime
    force: bool
    content_sha256: str | None
    """None for an id known only from the outcome log (bound before the digest was kept)."""

    @classmethod
    def of(cls, request: RetrainRequested) -> RequestIdentity:
        return cls(
            request_id=request.request_id,
            family=request.family,
            data_cutoff=request.data_cutoff,
            force=request.force,
            content_sha256=content_sha256(request),
        )

    def differences(self, other: RequestIdentity) -> list[str]:
        """How `other`, with the same id, differs from this one; empty when it is the same."""
        found: list[str] = []
        if other.family is not self.family:
            found.append(f"family {other.family.value} (first {self.family.value})")
        if other.data_cutoff != self.data_cutoff:
            found.append(
                f"data_cutoff {_instant(other.data_cutoff)} (first {_instant(self.data_cutoff)})"
            )
        if other.force != self.force:
            found.append(f"force {other.force} (first {self.force})")
        if (
            not found
            and self.content_sha256 is not None
            and other.content_sha256 is not None
            and other.content_sha256 != self.content_sha256
        ):
            found.append("reason, reason_text or requested_by")
        return found


def check_identity(bound: RequestIdentity, incoming: RequestIdentity) -> None:
    """Refuse `incoming` when its id is bound to a different request."""
    differences = bound.differences(incoming)
    if differences:
        raise RequestRefused(
            REQUEST_ID_REUSED,
            f"request_id {incoming.request_id} belongs to an earlier request; this one differs "
            f"in {'; '.join(differences)}",
        )
