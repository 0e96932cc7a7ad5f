"""Replay the raw log into a fresh warehouse and compare its state digest with the live warehouse's.

Both digests are the same function (`digest.py`, `intended.py`) applied to scratch copies: the live
warehouse is copied once through a read-only connection, the replayed file's tables are digested
where they are. The planners run on copies only; the live warehouse, the raw log and the targets
are never written.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_assets.replay import dry_run as dry
from integration_assets.replay.digest import StateDigest, state_digest, tables_digest
from integration_assets.replay.intended import plan_everything, read_only_lookups
from integration_assets.replay.read_only_raw import ReadOnlyRawLog
from integration_assets.replay.rebuild import ReplayOutcome, replay
from integration_assets.replay.scratch import copy_warehouse, with_outbox_of, without_outbox_history
from integration_assets.storage.warehouse import Warehouse


@dataclass
class ReplayComparison:
    outcome: ReplayOutcome
    replayed: StateDigest
    live: StateDigest
    dry_run: dry.DryRun | None
    seconds: float
    lookup_requests: int

    @property
    def differing(self) -> list[str]:
        return self.replayed.differing(self.live)

    @property
    def equal(self) -> bool:
        return self.outcome.succeeded and not self.differing

    def as_dict(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "differing": self.differing,
            "into": str(self.outcome.warehouse.path),
            "replay_seconds": round(self.outcome.seconds, 2),
            "total_seconds": round(self.seconds, 2),
            "failed_steps": self.outcome.failed_steps,
            "failed_checks": self.outcome.failed_checks,
            "lookup_requests": self.lookup_requests,
            "replayed": self.replayed.as_dict(),
            "live": self.live.as_dict(),
            "dry_run": None
            if self.dry_run is None
            else {
                "changes": [dataclasses.asdict(change) for change in self.dry_run.changes],
                "not_planned": [dataclasses.asdict(c) for c in self.dry_run.not_planned],
                "not_compared": {
                    "/".join(pair): reason for pair, reason in self.dry_run.not_compared.items()
                },
            },
        }


def replay_against_live(
    raw_dir: Path,
    live_path: Path,
    into: Path,
    clients: Mapping[str, Any | None] | None = None,
    include_dry_run: bool = False,
) -> ReplayComparison:
    """Replay `raw_dir` into `into`, digest both sides, and (optionally) list what would change per target.

    `clients` are the target clients the planners may look things up in (`crm`); a missing one
    leaves its deliveries "not computed" on both sides alike.
    """
    started = time.monotonic()
    if not Path(live_path).exists():
        raise FileNotFoundError(
            f"no live warehouse at {live_path}: run the pipeline first (make demo)"
        )
    outcome = replay(raw_dir, into)
    return compare_with_live(outcome, raw_dir, live_path, clients, include_dry_run, started)


def compare_with_live(
    outcome: ReplayOutcome,
    raw_dir: Path,
    live_path: Path,
    clients: Mapping[str, Any | None] | None = None,
    include_dry_run: bool = False,
    started: float | None = None,
) -> ReplayComparison:
    """Digest a finished replay and the live warehouse the same way; optionally the dry run too."""
    started = time.monotonic() if started is None else started
    raw_log = ReadOnlyRawLog(Path(raw_dir))
    lookups = read_only_lookups(clients or {})
    with tempfile.TemporaryDirectory(prefix="replay-scratch-") as scratch:
        scratch_dir = Path(scratch)
        live = copy_warehouse(Warehouse(live_path), scratch_dir / "live.duckdb")
        live_tables = tables_digest(live)
        dry_run = None
        if include_dry_run:
            heads = dry.last_intended(live)
            planned_with_history = with_outbox_of(
                copy_warehouse(outcome.warehouse, scratch_dir / "dry_run.duckdb"), live
            )
            dry_run = dry.compare(
                plan_everything(planned_with_history, raw_log, lookups),
                heads,
                plan_everything(live, raw_log, lookups),  # the live state, same code, same history
            )
        live_intended = plan_everything(without_outbox_history(live), raw_log, lookups)
        replay_planned = without_outbox_history(
            copy_warehouse(outcome.warehouse, scratch_dir / "replayed.duckdb")
        )
        replay_intended = plan_everything(replay_planned, raw_log, lookups)
    live_digest = StateDigest(dict(sorted({**live_tables, **live_intended.digests()}.items())))
    replayed_digest = state_digest(outcome.warehouse, replay_intended.digests())
    return ReplayComparison(
        outcome,
        replayed_digest,
        live_digest,
        dry_run,
        time.monotonic() - started,
        sum(lookup.requests for lookup in lookups.values()),
    )


def render(comparison: ReplayComparison) -> Iterable[str]:
    """Per part: both digests (first 16 hex digits), row counts, and EQUAL or what differs."""
    outcome = comparison.outcome
    yield (
        f"replayed {len(outcome.replayed_assets)} assets from raw into {outcome.warehouse.path} "
        f"in {outcome.seconds:.1f}s"
    )
    for step in outcome.failed_steps:
        yield f"  FAILED step {step}"
    for check in outcome.failed_checks:
        yield f"  failed check (as in a live run, not a replay error): {check}"
    yield f"{'part':<44} {'replayed':>26} {'live':>26}"
    differing = set(comparison.differing)
    for name in sorted(set(comparison.replayed.parts) | set(comparison.live.parts)):
        sides = []
        for digest in (comparison.replayed, comparison.live):
            part = digest.parts.get(name)
            sides.append(
                "absent" if part is None else f"{part.rows:>7} {part.sha256[:16] or '-':>16}"
            )
        marker = "DIFFERS" if name in differing else ""
        part = comparison.replayed.parts.get(name) or comparison.live.parts.get(name)
        note = f"  ({part.note})" if part and part.note else ""
        yield f"{name:<44} {sides[0]:>26} {sides[1]:>26} {marker}{note}".rstrip()
    yield f"{'total':<44} {comparison.replayed.total[:24]:>26} {comparison.live.total[:24]:>26}"
    if comparison.equal:
        yield "EQUAL: the state rebuilt from raw alone is the live state"
    else:
        yield f"NOT EQUAL: {len(differing)} part(s) differ: {', '.join(sorted(differing))}"
    if comparison.dry_run is not None:
        yield from dry.render(comparison.dry_run)
