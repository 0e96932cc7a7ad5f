"""Dagster's orchestration cost alone: the hourly job's asset graph with bodies that do nothing."""

from __future__ import annotations

import time

import dagster as dg

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def trivial_graph(job: dg.JobDefinition) -> list[dg.AssetsDefinition]:
    """One asset per key of `job`, each depending on the same upstream keys, each returning at once."""
    asset_graph = job.asset_layer.asset_graph
    keys = sorted(asset_graph.executable_asset_keys)
    selected = set(keys)
    assets = []
    for key in keys:
        deps = [parent for parent in asset_graph.get(key).parent_keys if parent in selected]

        @dg.asset(key=key, deps=deps, name=None)
        def _noop() -> None:
            return None

        assets.append(_noop)
    return assets


def orchestration_seconds(job: dg.JobDefinition, runs: int = 3) -> dict:
    """Materialize the trivial graph `runs` times in process; the fastest run is the overhead."""
    assets = trivial_graph(job)
    instance = dg.DagsterInstance.ephemeral()
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        result = dg.materialize(assets, instance=instance, run_config=QUIET_LOGS)
        walls.append(time.perf_counter() - started)
        if not result.success:
            raise RuntimeError("the trivial graph failed to materialize")
    return {
        "assets": len(assets),
        "runs": runs,
        "wall_seconds": round(min(walls), 3),
        "wall_seconds_each": [round(wall, 3) for wall in walls],
    }
