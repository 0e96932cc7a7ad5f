"""The DuckDB warehouse: short-lived connections, one schema definition, idempotent writes.

DuckDB lets one process at a time hold the file open for writing (and a read-only open fails while
another process writes). Runs, sensors, the webserver and the CLI are separate processes, so every
connection here is opened for one unit of work and closed, a lock conflict is retried with backoff,
and writers are serialized by the Dagster concurrency pool WAREHOUSE_POOL.

Opening the file is the expensive part (DuckDB loads the catalog, and checkpoints when the last
connection closes), so a step that reads and writes in several short units holds it open with
`Warehouse.session()`: the connections opened inside reuse the open database and cost next to
nothing. A session lasts one step at most and never spans a wait on a network.

SCHEMA_SQL runs once per database file and schema text: its fingerprint is recorded in the file
(`ops.schema_applied`), so a process checks it with one SELECT on its first writable connection,
and runs the schema only on a new file or one built by a different schema text.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

WAREHOUSE_POOL = "duckdb_warehouse"
LOCK_WAIT_SECONDS = 120.0

# The storefront order a write or a quarantined mapping was built from, read from its source_ref
# (`core/order_heads:<order id>@<sequence> ...`, storage/order_payloads.CurrentOrder.ref); NULL
# when it was not built from an order.
ORDER_ID_OF_SOURCE_REF = (
    "TRY_CAST(regexp_extract(source_ref, '^core/order_heads:([0-9]+)@', 1) AS BIGINT)"
)

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS reporting;
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS staging.storefront_orders (
    order_id BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    payload_hash VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    record_index INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    name VARCHAR,
    email VARCHAR,
    currency VARCHAR NOT NULL,
    financial_status VARCHAR NOT NULL,
    fulfillment_status VARCHAR,
    created_at TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP,
    closed_at TIMESTAMP,
    total_price_minor BIGINT NOT NULL,
    subtotal_price_minor BIGINT NOT NULL,
    total_tax_minor BIGINT NOT NULL,
    total_discounts_minor BIGINT NOT NULL,
    shipping_minor BIGINT NOT NULL,
    totals_mismatch_minor BIGINT NOT NULL,
    gateway VARCHAR,
    source_name VARCHAR,
    snapshot JSON NOT NULL,
    quality_flags VARCHAR[] NOT NULL,
    contract_version INTEGER NOT NULL,
    staged_run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (order_id, updated_at, payload_hash)
);
-- added after the table first shipped: warehouses created before it get the column too
ALTER TABLE staging.storefront_orders ADD COLUMN IF NOT EXISTS source_name VARCHAR;

CREATE TABLE IF NOT EXISTS staging.batches (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    raw_file VARCHAR NOT NULL,
    raw_sha256 VARCHAR NOT NULL,
    records_read INTEGER NOT NULL,
    staged INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    quality_flagged INTEGER NOT NULL,
    contract_version INTEGER NOT NULL,
    staged_run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (stream, batch_id)
);

CREATE TABLE IF NOT EXISTS ops.quarantine (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    record_index INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    record_key VARCHAR,
    rule VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    contract VARCHAR NOT NULL,
    quarantined_run_id VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (stream, batch_id, record_index)
);

-- Schema drift found in a staged batch against the contract version it was staged with
-- (integration_assets/streams/schema_drift.py). Breaking kinds (removed, renamed, retyped) block the
-- batch; `added` is recorded and notified once (notified_at, set by the alert_on_schema_drift sensor).
CREATE TABLE IF NOT EXISTS ops.schema_drift (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    contract VARCHAR NOT NULL,
    contract_version INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    breaking BOOLEAN NOT NULL,
    detail VARCHAR NOT NULL,
    records_affected INTEGER NOT NULL,
    records_read INTEGER NOT NULL,
    owner VARCHAR NOT NULL,
    detected_run_id VARCHAR NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    notified_at TIMESTAMP,
    PRIMARY KEY (stream, batch_id, contract_version, kind, field)
);

CREATE TABLE IF NOT EXISTS ops.batch_gates (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,
    passed BOOLEAN NOT NULL,
    reason VARCHAR NOT NULL,
    evaluated_run_id VARCHAR NOT NULL,
    evaluated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (stream, batch_id, check_name)
);

CREATE TABLE IF NOT EXISTS core.order_events (
    order_id BIGINT NOT NULL,
    sequence INTEGER NOT NULL,
    event_type VARCHAR NOT NULL,
    attribute VARCHAR NOT NULL,
    before JSON,
    after JSON,
    occurred_at TIMESTAMP NOT NULL,
    observed_at TIMESTAMP NOT NULL,
    source_version VARCHAR NOT NULL,
    raw_ref VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (order_id, sequence)
);

CREATE TABLE IF NOT EXISTS core.order_heads (
    order_id BIGINT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    payload_hash VARCHAR NOT NULL,
    snapshot JSON NOT NULL,
    raw_ref VARCHAR,
    payload JSON
);
-- added after the table first shipped: the head version's raw reference and source document (a copy
-- of raw, so readers need not reparse the log); NULL in warehouses built before, until
-- core/order_events fills them from raw
ALTER TABLE core.order_heads ADD COLUMN IF NOT EXISTS raw_ref VARCHAR;
ALTER TABLE core.order_heads ADD COLUMN IF NOT EXISTS payload JSON;

CREATE TABLE IF NOT EXISTS core.stale_versions (
    order_id BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    payload_hash VARCHAR NOT NULL,
    raw_ref VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    head_updated_at TIMESTAMP NOT NULL,
    detected_run_id VARCHAR NOT NULL,
    PRIMARY KEY (order_id, updated_at, payload_hash)
);

CREATE TABLE IF NOT EXISTS core.version_conflicts (
    order_id BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    payload_hash VARCHAR NOT NULL,
    other_payload_hash VARCHAR NOT NULL,
    resolution VARCHAR NOT NULL,
    raw_ref VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    detected_run_id VARCHAR NOT NULL,
    PRIMARY KEY (order_id, updated_at, payload_hash)
);

CREATE TABLE IF NOT EXISTS core.promoted_batches (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    versions INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    stale INTEGER NOT NULL,
    events INTEGER NOT NULL,
    promoted_run_id VARCHAR NOT NULL,
    promoted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (stream, batch_id)
);

CREATE TABLE IF NOT EXISTS staging.payments_objects (
    resource VARCHAR NOT NULL,
    object_id VARCHAR NOT NULL,
    payload_hash VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    record_index INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    created TIMESTAMP NOT NULL,
    amount_minor BIGINT,
    currency VARCHAR NOT NULL,
    status VARCHAR,
    order_id BIGINT,
    parent_id VARCHAR,
    payload JSON NOT NULL,
    contract_version INTEGER NOT NULL,
    staged_run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (resource, object_id, payload_hash)
);

CREATE TABLE IF NOT EXISTS ops.count_balances (
    run_id VARCHAR NOT NULL,
    asset_key VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    equation VARCHAR NOT NULL,
    terms JSON NOT NULL,
    left_total BIGINT NOT NULL,
    right_total BIGINT NOT NULL,
    holds BOOLEAN NOT NULL,
    text VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, asset_key, scope, equation)
);

-- The storefront product stream: one row per variant (SKU) of each product version, and its SCD2
-- history (integration_assets/streams/product_history.py; valid_to NULL = the current row).
CREATE TABLE IF NOT EXISTS staging.storefront_products (
    product_id BIGINT NOT NULL,
    variant_id BIGINT NOT NULL,
    sku VARCHAR NOT NULL,
    price_minor BIGINT NOT NULL,
    compare_at_price_minor BIGINT,
    currency VARCHAR NOT NULL,
    available BOOLEAN NOT NULL,
    inventory_quantity INTEGER,
    inventory_policy VARCHAR,
    product_status VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    bundle_components JSON,
    updated_at TIMESTAMP NOT NULL,
    variant_updated_at TIMESTAMP,
    payload_hash VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    record_index INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    contract_version INTEGER NOT NULL,
    staged_run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (variant_id, updated_at, payload_hash)
);

CREATE TABLE IF NOT EXISTS core.product_history (
    sku VARCHAR NOT NULL,
    product_id BIGINT NOT NULL,
    variant_id BIGINT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency VARCHAR NOT NULL,
    available BOOLEAN NOT NULL,
    category VARCHAR,
    bundle_components JSON,
    valid_from TIMESTAMP NOT NULL,
    valid_to TIMESTAMP,
    source_version VARCHAR NOT NULL,
    raw_ref VARCHAR NOT NULL,
    PRIMARY KEY (sku, valid_from)
);

CREATE VIEW IF NOT EXISTS core.products_current AS
    SELECT sku, product_id, variant_id, price_minor, currency, available, category,
           bundle_components, valid_from AS current_since, source_version, raw_ref
    FROM core.product_history WHERE valid_to IS NULL;

-- The warehouse (WMS) file drops: one row per file seen in the inbox, and its typed rows per kind.
CREATE TABLE IF NOT EXISTS staging.warehouse_files (
    name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    kind VARCHAR,
    size BIGINT NOT NULL,
    rows INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    raw_ref VARCHAR NOT NULL,
    drop_ref VARCHAR NOT NULL,
    duplicate_of VARCHAR,
    reason VARCHAR,
    run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    contract VARCHAR,
    contract_version INTEGER,
    PRIMARY KEY (name, sha256)
);
-- The contract (contracts/warehouse_files.yaml) and version a file was staged or quarantined under;
-- added after the table first shipped: files staged before it were read by what became version 1.
ALTER TABLE staging.warehouse_files ADD COLUMN IF NOT EXISTS contract VARCHAR DEFAULT 'warehouse_files';
ALTER TABLE staging.warehouse_files ADD COLUMN IF NOT EXISTS contract_version INTEGER DEFAULT 1;

CREATE TABLE IF NOT EXISTS staging.wms_shipments (
    shipment_id VARCHAR NOT NULL,
    order_id BIGINT NOT NULL,
    sku VARCHAR NOT NULL,
    quantity INTEGER NOT NULL,
    location VARCHAR NOT NULL,
    shipped_at TIMESTAMP NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (file_sha256, line)
);

CREATE TABLE IF NOT EXISTS staging.wms_receipts (
    receipt_id VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    quantity INTEGER NOT NULL,
    location VARCHAR NOT NULL,
    received_at TIMESTAMP NOT NULL,
    reference VARCHAR,
    file_sha256 VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (file_sha256, line)
);

CREATE TABLE IF NOT EXISTS staging.wms_stock_counts (
    count_id VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    location VARCHAR NOT NULL,
    counted_quantity INTEGER NOT NULL,
    counted_at TIMESTAMP NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (file_sha256, line)
);

CREATE TABLE IF NOT EXISTS staging.wms_return_receipts (
    return_id VARCHAR NOT NULL,
    order_id BIGINT NOT NULL,
    sku VARCHAR NOT NULL,
    quantity INTEGER NOT NULL,
    condition VARCHAR NOT NULL,
    location VARCHAR NOT NULL,
    received_at TIMESTAMP NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (file_sha256, line)
);

CREATE TABLE IF NOT EXISTS staging.wms_return_authorizations (
    rma_id VARCHAR NOT NULL,
    order_id BIGINT NOT NULL,
    sku VARCHAR NOT NULL,
    quantity INTEGER NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    approved_at TIMESTAMP,
    carrier VARCHAR,
    tracking_number VARCHAR,
    shipped_at TIMESTAMP,
    file_sha256 VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (file_sha256, line)
);

CREATE TABLE IF NOT EXISTS ops.file_quarantine (
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    kind VARCHAR,
    rule VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    line INTEGER,
    column_name VARCHAR,
    data_lines INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (file_name, sha256)
);

-- One row per intended write into a working system (ERP, CRM, WMS). The idempotency key is the
-- external id plus the content hash: the same content is never enqueued, nor sent, twice.
-- status: pending | failed (retryable, will be retried) | sent | dead | awaiting_approval | rejected
CREATE TABLE IF NOT EXISTS ops.outbox (
    idempotency_key VARCHAR PRIMARY KEY,
    target VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    sequence BIGINT NOT NULL,
    payload JSON NOT NULL,
    payload_hash VARCHAR NOT NULL,
    source_ref VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    error_class VARCHAR,
    target_status INTEGER,
    target_message VARCHAR,
    target_record_id VARCHAR,
    approval_rule VARCHAR,
    decided_by VARCHAR,
    decision_reason VARCHAR,
    override JSON,
    resolution VARCHAR,
    enqueued_run_id VARCHAR NOT NULL,
    last_run_id VARCHAR,
    enqueued_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    sent_at TIMESTAMP,
    dead_at TIMESTAMP,
    decided_at TIMESTAMP,
    resolved_at TIMESTAMP
);

-- added after the table first shipped: the storefront order a write was built from (NULL for writes
-- not built from an order: customers, credit limits), read from its source_ref; order planners read an
-- order's delivery history by it (delivery/order_scope.py)
ALTER TABLE ops.outbox ADD COLUMN IF NOT EXISTS order_id BIGINT;
UPDATE ops.outbox SET order_id = ORDER_ID_OF_SOURCE_REF
WHERE order_id IS NULL AND starts_with(source_ref, 'core/order_heads:');

-- Every operator decision (approve, reject, edit, retry, resolve), who made it, when and why.
CREATE TABLE IF NOT EXISTS ops.operator_actions (
    action_id VARCHAR PRIMARY KEY,
    acted_at TIMESTAMP NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    reason VARCHAR,
    details JSON
);

-- Every inbound fetch and outbound write, loaded from the audit files the clients write.
CREATE TABLE IF NOT EXISTS ops.audit_log (
    audit_id VARCHAR PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    system VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    idempotency_key VARCHAR,
    request_hash VARCHAR,
    status VARCHAR NOT NULL,
    response_short VARCHAR,
    duration_ms DOUBLE NOT NULL,
    attempt INTEGER NOT NULL,
    run_id VARCHAR,
    audit_file VARCHAR NOT NULL
);

-- added after the table first shipped: what a source said about itself on that answer (deprecation
-- and sunset headers, the API version it served when not the one asked, redirects followed, the
-- credential's own expiry), as a JSON object; NULL when it said nothing (systems/source_notices.py)
ALTER TABLE ops.audit_log ADD COLUMN IF NOT EXISTS notices JSON;

-- Source-change signals (ops/source_signals): what may break an integration before it breaks it, one
-- row per signal key (kind:system:subject...), open until cleared; alerted once.
CREATE TABLE IF NOT EXISTS ops.source_signals (
    signal_key VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    system VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    owner VARCHAR,
    severity VARCHAR NOT NULL,
    evidence JSON,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    cleared_at TIMESTAMP,
    alerted_at TIMESTAMP,
    run_id VARCHAR
);

-- How far each audit file has been loaded: files only grow (append-only), so loading resumes there.
CREATE TABLE IF NOT EXISTS ops.audit_files (
    audit_file VARCHAR PRIMARY KEY,
    bytes_loaded BIGINT NOT NULL,
    lines_loaded BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);

-- Target writes the mapping could not build (a failed lookup): counted and visible, replaced per pass.
CREATE TABLE IF NOT EXISTS ops.mapping_quarantine (
    target VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    source_ref VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (target, entity, external_id)
);
ALTER TABLE ops.mapping_quarantine ADD COLUMN IF NOT EXISTS order_id BIGINT;
UPDATE ops.mapping_quarantine SET order_id = ORDER_ID_OF_SOURCE_REF
WHERE order_id IS NULL AND starts_with(source_ref, 'core/order_heads:');

-- What each order planner last mapped: one row per (target, entity) with the definitions it planned
-- under and when, and one per order with the version it mapped. The next plan maps only the orders
-- whose inputs changed since (delivery/order_scope.py).
CREATE TABLE IF NOT EXISTS ops.order_plans (
    target VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    inputs_version VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    settled_at TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (target, entity)
);
-- The code version that built each table kept up to date by change (storage/derivations.py): a new
-- version rebuilds it whole once, then it follows the change again.
CREATE TABLE IF NOT EXISTS ops.derivations (
    name VARCHAR PRIMARY KEY,
    version VARCHAR NOT NULL,
    built_at TIMESTAMP NOT NULL
);
-- The version of each order whose events the fold check found to rebuild its head exactly.
CREATE TABLE IF NOT EXISTS ops.fold_verified (
    order_id BIGINT PRIMARY KEY,
    sequence INTEGER NOT NULL
);
-- The inputs each order was last reconciled from (storage/reconciliation_by_change.py).
CREATE TABLE IF NOT EXISTS ops.reconciled_inputs (
    order_id BIGINT PRIMARY KEY,
    digest VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS ops.planned_orders (
    target VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    order_id BIGINT NOT NULL,
    sequence INTEGER NOT NULL,
    PRIMARY KEY (target, entity, order_id)
);

-- One row per oversell episode of a SKU (available-to-promise below zero from started_at until ended_at,
-- NULL while still below), each short order once: channels[i] is the sales channel of orders[i].
-- core/inventory_ledger rebuilds it whole every run (CREATE OR REPLACE, same columns); the
-- per-commitment table (sku, at, available_after, ...) of warehouses built before is dropped first
-- (REPLACED_DERIVED_TABLES).
CREATE TABLE IF NOT EXISTS core.inventory_oversells (
    sku VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    lowest_available BIGINT NOT NULL,
    orders BIGINT[] NOT NULL,
    channels VARCHAR[] NOT NULL
);

-- The customers domain: every version of a CRM account (system 'crm') and an ERP customer ('erp'),
-- typed and deduplicated; core/customers merges the ones from batches the gate passed.
CREATE TABLE IF NOT EXISTS staging.customer_references (
    system VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    source_record_id VARCHAR NOT NULL,
    modified_at TIMESTAMP,
    currency VARCHAR,
    payload_hash VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    record_index INTEGER NOT NULL,
    raw_ref VARCHAR NOT NULL,
    payload JSON NOT NULL,
    contract_version INTEGER NOT NULL,
    staged_run_id VARCHAR NOT NULL,
    staged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (system, source_record_id, payload_hash)
);
""".replace("ORDER_ID_OF_SOURCE_REF", ORDER_ID_OF_SOURCE_REF)


# Which schema text a warehouse was last brought up to: a different text (a table or column added)
# has a different fingerprint, and the next writable connection runs SCHEMA_SQL again.
SCHEMA_FINGERPRINT = hashlib.sha256(SCHEMA_SQL.encode()).hexdigest()[:16]
SCHEMA_RECORD = "ops.schema_applied"

_state_lock = threading.Lock()
# Resolved paths whose recorded fingerprint this process has checked (or written) since it started.
_schema_checked: set[str] = set()
# Writable connections this process holds open, per resolved path (sessions included).
_writable_open: Counter[str] = Counter()


def forget_schema_checks() -> None:
    """Make this process check every warehouse's schema again, as a new process would (tests that
    rebuild a table behind the schema's back)."""
    with _state_lock:
        _schema_checked.clear()


class WarehouseLockTimeout(RuntimeError):
    """Another process held the DuckDB file for longer than we are willing to wait."""


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "lock" in text.lower() or "Conflicting lock" in text


def _recorded_fingerprint(connection: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = connection.execute(f"SELECT max(fingerprint) FROM {SCHEMA_RECORD}").fetchone()
    except duckdb.CatalogException:  # a new file, or one built before fingerprints were recorded
        return None
    return row[0]


# Derived tables whose shape changed: table -> a column only the old shape has. A warehouse built
# before holds the old shape, which `CREATE TABLE IF NOT EXISTS` would keep; it is dropped before
# SCHEMA_SQL creates the new one, and its asset rebuilds it whole on its next run.
REPLACED_DERIVED_TABLES = {"core.inventory_oversells": "available_after"}


def _drop_replaced_derived_tables(connection: duckdb.DuckDBPyConnection) -> None:
    for table, old_column in REPLACED_DERIVED_TABLES.items():
        schema, name = table.split(".")
        found = connection.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            [schema, name, old_column],
        ).fetchone()[0]
        if found:
            connection.execute(f"DROP TABLE {table}")


def _apply_schema(connection: duckdb.DuckDBPyConnection) -> None:
    """SCHEMA_SQL and its fingerprint, in one transaction."""
    connection.execute("BEGIN TRANSACTION")
    try:
        _drop_replaced_derived_tables(connection)
        connection.execute(SCHEMA_SQL)
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_RECORD} "
            "(fingerprint VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        connection.execute(f"DELETE FROM {SCHEMA_RECORD}")
        connection.execute(
            f"INSERT INTO {SCHEMA_RECORD} VALUES (?, now()::TIMESTAMP)", [SCHEMA_FINGERPRINT]
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def ensure_schema(connection: duckdb.DuckDBPyConnection, key: str, new_file: bool) -> bool:
    """Bring the warehouse behind `connection` (writable) up to SCHEMA_SQL unless this process already
    checked it (`key`: its resolved path); True when the schema ran. A file created since (`new_file`)
    is always checked."""
    with _state_lock:
        if new_file:
            _schema_checked.discard(key)
        if key in _schema_checked:
            return False
        applied = _recorded_fingerprint(connection) != SCHEMA_FINGERPRINT
        if applied:
            _apply_schema(connection)
        _schema_checked.add(key)
        return applied


class Warehouse:
    """A DuckDB file; open it for one unit of work at a time."""

    def __init__(self, path: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS):
        self.path = Path(path)
        self.lock_wait_seconds = lock_wait_seconds

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise FileNotFoundError(
                f"no warehouse at {self.path}: run the pipeline first (make demo)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        new_file = not self.path.exists()
        with _state_lock:
            # DuckDB opens a file once per process, in one mode: inside a writable session a read
            # shares the writable database (and writes nothing), rather than failing.
            writable = not read_only or _writable_open[key] > 0
            if writable:
                _writable_open[key] += 1
        try:
            connection = self._open(key, read_only=not writable)
            try:
                if not read_only:
                    ensure_schema(connection, key, new_file)
                yield connection
            finally:
                connection.close()
        finally:
            if writable:
                with _state_lock:
                    _writable_open[key] -= 1

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the file open (and locked) for one unit of work made of several connections, e.g. a
        step's reads and writes: each `connect()` or `transaction()` inside, on any `Warehouse` of
        this path in this process, reuses the open database instead of opening the file again.
        Never hold one across a wait on a network or beyond the step."""
        with self.connect() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: a failure part-way leaves the warehouse as it was."""
        with self.connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _open(self, key: str, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_seconds
        delay = 0.05
        while True:
            try:
                # The resolved path: DuckDB shares an open database only under the same name.
                return duckdb.connect(key, read_only=read_only)
            except duckdb.IOException as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    if _is_lock_error(error):
                        raise WarehouseLockTimeout(
                            f"the warehouse {self.path} stayed locked by another process for "
                            f"{self.lock_wait_seconds:.0f}s: {error}"
                        ) from error
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)


def table_exists(connection: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """`schema.table` exists (the read-only report and planners run before some assets ever have)."""
    schema, table = qualified.split(".")
    return bool(
        connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def replace_table(
    connection: duckdb.DuckDBPyConnection, name: str, frame, order_by: str | None = None
) -> None:
    """Rebuild a table whole from a DataFrame (inside the caller's transaction): idempotent by construction."""
    connection.register("replacement_rows", frame)
    order = f" ORDER BY {order_by}" if order_by else ""
    connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM replacement_rows{order}")
    connection.unregister("replacement_rows")
