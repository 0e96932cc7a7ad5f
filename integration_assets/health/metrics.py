"""The success metrics: their names, units, which way is better, and where they apply.

A scope is a source stream (`source:storefront/orders`) or a target system (`target:erp`). The
targets themselves are configuration (contracts/health.yaml); what each metric means is here and in
`measures.py`, which computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE, TARGET = "source", "target"
# A check's metadata entry naming, comma-separated, the owners of the promises it found broken:
# `integration-assets owners` lists a failed check under them rather than under the asset's owner,
# and the failed-check alert is addressed to them.
CHECK_OWNERS_METADATA = "owners"
# ...and, as JSON, each of those owners' own broken promises in words: {email: "..."}.
CHECK_OWNER_TEXTS_METADATA = "broken_by_owner"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # hours, minutes, ratio, count
    bound: str  # "max": the value must not be above the target; "min": not below it
    scopes: frozenset[str]  # SOURCE, TARGET
    label: str  # a short heading for the summary


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("freshness_hours", "hours", "max", frozenset({SOURCE}), "fresh"),
        Metric("latency_p95_minutes", "minutes", "max", frozenset({TARGET}), "latency p95"),
        Metric("error_rate", "ratio", "max", frozenset({SOURCE, TARGET}), "errors"),
        Metric("quarantine_rate", "ratio", "max", frozenset({SOURCE, TARGET}), "quarantined"),
        Metric("dead_letters_open", "count", "max", frozenset({TARGET}), "dead letters"),
        Metric("dead_letter_age_hours", "hours", "max", frozenset({TARGET}), "oldest dead"),
        Metric("manual_interventions", "count", "max", frozenset({TARGET}), "manual"),
        Metric("reconciliation_match_rate", "ratio", "min", frozenset({SOURCE}), "reconciled"),
        Metric("records_per_run", "count", "max", frozenset({SOURCE, TARGET}), "records/run"),
    )
}

# The target systems, by their names in ops.outbox and the audit trail.
TARGETS = ("erp", "crm", "wms")


def scope_kind(scope: str) -> str:
    """`source` or `target` for `source:<stream>` / `target:<system>`; ValueError otherwise."""
    kind, _, name = scope.partition(":")
    if kind not in (SOURCE, TARGET) or not name:
        raise ValueError(f"a scope is source:<stream> or target:<system>, got {scope!r}")
    return kind


def format_value(metric: Metric, value: float | None) -> str:
    """The value as a person reads it: 1.5 h, 12 min, 3.1%, 4 (pure)."""
    if value is None:
        return "no data"
    if metric.unit == "ratio":
        return f"{value * 100:.1f}%"
    if metric.unit == "hours":
        return f"{value:.1f} h"
    if metric.unit == "minutes":
        return f"{value:.1f} min"
    return f"{value:g}"
