"""The health targets (health.yaml): what each success metric must stay within, per stream and target.

Strict like the other contracts: an unknown metric, a bound the metric does not take (`min` for a
metric where lower is better), an unknown scope or key fails loading, naming the file and the key.
Read through `contract_file`, so INTEGRATION_ASSETS_CONTRACTS_DIR can try a changed target first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integration_assets.contracts.location import contract_file
from integration_assets.health.metrics import METRICS, Metric, format_value, scope_kind
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

HEALTH_FILENAME = "health.yaml"


class HealthTargetsError(ValueError):
    """A health file that does not say what it must; the message names the file and the key."""


@dataclass(frozen=True)
class Target:
    metric: Metric
    value: float  # the bound: at most (max) or at least (min)

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.metric.bound == "max" else measured >= self.value

    def text(self) -> str:
        sign = "<=" if self.metric.bound == "max" else ">="
        return f"{sign} {format_value(self.metric, self.value)}"


@dataclass(frozen=True)
class HealthTargets:
    source: Path
    version: int
    window_hours: int
    defaults: Mapping[str, Target]
    descriptions: Mapping[str, str]
    # scope -> metric -> the target there, or None: measured and shown, not judged
    overrides: Mapping[str, Mapping[str, Target | None]] = field(default_factory=dict)

    def target(self, metric: str, scope: str) -> Target | None:
        """The target `metric` must meet in `scope`; None when it is not judged there."""
        scoped = self.overrides.get(scope, {})
        return scoped[metric] if metric in scoped else self.defaults[metric]


class _HealthReader(StrictYamlReader):
    error_class = HealthTargetsError


def load_health_targets(path: str | Path | None = None) -> HealthTargets:
    """Read and validate a health file (default: `contract_file("health.yaml")`); raises
    HealthTargetsError naming the file and the key."""
    file = Path(path) if path is not None else contract_file(HEALTH_FILENAME)
    raw = load_yaml_file(file, HealthTargetsError, "health")
    reader = _HealthReader(file)
    top = reader.mapping(raw, "", {"version", "window_hours", "metrics", "overrides"})
    version = reader.integer(reader.required(top, "version", ""), "version", minimum=1)
    window = reader.integer(reader.required(top, "window_hours", ""), "window_hours", minimum=1)
    specs = reader.mapping(reader.required(top, "metrics", ""), "metrics", set(METRICS))
    missing = sorted(set(METRICS) - set(specs))
    if missing:
        raise reader.fail(f"metrics.{missing[0]}", "missing (every metric needs a target)")
    defaults, descriptions = {}, {}
    for name, metric in METRICS.items():
        path = f"metrics.{name}"
        spec = reader.mapping(specs[name], path, {metric.bound, "description"})
        defaults[name] = _target(reader, metric, reader.required(spec, metric.bound, path), path)
        descriptions[name] = reader.string(
            reader.required(spec, "description", path), f"{path}.description"
        )
    overrides: dict[str, dict[str, Target | None]] = {}
    for scope, raw_scope in reader.mapping(top.get("overrides") or {}, "overrides").items():
        path = f"overrides.{scope}"
        try:
            kind = scope_kind(str(scope))
        except ValueError as error:
            raise reader.fail(path, str(error)) from None
        allowed = {name for name, metric in METRICS.items() if kind in metric.scopes}
        overrides[scope] = {
            name: None if value is None else _target(reader, METRICS[name], value, f"{path}.{name}")
            for name, value in reader.mapping(raw_scope, path, allowed).items()
        }
    return HealthTargets(file, version, window, defaults, descriptions, overrides)


def _target(reader: _HealthReader, metric: Metric, value: Any, path: str) -> Target:
    number = reader.number(value, path, minimum=0)
    if metric.unit == "ratio" and number > 1:
        raise reader.fail(path, f"a rate is between 0 and 1 (0.02 is 2%), got {number}")
    return Target(metric, float(number))
