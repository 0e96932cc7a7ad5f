"""One run of a staging gate: every batch's verdicts recorded, then one check result per check.

Each domain judges its batches its own way; what every gate shares is kept here: a verdict is
written to ops.batch_gates as it is reached (so a failed batch stays out of core in later runs
too), and each check reports which batches it blocked and why.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
import duckdb

from integration_assets.storage import gates

NO_BALANCE = "no balance recorded for this batch"


def count_balance_verdict(
    con: duckdb.DuckDBPyConnection, asset_key: dg.AssetKey, scope: str, scope_like: bool = False
) -> tuple[bool, str]:
    """Did every count balance staging recorded for the batch (`scope`, or scopes LIKE it) hold?
    A batch with none recorded fails: staging writes its books in the batch's transaction."""
    holds, text = con.execute(
        "SELECT bool_and(holds), string_agg(text, '; ') FROM ops.count_balances "
        f"WHERE asset_key = ? AND scope {'LIKE' if scope_like else '='} ?",
        [asset_key.to_user_string(), scope],
    ).fetchone()
    return bool(holds), text or NO_BALANCE


class GateRun:
    """The verdicts of one gate run, by check: (batch label, passed, reason) in the order judged."""

    def __init__(self, check_names: Iterable[str], run_id: str) -> None:
        self.run_id = run_id
        self.verdicts: dict[str, list[tuple[str, bool, str]]] = {name: [] for name in check_names}

    def record(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: str,
        batch_id: str,
        judged: Mapping[str, tuple[Any, str]],
        label: str | None = None,
    ) -> None:
        """Keep each check's verdict on one batch, in ops.batch_gates and for the report;
        `label` names the batch in the report (the batch id unless given)."""
        for name, (passed, reason) in judged.items():
            gates.record_verdict(con, stream, batch_id, name, bool(passed), reason, self.run_id)
            self.verdicts[name].append((label or batch_id, bool(passed), reason))

    def results(
        self,
        asset_key: dg.AssetKey,
        check_names: Iterable[str] | None = None,
        verdicts_batch_key: str | None = "batch_id",
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[dg.AssetCheckResult]:
        """One result per check (all recorded unless `check_names`): passed when no batch failed,
        the blocked batches and reasons as its description; with `verdicts_batch_key`, every
        verdict in the metadata, the batch under that key."""
        for name in self.verdicts if check_names is None else check_names:
            judged = self.verdicts[name]
            failed = [(batch, reason) for batch, passed, reason in judged if not passed]
            details: dict[str, Any] = {
                "batches_judged": len(judged),
                "batches_failed": len(failed),
                **(metadata or {}),
            }
            if verdicts_batch_key is not None:
                details["verdicts"] = dg.MetadataValue.json(
                    [
                        {verdicts_batch_key: batch, "passed": passed, "reason": reason}
                        for batch, passed, reason in judged
                    ]
                )
            yield dg.AssetCheckResult(
                check_name=name,
                asset_key=asset_key,
                passed=not failed,
                description="; ".join(f"batch {b} blocked: {r}" for b, r in failed) or None,
                metadata=details,
            )
