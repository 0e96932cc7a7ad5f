"""The soak: 24 simulated hours of hourly syncs with faults mixed in, retention applied as scheduled.

Every hour the clock moves an hour and the warehouse file sync and the hourly sync run; the sources
and targets misbehave now and then (429 bursts, 5xx, a body that is not JSON, token and session
expiry, bad warehouse files, the ERP down for two hours); every `RETENTION_EVERY` hours the retention
policy runs, as its daily schedule would over a longer life (its thresholds scaled to the soak: what
is older than the last run is compressed). After the last hour: the invariants every chaos case
keeps, and the disk: the footprint's growth per hour in the second half is no more than in the first
(plus a margin), i.e. it follows the data, nothing accumulates on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_assets.chaos.cases import BAD_FILES, _nothing_waiting, _recovered
from integration_assets.chaos.invariants import Invariant, check_all
from integration_assets.chaos.scenario import SECRETS, chaos_scenario_raw, with_changes
from integration_assets.chaos.stack import ChaosStack, run_selection
from integration_assets.storage.retention import folder_bytes

RETENTION_EVERY = 6
OUTAGE_HOURS = (9, 10)  # the ERP is down during these hours' runs
GROWTH_MARGIN = 1.5  # the second half may grow at most this much faster than the first


def soak_faults(hours: int) -> dict[str, Any]:
    """Faults spread over the day's requests (each system numbers its own)."""
    return {
        "faults": [
            *(
                {"kind": "rate_limit_burst", "after_requests": n, "count": 3, "retry_after": 0.05}
                for n in (5, 60, 140)
            ),
            *(
                {"kind": "server_error", "after_requests": n, "count": 2, "status": 503}
                for n in (25, 100)
            ),
            {"kind": "invalid_json", "after_requests": 45, "count": 1},
            {"kind": "truncated_body", "after_requests": 120, "count": 1},
        ],
        "payments": {
            "faults": [
                {"kind": "payments_rate_limit", "after_requests": n, "count": 3} for n in (20, 200)
            ]
        },
        "erp": {"faults": [{"kind": "expire_tokens", "after_requests": 30}]},
        "crm": {
            "faults": [
                {"kind": "expire_sessions", "after_requests": 15},
                {"kind": "server_error", "after_requests": 40, "count": 2, "status": 500},
            ]
        },
        "warehouse": {
            "bad_files": [
                {**bad, "at": f"+{hour}h{bad['at'][-3:]}"}
                for bad, hour in zip(BAD_FILES, range(4, hours, 5), strict=False)
            ]
        },
    }


@dataclass(frozen=True)
class HourFootprint:
    hour: int
    raw_bytes: int
    audit_bytes: int
    warehouse_bytes: int
    dagster_bytes: int

    @property
    def total(self) -> int:
        return self.raw_bytes + self.audit_bytes + self.warehouse_bytes + self.dagster_bytes


@dataclass(frozen=True)
class SoakResult:
    hours: int
    runs: int
    failed_runs: int
    records: int
    footprints: tuple[HourFootprint, ...]
    retention: tuple[dict[str, Any], ...]
    invariants: tuple[Invariant, ...]
    seconds: float

    @property
    def holds(self) -> bool:
        return all(invariant.holds for invariant in self.invariants)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "records": self.records,
            "seconds": round(self.seconds, 1),
            "holds": self.holds,
            "footprints": [{**f.__dict__, "total": f.total} for f in self.footprints],
            "retention": list(self.retention),
            "invariants": [invariant.__dict__ for invariant in self.invariants],
        }


def footprint(stack: ChaosStack, hour: int) -> HourFootprint:
    data = stack.data_dir
    return HourFootprint(
        hour,
        folder_bytes(data / "raw"),
        folder_bytes(data / "audit"),
        sum(p.stat().st_size for p in data.glob("warehouse.duckdb*")),
        folder_bytes(stack.dagster_home),
    )


def growth_bounded(footprints: list[HourFootprint]) -> Invariant:
    """The footprint's growth per hour in the second half at most GROWTH_MARGIN x the first half's."""
    half = len(footprints) // 2
    first = (footprints[half - 1].total - footprints[0].total) / max(half - 1, 1)
    second = (footprints[-1].total - footprints[half - 1].total) / max(len(footprints) - half, 1)
    return Invariant(
        "disk_growth_bounded",
        second <= GROWTH_MARGIN * first,
        f"{first / 1024:.0f} KiB/h over hours 1-{half}, {second / 1024:.0f} KiB/h over hours "
        f"{half + 1}-{len(footprints)}; {footprints[-1].total / 1024 / 1024:.1f} MiB in all",
    )


def run_soak(folder: Path, hours: int = 24, orders: int = 240) -> SoakResult:
    started = time.monotonic()
    raw = with_changes(chaos_scenario_raw(hours=hours, orders=orders), soak_faults(hours))
    footprints: list[HourFootprint] = []
    retention: list[dict[str, Any]] = []
    with ChaosStack(folder, raw) as stack:
        assert stack.systems is not None and stack.instance is not None
        for hour in range(1, hours + 1):
            stack.advance(1)
            stack.systems.erp.app.set_down(hour in OUTAGE_HOURS)
            stack.hourly(f"hour {hour}")
            if hour % RETENTION_EVERY == 0:
                run = run_selection(
                    stack.instance,
                    "retention_daily",
                    f"retention after hour {hour}",
                    run_config={
                        "ops": {
                            "ops__retention": {
                                "config": {
                                    "compress_raw_after_hours": 0.0,
                                    "archive_audit_after_hours": 0.0,
                                }
                            }
                        }
                    },
                )
                stack.runs.append(run)
                retention.append(_retention_metadata(stack, run.run_id))
            footprints.append(footprint(stack, hour))
        invariants = [
            *check_all(stack.systems, folder, stack.warehouse, SECRETS.values()),
            _recovered(stack),
            _nothing_waiting(stack),
            growth_bounded(footprints),
            _retention_worked(retention),
        ]
        runs, failed_runs, records = stack.tally()
    return SoakResult(
        hours,
        runs,
        failed_runs,
        records,
        tuple(footprints),
        tuple(retention),
        tuple(invariants),
        time.monotonic() - started,
    )


def _retention_metadata(stack: ChaosStack, run_id: str) -> dict[str, Any]:
    import dagster as dg

    assert stack.instance is not None
    event = stack.instance.get_latest_materialization_event(dg.AssetKey(["ops", "retention"]))
    if event is None or event.run_id != run_id:
        return {"run_id": run_id, "materialized": False}
    metadata = event.asset_materialization.metadata
    return {"run_id": run_id, **{key: value.value for key, value in metadata.items()}}


def _retention_worked(retention: list[dict[str, Any]]) -> Invariant:
    compressed = sum(int(r.get("raw_files_compressed", 0)) for r in retention)
    before = sum(
        int(r.get("raw_bytes_before", 0)) + int(r.get("audit_bytes_before", 0)) for r in retention
    )
    after = sum(
        int(r.get("raw_bytes_after", 0)) + int(r.get("audit_bytes_after", 0)) for r in retention
    )
    archived = sum(int(r.get("audit_files_archived", 0)) for r in retention)
    return Invariant(
        "retention_applied",
        len(retention) > 0
        and all(r.get("materialized", True) for r in retention)
        and compressed > 0,
        f"{len(retention)} retention runs: {compressed} raw files compressed, {archived} audit files "
        f"archived, {before / 1024:.0f} KiB -> {after / 1024:.0f} KiB",
    )


def render_soak(result: SoakResult) -> str:
    lines = [
        f"Soak: {result.hours} simulated hours, {result.runs} runs ({result.failed_runs} failed and "
        f"recovered), {result.records} records, {result.seconds:.0f} s",
        "  hour   raw KiB  audit KiB  warehouse KiB  dagster KiB",
    ]
    for f in result.footprints:
        if f.hour % RETENTION_EVERY == 0 or f.hour == 1:
            lines.append(
                f"  {f.hour:>4} {f.raw_bytes / 1024:>9.0f} {f.audit_bytes / 1024:>10.0f} "
                f"{f.warehouse_bytes / 1024:>14.0f} {f.dagster_bytes / 1024:>12.0f}"
            )
    lines += [f"  {i.mark} {i.name}: {i.detail}" for i in result.invariants]
    return "\n".join(lines)
