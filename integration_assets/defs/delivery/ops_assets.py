"""ops/outbox and ops/audit_log: the books of every write, and the record of every exchange."""

import os
from collections.abc import Sequence

import dagster as dg

from integration_assets.defs.delivery.names import (
    AUDIT_LOG,
    CHECK_NO_OLD_DEAD_LETTERS,
    CHECK_OUTBOX_BALANCES,
    OPS_GROUP,
    OUTBOX,
    OWNER,
)
from integration_assets.storage.audit_log import load_audit_files
from integration_assets.storage.balances import record_balance
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.alert_messages import ESCALATE_AFTER_ENV, escalate_after_from_env
from integration_assets.streams.outbox import outbox_books
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets.systems.audit import audit_dir


def build_outbox_asset(delivery_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=OUTBOX,
        deps=list(delivery_keys),
        group_name=OPS_GROUP,
        owners=[OWNER],
        kinds={"duckdb"},
        tags={"layer": "ops"},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_OUTBOX_BALANCES,
                asset=OUTBOX,
                description="Per target and entity: enqueued = sent + dead + awaiting approval + pending + failed + rejected + superseded.",
            ),
            dg.AssetCheckSpec(
                CHECK_NO_OLD_DEAD_LETTERS,
                asset=OUTBOX,
                description=f"No open dead letter is older than the escalation age (env {ESCALATE_AFTER_ENV}, default 4 hours).",
            ),
        ],
    )
    def ops_outbox(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Every intended write into ERP, CRM and WMS and where it stands (ops.outbox), in one view.

        Dead letters: `integration-assets dlq list`, then `dlq retry KEY [--set FIELD=VALUE [--owner-approved-by OWNER]]` or
        `dlq resolve KEY`; or run the `replay_dead_letters` job with filters. Writes awaiting approval:
        `integration-assets approvals list|approve|reject`, or the `review_approvals` job.
        """
        now = utc_now_naive()
        with warehouse.warehouse().transaction() as con:
            rows = con.execute(
                "SELECT target, entity, status, count(*) FROM ops.outbox GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            by_pair: dict[str, dict[str, int]] = {}
            for target, entity, status, count in rows:
                by_pair.setdefault(f"{target}/{entity}", {})[status] = int(count)
            balances = []
            for pair, statuses in by_pair.items():
                books = outbox_books(statuses)
                record_balance(con, context.run_id, OUTBOX.to_user_string(), pair, books)
                balances.append((pair, books))
            open_dead = con.execute(
                "SELECT idempotency_key, target, entity, external_id, error_class, dead_at FROM ops.outbox "
                "WHERE status = 'dead' AND resolved_at IS NULL ORDER BY dead_at"
            ).fetchall()
            awaiting = con.execute(
                "SELECT count(*) FROM ops.outbox WHERE status = 'awaiting_approval'"
            ).fetchone()[0]
            quarantined = con.execute("SELECT count(*) FROM ops.mapping_quarantine").fetchone()[0]
        totals: dict[str, int] = {}
        for statuses in by_pair.values():
            for status, count in statuses.items():
                totals[status] = totals.get(status, 0) + count
        # The same age the dead-letter alert sensor escalates at.
        limit = escalate_after_from_env(os.environ).total_seconds() / 3600
        old = [row for row in open_dead if (now - row[5]).total_seconds() / 3600 > limit]
        yield dg.MaterializeResult(
            metadata={
                "enqueued": sum(totals.values()),
                "sent": totals.get("sent", 0),
                "dead_letters_open": len(open_dead),
                "awaiting_approval": int(awaiting),
                "pending": totals.get("pending", 0),
                "retry_later": totals.get("failed", 0),
                "rejected": totals.get("rejected", 0),
                "superseded": totals.get("superseded", 0),
                "mapping_quarantined": int(quarantined),
                "by_target_entity": dg.MetadataValue.json(by_pair),
                "open_dead_letters": dg.MetadataValue.md(
                    "\n".join(
                        f"- `{key}` {target}/{entity} {external_id}: {error_class} (since {dead_at:%Y-%m-%d %H:%M})"
                        for key, target, entity, external_id, error_class, dead_at in open_dead[:20]
                    )
                    or "none"
                ),
            }
        )
        broken = [f"{pair}: {books.as_text()}" for pair, books in balances if not books.holds]
        yield dg.AssetCheckResult(
            check_name=CHECK_OUTBOX_BALANCES,
            passed=not broken,
            description="; ".join(broken) or f"{len(balances)} target/entity pairs balance",
        )
        yield dg.AssetCheckResult(
            check_name=CHECK_NO_OLD_DEAD_LETTERS,
            passed=not old,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(old)} dead letter(s) open for more than {limit:g} h: "
                + ", ".join(row[0] for row in old[:5])
            )
            if old
            else f"no dead letter open for more than {limit:g} h",
            metadata={"open_dead_letters": len(open_dead), "past_escalation_age": len(old)},
        )

    return ops_outbox


@dg.asset(
    key=AUDIT_LOG,
    deps=[OUTBOX],  # last in a run, so the run's own deliveries are in it
    group_name=OPS_GROUP,
    owners=[OWNER],
    kinds={"duckdb", "jsonl"},
    tags={"layer": "ops"},
    pool=WAREHOUSE_POOL,
)
def ops_audit_log(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Every HTTP exchange with every system (ops.audit_log): system, endpoint, method, idempotency
    key, request hash, status, short response, duration, attempt, run id and time; secrets redacted.

    The clients append to files under `data/audit/` as they go (so auditing never waits for the
    warehouse); this loads what was appended since the last load, resuming each file where it
    stopped. It runs after ops/outbox, so a run's own deliveries are in it; a run that failed before
    it has its exchanges loaded by the next one (the files keep them).
    """
    with warehouse.warehouse().transaction() as con:
        report = load_audit_files(con, audit_dir())
        by_system = dict(
            con.execute(
                "SELECT system || ' ' || direction, count(*) FROM ops.audit_log GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        )
    for where in report.unreadable:
        context.log.warning(f"audit line at {where} is not JSON: skipped (the file keeps it)")
    return dg.MaterializeResult(
        metadata={
            **report.as_metadata(),
            "exchanges_by_system": dg.MetadataValue.json({k: int(v) for k, v in by_system.items()}),
        }
    )
