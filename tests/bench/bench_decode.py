"""Decode throughput per upstream topic, in one run: the pydantic models (the codec without its
fast path), msgspec structs alone, and the codec's fast path (msgspec, then the same pydantic
events built without a second validation), with the ratios between them.

Rates are events per second of this process's CPU time: decoding is CPU-bound and single-threaded,
and on a shared machine wall time mostly measures the other processes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import msgspec

from schemas import fast_decode
from schemas.base import Contract, Event
from schemas.codec import Codec
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated
from schemas.errors import DecodeError
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.limits import DEFAULT_LIMITS
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.factories import customer, label, sheet, statement

MESSAGES = 2000
"""Messages per topic and pass."""
REPEATS = 7
"""Passes per decoder; the best counts (the machine is shared, so the slowest are noise)."""
CLOCK = datetime(2028, 1, 1, tzinfo=UTC)
"""After every factory date, so nothing is refused as lying in the future."""

Decode = Callable[[bytes], object]


@dataclass(frozen=True)
class Pass:
    """One decoder over one list of messages."""

    decode: Decode
    messages: Sequence[bytes]
    rejects: bool = False
    """Whether every message is expected to be refused."""
    around: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext
    """Entered for the whole pass (to swap a piece of the fast path for a variant)."""


def _messages() -> dict[str, tuple[type[Event], list[bytes]]]:
    codec = Codec(clock=lambda: CLOCK)
    events: dict[str, tuple[type[Event], list[Event]]] = {
        "sheet": (ExpenseSheetSubmitted, [sheet(n) for n in range(MESSAGES)]),
        "customer": (CustomerCreated, [customer(n) for n in range(MESSAGES)]),
        "activity": (
            CustomerActivityRecorded,
            [statement(f"c-{n}", n % 12, days_past_due=n % 45) for n in range(MESSAGES)],
        ),
        "label": (
            ExpenseLabelled,
            [label(f"s-{n}-{n % 6}", n % 9 == 0) for n in range(MESSAGES)],
        ),
    }
    return {
        topic: (event_type, [codec.encode(event) for event in batch])
        for topic, (event_type, batch) in events.items()
    }


def _rejected(event_type: type[Event], data: bytes) -> bytes:
    """`data` with one amount (or, for labels, a date) made invalid: a dead letter."""
    if event_type is ExpenseLabelled:
        return data.replace(b'"labelled_at":"2026', b'"labelled_at":"2099', 1)
    for field in (b'"amount":"', b'"credit_limit":"'):
        if field in data:
            return data.replace(field, field + b"-", 1)
    raise AssertionError(f"no amount in {data[:80]!r}")


def _construct(model: type[Contract], values: dict[str, Any], fields_set: set[str]) -> Any:
    return model.model_construct(fields_set, **values)


def _rate(run: Pass) -> float:
    with run.around():
        began = time.process_time()
        for data in run.messages:
            try:
                run.decode(data)
            except DecodeError:
                if not run.rejects:
                    raise
        elapsed = time.process_time() - began
    return len(run.messages) / elapsed


def _best_rates(passes: dict[str, Pass]) -> dict[str, float]:
    """The best events/s of each pass over REPEATS rounds, interleaved so that a busy moment of
    the shared machine does not fall on one decoder only."""
    best = dict.fromkeys(passes, 0.0)
    for _ in range(REPEATS):
        for name, run in passes.items():
            best[name] = max(best[name], _rate(run))
    return best


def bench_decode(ctx: BenchContext) -> BenchResult:
    """Per topic: events/s of each decoder, and fast path / pydantic (the gain that ships)."""
    del ctx  # no stack needed
    pydantic_codec = Codec(clock=lambda: CLOCK, fast_path=False)
    fast_codec = Codec(clock=lambda: CLOCK)
    structs = fast_decode.wire_structs(DEFAULT_LIMITS.max_string_length)
    for topic, (event_type, messages) in _messages().items():
        for data in messages[:50]:  # the fast path must take these messages itself
            assert fast_codec.decode_as(event_type, data) == pydantic_codec.decode_as(
                event_type, data
            )
        msgspec_only = msgspec.json.Decoder(structs[event_type]).decode
        bad = [_rejected(event_type, data) for data in messages[: MESSAGES // 4]]
        for data in bad[:5]:
            with contextlib.suppress(DecodeError):
                fast_codec.decode_as(event_type, data)
                raise AssertionError(f"{topic}: a message meant to be refused was accepted")

        def pydantic(data: bytes, event_type: type[Event] = event_type) -> object:
            return pydantic_codec.decode_as(event_type, data)

        def fast(data: bytes, event_type: type[Event] = event_type) -> object:
            return fast_codec.decode_as(event_type, data)

        rates = _best_rates(
            {
                "pydantic": Pass(pydantic, messages),
                "msgspec_structs": Pass(msgspec_only, messages),
                "fast_path": Pass(fast, messages),
                "fast_path_model_construct": Pass(
                    fast,
                    messages,
                    around=lambda: mock.patch.object(fast_decode, "built", _construct),
                ),
                "pydantic_rejected": Pass(pydantic, bad, rejects=True),
                "fast_path_rejected": Pass(fast, bad, rejects=True),
            }
        )
        print(f"# decode {topic}: {len(messages[0])} bytes a message")
        for name, rate in rates.items():
            yield Figure(f"decode_{topic}_{name}_events_per_s", rate, "events/s")
        baseline = rates["pydantic"]
        yield Figure(
            f"decode_{topic}_fast_path_vs_pydantic", rates["fast_path"] / baseline, "ratio"
        )
        yield Figure(
            f"decode_{topic}_msgspec_structs_vs_pydantic",
            rates["msgspec_structs"] / baseline,
            "ratio",
        )
        yield Figure(
            f"decode_{topic}_fast_path_model_construct_vs_pydantic",
            rates["fast_path_model_construct"] / baseline,
            "ratio",
        )
        yield Figure(
            f"decode_{topic}_rejected_fast_path_vs_pydantic",
            rates["fast_path_rejected"] / rates["pydantic_rejected"],
            "ratio",
        )
