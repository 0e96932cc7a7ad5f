"""Which orders an order planner maps this run: those whose inputs changed since it last planned.

An order's ERP and WMS writes (sales order, invoice, credit notes, payments applied, reservation) are
a function of what the planner reads about that order, and of definitions that hold for every order:

- the order's current version: `core.order_heads.sequence` differs from the one last mapped;
- what the target holds for it: a row of that target's outbox built from the order was enqueued,
  attempted, sent, declared dead, decided or resolved since the planner last finished (its own
  drain included), or an operator acted on one since it last started;
- its money: a charge for it was staged since the planner last started (payments applied only);
- what held it back: it has a write in the entity's mapping quarantine (an unknown customer, a
  parent not built, a refused value) and is tried again on every run until it goes out;
- the definitions: the timing definitions in force and the mapping code itself
  (`inputs_version`); when they differ from the last plan's, every order is mapped again.

An order none of these touched would map to the writes it mapped to last time, which are already in
the outbox (unchanged); it is not read. So a plan costs what changed, not the history. A first plan,
a replay (`PlanSources.replan_all`) and `DeliveryConfig.replan_all` map every order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from integration_assets.storage.derivations import code_version
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets.streams.timing import Timing

_STREAMS = Path(__file__).resolve().parent.parent / "streams"
# The code an order's writes are mapped by: a change to any of it maps every order again.
MAPPING_MODULES = tuple(
    _STREAMS / name
    for name in (
        "erp_mapping.py",
        "erp_adjustments.py",
        "wms_mapping.py",
        "mapped.py",
        "timing.py",
        "outbox.py",
        "hashing.py",
    )
)


def inputs_version(timing: Timing, *settings: object) -> str:
    """What every order's plan depends on besides the order: the timing definitions in force, the
    planner's own settings (thresholds) and the mapping code."""
    return code_version(*MAPPING_MODULES, settings=(timing, settings))


@dataclass
class OrderScope:
    """The orders one plan maps (`order_ids`; None: every order) and why, and what it mapped."""

    target: str
    entity: str
    inputs_version: str
    started_at: datetime
    order_ids: frozenset[int] | None
    reasons: Counter = field(default_factory=Counter)  # why orders are in scope -> how many
    mapped: dict[int, int] = field(default_factory=dict)  # order id -> the sequence mapped

    @property
    def is_full(self) -> bool:
        return self.order_ids is None

    def as_metadata(self) -> dict[str, object]:
        return {
            "orders_mapped": len(self.mapped),
            "plan_scope": "every order" if self.is_full else "orders whose inputs changed",
            "plan_scope_reasons": dict(sorted(self.reasons.items())),
        }


_CHANGED_VERSION = """
SELECT h.order_id FROM core.order_heads h
LEFT JOIN ops.planned_orders p
    ON p.target = $target AND p.entity = $entity AND p.order_id = h.order_id
WHERE p.sequence IS DISTINCT FROM h.sequence
"""
# greatest() skips NULLs: the newest thing that happened to the row.
_OUTBOX_CHANGED = """
SELECT DISTINCT order_id FROM ops.outbox
WHERE target = $target AND order_id IS NOT NULL
  AND greatest(enqueued_at, last_attempt_at, sent_at, dead_at, decided_at, resolved_at) >= $since
"""
_OPERATOR_ACTED = """
SELECT DISTINCT o.order_id FROM ops.operator_actions a
JOIN ops.outbox o ON o.idempotency_key = a.idempotency_key
WHERE o.target = $target AND o.order_id IS NOT NULL AND a.acted_at >= $since
"""
_QUARANTINED = """
SELECT DISTINCT order_id FROM ops.mapping_quarantine
WHERE target = $target AND entity = $entity AND order_id IS NOT NULL
"""
_CHARGES_STAGED = """
SELECT DISTINCT order_id FROM staging.payments_objects
WHERE resource = 'charges' AND order_id IS NOT NULL AND staged_at >= $since
"""


def plan_scope(
    con: duckdb.DuckDBPyConnection,
    target: str,
    entity: str,
    version: str,
    *,
    replan_all: bool = False,
    with_charges: bool = False,
) -> OrderScope:
    """The orders (target, entity)'s planner maps now: every order on a first plan, when asked, or
    when `version` differs from the last plan's; otherwise those whose inputs changed since."""
    started_at = utc_now_naive()
    last = con.execute(
        "SELECT inputs_version, started_at, settled_at FROM ops.order_plans "
        "WHERE target = ? AND entity = ?",
        [target, entity],
    ).fetchone()
    if replan_all or last is None or last[0] != version:
        why = "asked" if replan_all else "first plan" if last is None else "definitions changed"
        return OrderScope(target, entity, version, started_at, None, Counter({why: 1}))
    _, last_started, last_settled = last
    this = {"target": target, "entity": entity}
    parts = {
        "new_version": (_CHANGED_VERSION, this),
        "delivery_changed": (_OUTBOX_CHANGED, {"target": target, "since": last_settled}),
        "operator_acted": (_OPERATOR_ACTED, {"target": target, "since": last_started}),
        "quarantined_last_time": (_QUARANTINED, this),
    }
    if with_charges:
        parts["charge_staged"] = (_CHARGES_STAGED, {"since": last_started})
    scope: set[int] = set()
    reasons: Counter = Counter()
    for reason, (sql, params) in parts.items():
        found = {int(order_id) for (order_id,) in con.execute(sql, params).fetchall()}
        reasons[reason] = len(found)
        scope |= found
    return OrderScope(target, entity, version, started_at, frozenset(scope), reasons)


def record_plan(con: duckdb.DuckDBPyConnection, scope: OrderScope, run_id: str) -> None:
    """Remember what the plan mapped, once its writes are enqueued and drained (in the caller's
    transaction): each order's mapped version, and when the plan started and settled."""
    if scope.mapped:
        con.execute(
            "INSERT OR REPLACE INTO ops.planned_orders (target, entity, order_id, sequence) "
            "SELECT $target, $entity, unnest($orders::BIGINT[]), unnest($sequences::INTEGER[])",
            {
                "target": scope.target,
                "entity": scope.entity,
                "orders": list(scope.mapped),
                "sequences": list(scope.mapped.values()),
            },
        )
    con.execute(
        "INSERT OR REPLACE INTO ops.order_plans "
        "(target, entity, inputs_version, started_at, settled_at, run_id) VALUES (?, ?, ?, ?, ?, ?)",
        [
            scope.target,
            scope.entity,
            scope.inputs_version,
            scope.started_at,
            utc_now_naive(),
            run_id,
        ],
    )
