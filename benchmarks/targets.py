"""The issue's targets, judged from the stage figures (pure functions, no Dagster)."""

from __future__ import annotations

from typing import Any

GIB = 1024**3
FULL_DAY_STAGES = (
    "warehouse_files",
    "extraction_orders",
    "extraction_other",
    "staging_and_gates",
    "core",
    "marts",
    "delivery",
)


def _slowest(stages: dict[str, dict[str, Any]], names: tuple[str, ...]) -> str:
    present = [(stages[name]["wall_seconds"], name) for name in names if name in stages]
    total = sum(wall for wall, _ in present) or 1.0
    ranked = sorted(present, reverse=True)[:3]
    return ", ".join(f"{name} {wall:.1f}s ({wall / total:.0%})" for wall, name in ranked)


def _steps(stage: dict[str, Any]) -> str:
    summary = (
        f"{stage.get('steps', 0)} steps summing {stage.get('steps_seconds', 0.0):.1f}s; slowest "
    )
    return summary + ", ".join(
        f"{step['step']} {step['seconds']:.1f}s" for step in stage.get("slowest_steps", [])[:3]
    )


def evaluate_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: name, value, limit, unit, met, and where the time goes when it is not met."""
    stages = figures["stages"]
    overhead = figures["orchestration_overhead"]["wall_seconds"]
    full_wall = sum(stages[name]["wall_seconds"] for name in FULL_DAY_STAGES if name in stages)
    full_rss = max(stages[name]["peak_rss_bytes"] for name in FULL_DAY_STAGES if name in stages)
    incremental = stages["incremental_full_history"]
    empty = stages["incremental_empty_history"]
    asset_work = max(0.0, incremental["wall_seconds"] - overhead)
    empty_work = max(0.0, empty["wall_seconds"] - overhead)
    ratio = asset_work / empty_work if empty_work else None
    alone = figures["sandbox_alone"]["rows_per_second"] or 0.0
    extraction = stages["extraction_orders"]["rows_per_second"] or 0.0
    efficiency = extraction / alone if alone else None
    targets = [
        {
            "name": "full_day_wall_seconds",
            "value": round(full_wall, 2),
            "limit": 60.0,
            "unit": "s",
            "met": full_wall <= 60.0,
            "where_the_time_goes": "slowest stages: " + _slowest(stages, FULL_DAY_STAGES),
        },
        {
            "name": "full_day_peak_rss_gib",
            "value": round(full_rss / GIB, 3),
            "limit": 2.0,
            "unit": "GiB",
            "met": full_rss <= 2 * GIB,
            "where_the_time_goes": "largest stage peaks: "
            + ", ".join(
                f"{name} {stages[name]['peak_rss_bytes'] / GIB:.2f} GiB"
                for name in sorted(
                    (n for n in FULL_DAY_STAGES if n in stages),
                    key=lambda n: -stages[n]["peak_rss_bytes"],
                )[:3]
            ),
        },
        {
            "name": "incremental_asset_work_seconds",
            "value": round(asset_work, 2),
            "limit": 5.0,
            "unit": "s",
            "met": asset_work <= 5.0,
            "where_the_time_goes": f"run {incremental['wall_seconds']:.1f}s minus orchestration "
            f"{overhead:.1f}s; {_steps(incremental)}",
        },
        {
            "name": "incremental_full_over_empty_history",
            "value": None if ratio is None else round(ratio, 2),
            "limit": 1.5,
            "unit": "x",
            "met": ratio is not None and ratio <= 1.5,
            "where_the_time_goes": f"asset work {asset_work:.1f}s on the full history vs "
            f"{empty_work:.1f}s on an empty one; full history: {_steps(incremental)}; "
            f"empty history: {_steps(empty)}",
        },
        {
            "name": "extraction_efficiency",
            "value": None if efficiency is None else round(efficiency, 3),
            "limit": 0.8,
            "unit": "of sandbox-alone orders/s",
            "met": efficiency is not None and efficiency >= 0.8,
            "where_the_time_goes": f"pipeline {extraction:.0f} orders/s vs sandbox alone {alone:.0f} "
            f"orders/s; the difference is the client's parsing, hashing and raw-log writing plus the step's "
            f"own overhead",
        },
    ]
    for target in targets:
        if target["met"]:
            target["where_the_time_goes"] = None
    return targets
