"""ops.mapping_quarantine: the writes a planner could not build, and why, one row per record.

A plan replaces what it planned: every row of its (target, entity) after a full plan, only the rows of
the orders it mapped after an order-scoped one (delivery/order_scope.py), so a record quarantined by
an earlier plan stays quarantined until its order is planned again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import duckdb

from integration_assets.storage.warehouse import ORDER_ID_OF_SOURCE_REF
from integration_assets.streams.timestamps import utc_now_naive


class NotBuilt(Protocol):
    external_id: str
    reason: str
    source_ref: str


def replace_quarantine(
    con: duckdb.DuckDBPyConnection,
    target: str,
    entity: str,
    quarantined: Sequence[NotBuilt],
    run_id: str,
    order_ids: Collection[int] | None = None,
) -> None:
    """Replace the (target, entity) rows (only those of `order_ids` when given) with `quarantined`."""
    if order_ids is None:
        con.execute(
            "DELETE FROM ops.mapping_quarantine WHERE target = ? AND entity = ?", [target, entity]
        )
    elif order_ids:
        con.execute(
            "DELETE FROM ops.mapping_quarantine WHERE target = $target AND entity = $entity "
            "AND order_id IN (SELECT unnest($orders::BIGINT[]))",
            {"target": target, "entity": entity, "orders": sorted(order_ids)},
        )
    if not quarantined:
        return
    con.execute(
        "INSERT INTO ops.mapping_quarantine "
        "(target, entity, external_id, reason, source_ref, run_id, quarantined_at, order_id) "
        f"SELECT *, {ORDER_ID_OF_SOURCE_REF} FROM (SELECT $target, $entity, "
        "unnest($external_ids::VARCHAR[]), unnest($reasons::VARCHAR[]), "
        "unnest($source_refs::VARCHAR[]) AS source_ref, $run_id, $now)",
        {
            "target": target,
            "entity": entity,
            "external_ids": [q.external_id for q in quarantined],
            "reasons": [q.reason for q in quarantined],
            "source_refs": [q.source_ref for q in quarantined],
            "run_id": run_id,
            "now": utc_now_naive(),
        },
    )


def quarantine_count(con: duckdb.DuckDBPyConnection, target: str, entity: str) -> int:
    """The (target, entity) writes not built now, whichever plan quarantined them."""
    return int(
        con.execute(
            "SELECT count(*) FROM ops.mapping_quarantine WHERE target = ? AND entity = ?",
            [target, entity],
        ).fetchone()[0]
    )
