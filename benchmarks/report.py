"""The printed table and the results file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIB = 1024**2


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def render_table(results: dict[str, Any]) -> str:
    lines = [
        f"Benchmark {results['date']}: {results['size']['orders']:,} orders, "
        f"incremental {results['size']['incremental_changed_orders']:,} changed orders, "
        f"{results['machine']['cpu_count']} cores",
        f"{'stage':28} {'wall s':>9} {'rows':>11} {'rows/s':>11} {'MB/s':>8} {'peak RSS MiB':>13} ok",
    ]
    rows = {"sandbox_alone": results["sandbox_alone"], **results["stages"]}
    rows["orchestration_overhead"] = results["orchestration_overhead"]
    for name, stage in rows.items():
        rss = stage.get("peak_rss_bytes")
        lines.append(
            f"{name:28} {_number(stage.get('wall_seconds'), 2):>9} {_number(stage.get('records')):>11} "
            f"{_number(stage.get('rows_per_second')):>11} {_number(stage.get('mb_per_second'), 2):>8} "
            f"{_number(None if rss is None else rss / MIB, 0):>13} "
            f"{'' if stage.get('success', True) else 'FAILED'}"
        )
    lines.append("")
    lines.append(f"{'target':36} {'value':>10} {'limit':>8}  met")
    for target in results["targets"]:
        lines.append(
            f"{target['name']:36} {_number(target['value'], 2):>10} {_number(target['limit'], 2):>8}  "
            f"{'yes' if target['met'] else 'NO'}"
        )
        if target["where_the_time_goes"]:
            lines.append(f"    {target['where_the_time_goes']}")
    return "\n".join(lines)


def write_results(results: dict[str, Any], folder: Path) -> Path:
    """`<folder>/<date>.json`; a second run on the same day gets `<date>-<n>.json`, nothing is overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{results['date']}.json"
    counter = 2
    while path.exists():
        path = folder / f"{results['date']}-{counter}.json"
        counter += 1
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path
