"""`integration-assets report`: counts per asset, latest check results, and every count-balance equation."""

from __future__ import annotations

from typing import Any

from integration_assets.defs.orders.names import SOURCE, STREAM_NAME
from integration_assets.defs.reporting.health import read_health_table
from integration_assets.health.judge import Promise, summary_lines
from integration_assets.health.metrics import CHECK_OWNER_TEXTS_METADATA, CHECK_OWNERS_METADATA
from integration_assets.storage.drift_events import drift_by_kind, open_breaking_drift
from integration_assets.storage.oversells import oversell_text, oversold_skus
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.source_signals import open_source_signals
from integration_assets.storage.warehouse import Warehouse, table_exists
from integration_assets.streams.balances import Balance
from integration_assets.streams.outbox import outbox_books
from integration_assets.webhooks.routing import ORDERS_STREAM, webhook_batches_for

TABLES = {
    "staging/storefront/orders": "staging.storefront_orders",
    "ops/quarantine": "ops.quarantine",
    "ops/schema_drift": "ops.schema_drift",
    "core/order_events": "core.order_events",
    "core/orders_current": "core.orders_current",
    "core/stale_versions": "core.stale_versions",
    "core/version_conflicts": "core.version_conflicts",
    "staging/payments/objects": "staging.payments_objects",
    "core/financial_ledger": "core.financial_ledger",
    "core/payout_checks": "core.payout_checks",
    "core/payment_reconciliation": "core.payment_reconciliation",
    "staging/warehouse/files": "staging.warehouse_files",
    "staging/warehouse/shipments": "staging.wms_shipments",
    "staging/warehouse/receipts": "staging.wms_receipts",
    "staging/warehouse/stock_counts": "staging.wms_stock_counts",
    "staging/warehouse/return_receipts": "staging.wms_return_receipts",
    "ops/file_quarantine": "ops.file_quarantine",
    "core/inventory_ledger": "core.inventory_ledger",
    "core/inventory_positions": "core.inventory_positions",
    "core/inventory_drift": "core.inventory_drift",
    "core/inventory_oversells": "core.inventory_oversells",
    "staging/warehouse/return_authorizations": "staging.wms_return_authorizations",
    "core/returns": "core.returns",
    "staging/storefront/products": "staging.storefront_products",
    "core/product_history": "core.product_history",
    "staging/customers/references": "staging.customer_references",
    "core/customers": "core.customers",
    "core/customer_conflicts": "core.customer_conflicts",
    "ops/outbox": "ops.outbox",
    "ops/mapping_quarantine": "ops.mapping_quarantine",
    "ops/audit_log": "ops.audit_log",
    "reporting/orders_per_day": "reporting.orders_per_day",
    "reporting/order_lifecycle": "reporting.order_lifecycle",
    "reporting/integration_health": "reporting.integration_health",
}


def raw_balances(log: RawLog) -> list[dict]:
    """Each landed batch: records in the pages = records written to the batch file."""
    balances = []
    for manifest in log.batches(SOURCE, STREAM_NAME):
        balance = Balance(
            "records_landed",
            {"records_from_pages": int(manifest.details.get("records_from_pages", -1))},
            {"records_landed": manifest.records},
        )
        balances.append(
            {
                "asset_key": "raw/storefront/orders",
                "scope": manifest.batch_id,
                **balance.as_dict(),
                "file_intact": log.verify(manifest),
            }
        )
    return balances


def warehouse_section(warehouse: Warehouse) -> dict[str, Any]:
    with warehouse.connect(read_only=True) as con:
        counts = {
            name: (
                con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if table_exists(con, table)
                else None
            )
            for name, table in TABLES.items()
        }
        balances = [
            {
                "asset_key": asset_key,
                "scope": scope,
                "equation": equation,
                "text": text,
                "left_total": left,
                "right_total": right,
                "holds": holds,
                "run_id": run_id,
            }
            for run_id, asset_key, scope, equation, left, right, holds, text in con.execute(
                "SELECT run_id, asset_key, scope, equation, left_total, right_total, holds, text FROM ops.count_balances "
                "ORDER BY recorded_at"
            ).fetchall()
        ]
        gates = [
            {"batch_id": batch_id, "check": check, "passed": passed, "reason": reason}
            for batch_id, check, passed, reason in con.execute(
                "SELECT batch_id, check_name, passed, reason FROM ops.batch_gates ORDER BY batch_id, check_name"
            ).fetchall()
        ]
        quarantine = [
            {
                "rule": rule,
                "field": field,
                "records": n,
                "example_raw_ref": ref,
                "example_key": key,
                "message": message,
            }
            for rule, field, n, ref, key, message in con.execute(
                "SELECT rule, field, count(*), min(raw_ref), min(record_key), min(message) FROM ops.quarantine "
                "GROUP BY rule, field ORDER BY 3 DESC, 1"
            ).fetchall()
        ]
        staged_totals = {
            stream: {
                "records_read": int(read),
                "staged": int(staged),
                "quarantined": int(quarantined),
                "duplicates": int(dups),
            }
            for stream, read, staged, quarantined, dups in con.execute(
                "SELECT stream, sum(records_read), sum(staged), sum(quarantined), sum(duplicates) "
                "FROM staging.batches GROUP BY stream ORDER BY stream"
            ).fetchall()
        }
        promises, measured_at = read_health_table(con)
        signals = open_source_signals(con)
        money = _money_section(con) if table_exists(con, "core.payment_reconciliation") else None
        drift = _schema_drift_section(con) if table_exists(con, "ops.schema_drift") else None
        outbox = _outbox_section(con) if table_exists(con, "ops.outbox") else None
        files = (
            [
                {"file": name, "status": status, "reason": reason}
                for name, status, reason in con.execute(
                    "SELECT name, status, coalesce(reason, duplicate_of, '') FROM staging.warehouse_files "
                    "WHERE status <> 'staged' ORDER BY name"
                ).fetchall()
            ]
            if table_exists(con, "staging.warehouse_files")
            else []
        )
        inventory = (
            {
                "oversells": [
                    {
                        "sku": item.sku,
                        "episodes": item.episodes,
                        "oversold_now": item.open_since is not None,
                        "lowest_available": item.lowest_available,
                        "short_orders": item.short_orders,
                        "named_orders": item.named_orders,
                        "channels": item.sold_on,
                        "text": oversell_text(item),
                    }
                    for item in oversold_skus(con)
                ],
                "drift": [
                    {
                        "sku": sku,
                        "location": location,
                        "delta": int(delta),
                        "cause": cause,
                        "explanation": why,
                    }
                    for sku, location, delta, cause, why in con.execute(
                        "SELECT sku, location, delta, cause, explanation FROM core.inventory_drift ORDER BY counted_at, sku"
                    ).fetchall()
                ],
            }
            if table_exists(con, "core.inventory_drift")
            else None
        )
        returns = (
            {
                "by_stage": {
                    stage: int(n)
                    for stage, n in con.execute(
                        "SELECT stage, count(*) FROM core.returns GROUP BY stage ORDER BY stage"
                    ).fetchall()
                },
                "stuck": [
                    {
                        "return_id": rid,
                        "order_id": int(oid),
                        "sku": sku,
                        "stage": stage,
                        "age_hours": float(age),
                        "flags": list(flags),
                    }
                    for rid, oid, sku, stage, age, flags in con.execute(
                        "SELECT return_id, order_id, sku, stage, age_hours, flags FROM core.returns "
                        "WHERE list_has_any(flags, ['received_not_refunded', 'refunded_never_received', 'approved_not_shipped']) "
                        "ORDER BY return_id"
                    ).fetchall()
                ],
            }
            if table_exists(con, "core.returns")
            else None
        )
    return {
        "health": {
            "measured_at": measured_at.isoformat() if measured_at else None,
            "promises": [promise.as_dict() for promise in promises],
            "broken": [promise.as_dict() for promise in promises if promise.broken],
            "source_signals_open": [
                {
                    "kind": s["kind"],
                    "system": s["system"],
                    "subject": s["subject"],
                    "detail": s["detail"],
                    "owner": s["owner"],
                    "since": s["first_seen_at"].isoformat() if s["first_seen_at"] else None,
                }
                for s in signals
            ],
        },
        "schema_drift": drift,
        "outbox": outbox,
        "returns": returns,
        "inventory": inventory,
        "money": money,
        "warehouse_files": files,
        "counts": counts,
        "balances": balances,
        "gate_verdicts": gates,
        "quarantine": quarantine,
        "staging_totals": staged_totals,
    }


def _schema_drift_section(con) -> dict[str, Any]:
    """Drift events by kind, and the breaking ones still holding a batch back."""
    return {
        "by_kind": [
            {"kind": kind, "events": int(events), "fields": int(fields)}
            for kind, events, fields in drift_by_kind(con)
        ],
        "open_breaking": [
            {"stream": stream, "batch_id": batch_id, "detail": detail}
            for stream, batch_id, detail in open_breaking_drift(con)
        ],
    }


def _outbox_section(con) -> dict[str, Any]:
    """Every intended write by target and entity, its books, and what waits for a person."""
    by_pair: dict[str, dict[str, int]] = {}
    for target, entity, status, n in con.execute(
        "SELECT target, entity, status, count(*) FROM ops.outbox GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        by_pair.setdefault(f"{target}/{entity}", {})[status] = int(n)
    books = {pair: outbox_books(statuses) for pair, statuses in by_pair.items()}
    dead = [
        {
            "idempotency_key": key,
            "target": target,
            "entity": entity,
            "external_id": external_id,
            "error_class": error_class,
            "message": message,
        }
        for key, target, entity, external_id, error_class, message in con.execute(
            "SELECT idempotency_key, target, entity, external_id, error_class, target_message FROM ops.outbox "
            "WHERE status = 'dead' AND resolved_at IS NULL ORDER BY dead_at"
        ).fetchall()
    ]
    awaiting = [
        {
            "idempotency_key": key,
            "target": target,
            "entity": entity,
            "external_id": eid,
            "rule": rule,
        }
        for key, target, entity, eid, rule in con.execute(
            "SELECT idempotency_key, target, entity, external_id, approval_rule FROM ops.outbox "
            "WHERE status = 'awaiting_approval' ORDER BY enqueued_at"
        ).fetchall()
    ]
    not_built = {
        f"{target}/{entity}: {reason}": int(n)
        for target, entity, reason, n in con.execute(
            "SELECT target, entity, reason, count(*) FROM ops.mapping_quarantine GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    audit = {
        f"{system} {direction}": int(n)
        for system, direction, n in con.execute(
            "SELECT system, direction, count(*) FROM ops.audit_log GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    return {
        "by_target_entity": by_pair,
        "books": {pair: balance.as_dict() for pair, balance in books.items()},
        "dead_letters_open": dead,
        "awaiting_approval": awaiting,
        "writes_not_built": not_built,
        "audit_log": audit,
    }


def _money_section(con) -> dict[str, Any]:
    """Reconciliation totals by rule, what is left for a person, and whether every payout adds up."""
    by_rule = {
        rule: {"differences": int(n), "amount_minor": int(amount), "explained": bool(explained)}
        for rule, n, amount, explained in con.execute(
            "SELECT rule, count(*), sum(amount_minor), bool_and(explained) FROM core.payment_reconciliation GROUP BY rule ORDER BY rule"
        ).fetchall()
    }
    for_a_person = [
        {"order_id": order_id, "rule": rule, "amount_minor": int(amount), "detail": detail}
        for order_id, rule, amount, detail in con.execute(
            "SELECT order_id, rule, amount_minor, detail FROM core.payment_reconciliation WHERE NOT explained ORDER BY order_id"
        ).fetchall()
    ]
    payouts = [
        {
            "payout": payout,
            "amount_minor": int(amount),
            "transactions": int(n),
            "sum_of_net_minor": int(net),
            "holds": bool(holds),
        }
        for payout, amount, n, net, holds in con.execute(
            "SELECT payout, payout_amount_minor, transactions, sum_of_net_minor, holds FROM core.payout_checks ORDER BY payout"
        ).fetchall()
    ]
    ledger = {
        f"{currency}:{kind}": int(total)
        for currency, kind, total in con.execute(
            "SELECT currency, kind, sum(amount_minor) FROM core.financial_ledger GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    return {
        "reconciliation_by_rule": by_rule,
        "for_a_person": for_a_person,
        "payouts": payouts,
        "ledger_totals_minor": ledger,
    }


def latest_check_results() -> list[dict]:
    """The newest evaluation of every asset check in the Dagster instance (DAGSTER_HOME)."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    with dg.DagsterInstance.get() as instance:
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION),
            limit=5000,
            ascending=False,
        )
        latest: dict[tuple[str, str], dict] = {}
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
            if key in latest:
                continue
            owners = evaluation.metadata.get(CHECK_OWNERS_METADATA)
            owner_texts = evaluation.metadata.get(CHECK_OWNER_TEXTS_METADATA)
            latest[key] = {
                "asset_key": key[0],
                "check": key[1],
                "passed": bool(evaluation.passed),
                "severity": evaluation.severity.value,
                "description": evaluation.description,
                "run_id": record.run_id,
                "timestamp": record.timestamp,
                # Whose promise it is, when the check names it (the health checks): else the asset's owners.
                "owners": [email for email in str(owners.value).split(", ") if email]
                if owners is not None
                else [],
                # ...and what each of them has broken, in words.
                "owner_descriptions": dict(owner_texts.value) if owner_texts is not None else {},
            }
    return sorted(latest.values(), key=lambda item: (item["asset_key"], item["check"]))


def build_report(
    log: RawLog, warehouse: Warehouse, include_instance: bool = True
) -> dict[str, Any]:
    section = warehouse_section(warehouse)
    manifests = log.batches(SOURCE, STREAM_NAME)
    section["counts"] = {
        "raw/storefront/orders": sum(m.records for m in manifests),
        # Order webhooks are staged beside the polls: staging's totals count both.
        "raw/webhooks/orders": sum(m.records for m in webhook_batches_for(log, ORDERS_STREAM)),
        **section["counts"],
    }
    balances = raw_balances(log) + section.pop("balances")
    outbox = section.get("outbox")
    if outbox:  # the outbox's books as they stand now, one equation per target and entity
        balances += [
            {"asset_key": "ops/outbox", "scope": f"now:{pair}", **book}
            for pair, book in outbox["books"].items()
        ]
    extract_seconds = sum(float(m.details.get("seconds", 0)) for m in manifests)
    report = {
        "health": section["health"],
        "counts": section["counts"],
        "staging_totals": section["staging_totals"],
        "extraction": {
            "batches": len(manifests),
            "records": section["counts"]["raw/storefront/orders"],
            "seconds": round(extract_seconds, 3),
            "orders_per_second": round(
                section["counts"]["raw/storefront/orders"] / extract_seconds, 1
            )
            if extract_seconds
            else None,
        },
        "money": section["money"],
        "schema_drift": section["schema_drift"],
        "outbox": section["outbox"],
        "inventory": section["inventory"],
        "returns": section["returns"],
        "warehouse_files": section["warehouse_files"],
        "checks": latest_check_results() if include_instance else [],
        "gate_verdicts": section["gate_verdicts"],
        "quarantine": section["quarantine"],
        "balances": balances,
        "all_balances_hold": all(b["holds"] for b in balances)
        and all(b.get("file_intact", True) for b in balances),
    }
    return report


def health_text(health: dict[str, Any]) -> list[str]:
    """The health summary: every stream's and target's metrics, then each broken promise and its owner."""
    if health["promises"]:
        lines = summary_lines([Promise(**item) for item in health["promises"]])
        lines[0] += f", measured {health['measured_at'][:19]} UTC"
    else:
        lines = [
            "Integration health: not measured yet (materialize reporting/integration_health; "
            "the hourly sync does)"
        ]
    signals = health.get("source_signals_open", [])
    lines.append(
        f"Source-change signals open (ops.source_signals): {len(signals)}"
        + (
            ""
            if signals
            else " (no credential expiring, permission lost, version retiring, endpoint moved or model change)"
        )
    )
    for item in signals:
        lines.append(
            f"  {item['kind']} {item['system']} {item['subject']}: {item['detail'][:140]} -> {item['owner'] or 'nobody'}"
        )
    return lines


def render_text(report: dict[str, Any]) -> str:
    lines = health_text(report["health"]) if report.get("health") else []
    lines.append("Rows per stage:")
    lines += [
        f"  {name:<34} {count if count is not None else '-':>8}"
        for name, count in report["counts"].items()
    ]
    for stream, t in report["staging_totals"].items():
        lines.append(
            f"  staging {stream}: read {t['records_read']} = staged {t['staged']} + "
            f"quarantined {t['quarantined']} + duplicates {t['duplicates']}"
        )
    if report["checks"]:
        failed = [c for c in report["checks"] if not c["passed"]]
        lines.append(
            f"Checks (latest evaluation): {len(report['checks']) - len(failed)} passed, {len(failed)} failed"
        )
        for check in report["checks"]:
            mark = (
                "PASS" if check["passed"] else ("FAIL" if check["severity"] == "ERROR" else "WARN")
            )
            detail = (
                f": {check['description']}" if check["description"] and not check["passed"] else ""
            )
            lines.append(f"  [{mark}] {check['asset_key']} / {check['check']}{detail}")
    if report["quarantine"]:
        lines.append("Quarantined records (ops.quarantine), by reason:")
        for item in report["quarantine"]:
            lines.append(
                f"  {item['records']:>4} x {item['rule']} on '{item['field']}' (e.g. order {item['example_key']}, {item['example_raw_ref']}): {item['message']}"
            )
    money = report.get("money")
    if money:
        lines.append(
            "Money: three-way reconciliation (orders <-> payment provider <-> payouts), by rule:"
        )
        for rule, item in money["reconciliation_by_rule"].items():
            kind = "explained" if item["explained"] else "FOR A PERSON"
            lines.append(
                f"  {rule:<30} {item['differences']:>5} difference(s), {item['amount_minor']:>12} minor units ({kind})"
            )
        for item in money["for_a_person"]:
            lines.append(
                f"    order {item['order_id']}: {item['rule']} {item['amount_minor']}: {item['detail']}"
            )
        for payout in money["payouts"]:
            verdict = "equals" if payout["holds"] else "DOES NOT EQUAL"
            lines.append(
                f"  payout {payout['payout']} {payout['amount_minor']} {verdict} its {payout['transactions']} transactions ({payout['sum_of_net_minor']})"
            )
        if not money["payouts"]:
            lines.append("  no payout yet")
    inventory = report.get("inventory")
    if inventory:
        lines.append(
            f"Inventory: {len(inventory['oversells'])} SKU(s) oversold, {len(inventory['drift'])} count drift(s)"
        )
        for item in inventory["oversells"]:
            lines.append(f"  oversold {item['text']}")
        for item in inventory["drift"]:
            lines.append(
                f"  drift {item['sku']} at {item['location']}: {item['delta']:+d} ({item['cause']}) {item['explanation']}"
            )
    returns = report.get("returns")
    if returns:
        stages = ", ".join(f"{stage} {n}" for stage, n in returns["by_stage"].items())
        lines.append(f"Returns by stage: {stages}; {len(returns['stuck'])} stuck")
        for item in returns["stuck"]:
            lines.append(
                f"  stuck {item['return_id']} (order {item['order_id']}, {item['sku']}): {item['stage']} for "
                f"{item['age_hours']:.0f} h, {', '.join(item['flags'])}"
            )
    outbox = report.get("outbox")
    if outbox:
        lines.append(
            "Writes to the working systems (ops.outbox), promoted = delivered + dead + awaiting + pending:"
        )
        for pair, book in outbox["books"].items():
            lines.append(f"  {pair:<24} {book['text']}")
        for item in outbox["dead_letters_open"]:
            lines.append(
                f"  dead letter {item['idempotency_key']}: {item['error_class']}: {item['message']}"
            )
        for item in outbox["awaiting_approval"]:
            lines.append(f"  awaiting approval {item['idempotency_key']} ({item['rule']})")
        for reason, n in outbox["writes_not_built"].items():
            lines.append(f"  not built (a failed lookup or unmappable record): {n} x {reason}")
        if outbox["dead_letters_open"] or outbox["awaiting_approval"]:
            lines.append(
                "  act on them: integration-assets dlq list|show|retry|resolve, integration-assets approvals list|approve|reject"
            )
    drift = report.get("schema_drift")
    if drift and drift["by_kind"]:
        kinds = ", ".join(
            f"{item['kind']} {item['events']} ({item['fields']} field(s))"
            for item in drift["by_kind"]
        )
        lines.append(
            f"Schema drift (ops.schema_drift), events by kind: {kinds}; "
            f"{len(drift['open_breaking'])} breaking still blocking a batch"
        )
        for item in drift["open_breaking"]:
            lines.append(f"  {item['stream']} batch {item['batch_id']}: {item['detail']}")
        if drift["open_breaking"]:
            lines.append(
                "  unblock: a reviewed new contract version (contracts/<name>.yaml, version + history) "
                "re-stages the batch on the next run"
            )
    if report.get("warehouse_files"):
        lines.append("Warehouse files not staged (staging.warehouse_files):")
        for item in report["warehouse_files"]:
            lines.append(f"  {item['file']}: {item['status']} {item['reason']}")
    held = sum(1 for b in report["balances"] if not b["holds"])
    lines.append(
        f"Count balances: {len(report['balances'])} equations, {'all hold' if not held else f'{held} DO NOT HOLD'}"
    )
    for balance in report["balances"]:
        if not balance["holds"]:
            lines.append(f"  {balance['asset_key']} [{balance['scope']}]: {balance['text']}")
    return "\n".join(lines)
