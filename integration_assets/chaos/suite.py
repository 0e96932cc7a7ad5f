"""Run the chaos cases and print the table: fault, runs, records, and each invariant.

`integration-assets chaos` (`make chaos`) runs every case; `--small` the few that `make test` runs;
`--case NAME` one. Exit 0 only when every invariant of every case holds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from integration_assets.chaos.cases import CASES, Case
from integration_assets.chaos.invariants import Invariant, check_all
from integration_assets.chaos.scenario import SECRETS, chaos_scenario_raw, with_changes
from integration_assets.chaos.stack import ChaosStack

# The invariants every case keeps, as the table's columns.
COLUMNS = ("accounted", "no_duplicates", "ledgers_balance", "hostile_verbatim", "no_secrets")


@dataclass(frozen=True)
class CaseResult:
    case: Case
    runs: int
    failed_runs: int
    records: int
    invariants: tuple[Invariant, ...]
    seconds: float

    @property
    def holds(self) -> bool:
        return all(invariant.holds for invariant in self.invariants)

    def as_dict(self) -> dict:
        return {
            "case": self.case.name,
            "fault": self.case.fault,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "records": self.records,
            "seconds": round(self.seconds, 1),
            "holds": self.holds,
            "invariants": [invariant.__dict__ for invariant in self.invariants],
        }


def run_case(case: Case, folder: Path) -> CaseResult:
    """One case in `folder` (its data dir, Dagster home and scenario): drive it, then check."""
    started = time.monotonic()
    raw = with_changes(chaos_scenario_raw(), case.changes)
    with ChaosStack(folder, raw, client_settings=case.client_settings) as stack:
        own = case.drive(stack)
        assert stack.systems is not None
        shared = check_all(stack.systems, folder, stack.warehouse, SECRETS.values())
        runs, failed_runs, records = stack.tally()
    return CaseResult(
        case,
        runs,
        failed_runs,
        records,
        (*shared, *own),
        time.monotonic() - started,
    )


def run_suite(
    cases: Iterable[Case], work: Path | None = None, keep: bool = False
) -> list[CaseResult]:
    """Every case in its own folder under `work` (a new temporary one by default), printed as it ends."""
    root = Path(tempfile.mkdtemp(prefix="chaos-")) if work is None else work
    results = []
    try:
        for case in cases:
            result = run_case(case, root / case.name)
            print(render_row(result), flush=True)
            results.append(result)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return results


def render_row(result: CaseResult) -> str:
    by_name = {invariant.name: invariant for invariant in result.invariants}
    shared = " ".join(by_name[column].mark for column in COLUMNS)
    own = [i for i in result.invariants if i.name not in COLUMNS]
    own_text = ", ".join(f"{i.name} {i.mark.strip()}" for i in own)
    runs = (
        f"{result.runs} ({result.failed_runs} failed)" if result.failed_runs else str(result.runs)
    )
    return f"{result.case.name:<20} {runs:>13} {result.records:>8}   {shared}   {own_text}"


def render_table(results: Sequence[CaseResult]) -> str:
    header = (
        f"{'fault':<20} {'runs':>13} {'records':>8}   "
        + " ".join(column[:4] for column in ("accounted", "dupes", "ledgers", "hostile", "secrets"))
        + "   this fault's own"
    )
    lines = [header, "-" * len(header), *(render_row(result) for result in results)]
    failures = [
        f"  {result.case.name}: {invariant.name}: {invariant.detail}"
        for result in results
        for invariant in result.invariants
        if not invariant.holds
    ]
    lines.append("")
    lines += ["Faults injected:"] + [f"  {r.case.name}: {r.case.fault}" for r in results]
    if failures:
        lines += ["", "Invariants broken:", *failures]
    else:
        lines += ["", f"Every invariant held in all {len(results)} cases."]
    return "\n".join(lines)


def select_cases(small: bool = False, names: Sequence[str] = ()) -> list[Case]:
    by_name = {case.name: case for case in CASES}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"unknown chaos case {unknown[0]!r} (one of: {', '.join(by_name)})")
    if names:
        return [by_name[name] for name in names]
    return [case for case in CASES if case.small or not small]


def main(
    small: bool = False,
    names: Sequence[str] = (),
    json_path: Path | None = None,
    keep: Path | None = None,
    soak_hours: int = 24,
) -> int:
    """The cases (all, `small`, or `names`), then the soak unless `soak_hours` is 0; exit code."""
    from integration_assets.chaos.soak import render_soak, run_soak

    cases = select_cases(small, names)
    print(
        f"Chaos suite: {len(cases)} cases, each on its own sandbox, data dir and Dagster instance."
    )
    started = time.monotonic()
    results = run_suite(cases, keep, keep=keep is not None)
    print()
    print(render_table(results))
    soak = None
    if soak_hours and not small and not names:
        print(f"\nSoak: {soak_hours} simulated hours with faults mixed in ...", flush=True)
        root = keep if keep is not None else Path(tempfile.mkdtemp(prefix="soak-"))
        try:
            soak = run_soak(root / "soak", hours=soak_hours, orders=10 * soak_hours)
        finally:
            if keep is None:
                shutil.rmtree(root, ignore_errors=True)
        print(render_soak(soak))
    print(f"\nWall time: {time.monotonic() - started:.0f} s.")
    if json_path is not None:
        document = {"cases": [r.as_dict() for r in results]}
        if soak is not None:
            document["soak"] = soak.as_dict()
        json_path.write_text(json.dumps(document, indent=2))
    held = all(result.holds for result in results) and (soak is None or soak.holds)
    return 0 if held else 1
