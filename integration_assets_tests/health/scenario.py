"""A warehouse whose every health metric has a value worked out by hand (see each comment)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.timestamps import utc_now_naive

# Naive UTC like the warehouse's timestamps, and close to the wall clock: the asset measures as of
# the moment it runs (the measures themselves take `now`, and the tests give them this one).
NOW = utc_now_naive().replace(second=0, microsecond=0)
LANDED = (NOW - timedelta(hours=2)).strftime("%Y%m%dT%H%M%S%fZ")  # a raw batch landed 2 h ago
ORDER_REF = f"core/order_heads:1@1 (raw/storefront/orders/{LANDED}-abcd1234#0)"


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def _batches(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        # stream, batch, read, staged, quarantined, run, staged_at
        ("storefront/orders", "b1", 100, 98, 2, "r1", ago(hours=1)),
        ("storefront/orders", "b2", 50, 47, 3, "r2", ago(minutes=30)),
        ("storefront/orders", "b0", 1000, 1000, 0, "r0", ago(hours=30)),  # outside the 24 h window
        ("payments/charges", "c1", 40, 40, 0, "r1", ago(hours=3)),
        ("payments/charges", "c2", 0, 0, 0, "r2", ago(minutes=30)),  # an empty poll: nothing staged
    ]
    for stream, batch, read, staged, quarantined, run, at in rows:
        con.execute(
            "INSERT INTO staging.batches (stream, batch_id, raw_file, raw_sha256, records_read, staged, "
            "quarantined, duplicates, quality_flagged, contract_version, staged_run_id, staged_at) "
            "VALUES (?, ?, 'f', 's', ?, ?, ?, 0, 0, 1, ?, ?)",
            [stream, batch, read, staged, quarantined, run, at],
        )
    con.execute(
        "INSERT INTO core.promoted_batches (stream, batch_id, versions, applied, duplicates, stale, "
        "events, promoted_run_id, promoted_at) VALUES ('storefront/orders', 'b2', 47, 47, 0, 0, 60, 'r2', ?)",
        [ago(minutes=15)],
    )


def _warehouse_files(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        ("a.csv", "staged", 10, "w1", ago(hours=2)),
        ("b.csv", "staged", 20, "w1", ago(hours=2)),
        ("c.csv", "staged", 5, "w2", ago(hours=1)),
        ("d.csv", "quarantined", 0, "w2", ago(hours=1)),
        ("a-again.csv", "duplicate", 10, "w2", ago(hours=1)),
    ]
    for name, status, count, run, at in rows:
        con.execute(
            "INSERT INTO staging.warehouse_files (name, sha256, kind, size, rows, status, raw_ref, drop_ref, "
            "run_id, staged_at) VALUES (?, ?, 'shipments', 1, ?, ?, 'r', 'd', ?, ?)",
            [name, name, count, status, run, at],
        )


def _audit(con: duckdb.DuckDBPyConnection) -> None:
    lines = (
        [("storefront", "inbound", "200")] * 16
        + [("storefront", "inbound", "429")] * 2
        + [("storefront", "inbound", "503"), ("storefront", "inbound", "ReadTimeout")]
        + [("warehouse", "inbound", "landed")] * 3
        + [("warehouse", "inbound", "duplicate")]
        + [("erp", "outbound", "201")] * 9
        + [("erp", "outbound", "500"), ("erp", "auth", "401")]
    )
    for index, (system, direction, status) in enumerate(lines):
        con.execute(
            "INSERT INTO ops.audit_log (audit_id, occurred_at, system, direction, method, endpoint, status, "
            "duration_ms, attempt, audit_file) VALUES (?, ?, ?, ?, 'GET', '/x', ?, 1, 1, 'f')",
            [f"a{index}", ago(hours=2), system, direction, status],
        )
    # A day and a half ago the storefront was down: outside the window, not counted.
    con.execute(
        "INSERT INTO ops.audit_log (audit_id, occurred_at, system, direction, method, endpoint, status, "
        "duration_ms, attempt, audit_file) VALUES ('old', ?, 'storefront', 'inbound', 'GET', '/x', '503', 1, 1, 'f')",
        [ago(hours=36)],
    )


def _outbox(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        # key, target, status, source_ref, enqueued, sent, dead, resolved, run
        *[
            (
                f"erp-{m}",
                "erp",
                "sent",
                ORDER_REF,
                ago(hours=1, minutes=55),
                ago(hours=2) + timedelta(minutes=m),
                None,
                None,
                "d1" if m < 50 else "d2",
            )
            for m in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
        ],
        # A golden-record write: no raw batch in its reference, timed from its enqueue (5 min).
        (
            "erp-cust",
            "erp",
            "sent",
            "core/customers:7",
            ago(minutes=20),
            ago(minutes=15),
            None,
            None,
            "d2",
        ),
        ("crm-1", "crm", "dead", "core/customers:8", ago(hours=6), None, ago(hours=5), None, "d1"),
        ("crm-2", "crm", "dead", "core/customers:9", ago(hours=2), None, ago(hours=1), None, "d2"),
        (
            "crm-3",
            "crm",
            "dead",
            "core/customers:10",
            ago(hours=9),
            None,
            ago(hours=8),
            ago(hours=7),
            "d1",
        ),
    ]
    for key, system, status, ref, enqueued, sent, dead, resolved, run in rows:
        con.execute(
            "INSERT INTO ops.outbox (idempotency_key, target, entity, external_id, sequence, payload, "
            "payload_hash, source_ref, status, attempts, enqueued_run_id, last_run_id, enqueued_at, sent_at, "
            "dead_at, resolved_at) VALUES (?, ?, 'customer', ?, 1, '{}', 'h', ?, ?, 1, 'e', ?, ?, ?, ?, ?)",
            [key, system, key, ref, status, run, enqueued, sent, dead, resolved],
        )
    con.execute(
        "INSERT INTO ops.mapping_quarantine (target, entity, external_id, reason, source_ref, run_id, "
        "quarantined_at) VALUES ('crm', 'account', '11', 'name_missing', 'core/customers:11', 'd2', ?)",
        [ago(hours=1)],
    )
    for action_id, action, key, at in (
        ("x1", "retry", "crm-1", ago(hours=4)),
        ("x2", "resolve", "crm-3", ago(hours=7)),
        ("x3", "approve", "crm-3", ago(hours=30)),  # outside the window
    ):
        con.execute(
            "INSERT INTO ops.operator_actions (action_id, acted_at, actor, action, idempotency_key) "
            "VALUES (?, ?, 'pat@example.com', ?, ?)",
            [action_id, at, action, key],
        )


def _reconciliation(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE core.payment_reconciliation (order_id BIGINT, rule VARCHAR, amount_minor BIGINT, "
        "explained BOOLEAN, detail VARCHAR)"
    )
    con.execute(
        "INSERT INTO core.payment_reconciliation VALUES (1, 'matched', 0, true, ''), (1, 'fee', 30, true, ''), "
        "(2, 'matched', 0, true, ''), (3, 'matched', 0, true, ''), (4, 'amount_mismatch', 500, false, '')"
    )
    con.execute(
        "CREATE TABLE core.inventory_drift (sku VARCHAR, location VARCHAR, counted_at TIMESTAMP, "
        "ledger_on_hand HUGEINT, counted BIGINT, delta HUGEINT, cause VARCHAR, explanation VARCHAR)"
    )
    con.execute(
        "INSERT INTO core.inventory_drift VALUES ('A', 'L', NULL, 5, 5, 0, NULL, NULL), "
        "('B', 'L', NULL, 5, 2, -3, NULL, NULL)"
    )


def build_health_warehouse(path: Path) -> Warehouse:
    """The warehouse of the scenario: every table the measures read, with rows of known values."""
    warehouse = Warehouse(path)
    with warehouse.transaction() as con:
        _batches(con)
        _warehouse_files(con)
        _audit(con)
        _outbox(con)
        _reconciliation(con)
    return warehouse
