"""Judge the measures against the targets, name the owner of each promise, and say it in words (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from integration_assets.contracts.health import HealthTargets
from integration_assets.health.measures import Measure
from integration_assets.health.metrics import METRICS, format_value

KEPT, BROKEN, UNJUDGED = "kept", "broken", "not judged"


@dataclass(frozen=True)
class Promise:
    metric: str
    scope: str
    value: float | None
    target: str  # "<= 2.0 h", or "" when not judged
    status: str  # kept | broken | not judged (no data, or no target for the scope)
    owner: str  # the owner's email; "" when nobody is named
    detail: str

    @property
    def broken(self) -> bool:
        return self.status == BROKEN

    def text(self) -> str:
        shown = format_value(METRICS[self.metric], self.value)
        target = f" (target {self.target})" if self.target else ""
        return f"{self.scope} {self.metric} {shown}{target}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def promise_order(promise: Promise) -> tuple[str, int]:
    """How promises are listed: by scope, then metric in the catalogue's order."""
    return promise.scope, list(METRICS).index(promise.metric)


def judge(
    measures: Iterable[Measure], targets: HealthTargets, owners: Mapping[str, str]
) -> list[Promise]:
    """One promise per measure, kept or broken by its target; `owners` maps a scope to its owner's
    email. A measure with no data, or with no target in its scope, is not judged."""
    promises = []
    for measure in measures:
        target = targets.target(measure.metric, measure.scope)
        if target is None or measure.value is None:
            status = UNJUDGED
        else:
            status = KEPT if target.met(measure.value) else BROKEN
        promises.append(
            Promise(
                metric=measure.metric,
                scope=measure.scope,
                value=measure.value,
                target="" if target is None else target.text(),
                status=status,
                owner=owners.get(measure.scope, ""),
                detail=measure.detail,
            )
        )
    return sorted(promises, key=promise_order)


def broken_by_metric(promises: Iterable[Promise]) -> dict[str, list[Promise]]:
    """Every metric, with the promises it breaks (an empty list: kept everywhere it is judged)."""
    found: dict[str, list[Promise]] = {name: [] for name in METRICS}
    for promise in promises:
        if promise.broken:
            found[promise.metric].append(promise)
    return found


def check_description(metric: str, broken: list[Promise], judged: int) -> str:
    """What a metric's check says: kept everywhere, or each broken promise and whose it is."""
    if not broken:
        return f"{metric}: kept by all {judged} streams and targets judged"
    parts = [
        f"{p.scope} {format_value(METRICS[metric], p.value)} (target {p.target}; owner {p.owner or 'nobody'})"
        for p in broken
    ]
    return f"{metric} missed by {len(broken)} of {judged}: " + "; ".join(parts)


def summary_lines(promises: list[Promise]) -> list[str]:
    """The health summary for a terminal: one line per scope with every metric, then the broken
    promises with their owners."""
    scopes: dict[str, list[Promise]] = {}
    for promise in promises:
        scopes.setdefault(promise.scope, []).append(promise)
    judged = [p for p in promises if p.status != UNJUDGED]
    broken = [p for p in promises if p.broken]
    lines = [
        f"Integration health: {len(judged)} promises judged, {len(judged) - len(broken)} kept, "
        f"{len(broken)} broken (targets: contracts/health.yaml; '!' marks a broken one)"
    ]
    width = max((len(scope) for scope in scopes), default=0)
    for scope, items in scopes.items():
        cells = [
            f"{METRICS[p.metric].label} {format_value(METRICS[p.metric], p.value)}"
            f"{'!' if p.broken else ''}"
            for p in items
            if p.value is not None
        ]
        owner = items[0].owner or "nobody"
        lines.append(f"  {scope:<{width}}  {', '.join(cells) or 'no data yet'}  [{owner}]")
    for promise in broken:
        lines.append(f"  BROKEN {promise.text()} -> {promise.owner or 'nobody'}")
    return lines
