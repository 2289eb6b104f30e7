"""Metric names: those the services export (from their registries) and those PromQL text uses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.registry import CollectorRegistry

# The series a metric family exposes, by type (OpenMetrics naming, as prometheus_client writes).
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}

PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}
)
"""Words of the language itself, never series names."""

PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus writes for every target it scrapes."""


def series_names(registry: CollectorRegistry) -> set[str]:
    """Every series name `registry` exposes, including those of labelled metrics not yet used."""
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def _registries() -> dict[str, CollectorRegistry]:
    """Each service's registry: the worker's default one, the trainer's own."""
    from prometheus_client import REGISTRY

    import streams.metrics
    import trainer.metrics

    assert streams.metrics.EVENTS_CONSUMED is not None  # the import registers the worker's
    return {"worker": REGISTRY, "trainer": trainer.metrics.REGISTRY}


def exported_metric_names() -> dict[str, set[str]]:
    """The series each service exports."""
    return {service: series_names(registry) for service, registry in _registries().items()}


def exported_families() -> dict[str, set[str]]:
    """The metrics of each service as people name them: counters with `_total`, info `_info`."""
    shown = {"counter": "_total", "info": "_info"}
    return {
        service: {family.name + shown.get(family.type, "") for family in registry.collect()}
        for service, registry in _registries().items()
    }


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_WORD = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expression: str) -> set[str]:
    """The series names a PromQL expression selects (functions, keywords, labels left out)."""
    text = _STRING.sub('""', expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names: set[str] = set()
    for match in _WORD.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if word in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def all_names(expressions: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for expression in expressions:
        found |= metric_names(expression)
    return found
