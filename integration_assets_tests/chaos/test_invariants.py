"""Each chaos invariant catches what it guards: a healthy two hours hold them all, and each kind of
damage (a broken count, a document no message sent, a ledger off by a cent, a hostile string
"cleaned", a secret written down, a batch never staged) makes exactly its invariant fail."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pytest

from integration_assets.chaos import invariants
from integration_assets.chaos.scenario import HOSTILE_CUSTOMER, SECRETS, chaos_scenario_raw
from integration_assets.chaos.stack import ChaosStack
from integration_assets.storage.raw_log import RawLog

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ChaosStack]:
    with ChaosStack(tmp_path_factory.mktemp("chaos"), chaos_scenario_raw()) as stack:
        stack.hours(2)
        yield stack


@contextmanager
def tampered(stack: ChaosStack, *statements: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse with `statements` applied, rolled back afterwards."""
    with stack.warehouse.session() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            yield con
        finally:
            con.execute("ROLLBACK")


def log_of(stack: ChaosStack) -> RawLog:
    return RawLog(stack.data_dir / "raw")


def test_a_healthy_run_keeps_every_invariant(stack):
    found = invariants.check_all(stack.systems, stack.folder, stack.warehouse, SECRETS.values())
    assert [i.name for i in found] == [
        "accounted",
        "no_duplicates",
        "ledgers_balance",
        "hostile_verbatim",
        "no_secrets",
    ]
    assert all(i.holds for i in found), [i for i in found if not i.holds]
    accounted = found[0]
    assert "records landed" in accounted.detail and "count balances hold" in accounted.detail


def test_a_failed_count_balance_breaks_accounted(stack):
    with tampered(
        stack,
        "UPDATE ops.count_balances SET holds = false "
        "WHERE rowid = (SELECT min(rowid) FROM ops.count_balances)",
    ) as con:
        found = invariants.accounted(con, log_of(stack))
    assert not found.holds and "1 count balances fail" in found.detail


def test_a_landed_batch_never_staged_breaks_accounted(stack, tmp_path):
    shutil.copytree(stack.data_dir / "raw", tmp_path / "raw")
    log = RawLog(tmp_path / "raw")
    batch = log.open_batch("storefront", "orders")
    batch.append({"batch_id": batch.batch_id, "record_index": 0, "payload": {"id": 1}})
    manifest = batch.commit({})
    with stack.warehouse.connect(read_only=True) as con:
        found = invariants.accounted(con, log)
    assert not found.holds
    assert f"batch {manifest.batch_id} of storefront/orders landed, never staged" in found.detail


def test_a_dropped_warehouse_file_without_a_verdict_breaks_accounted(stack, tmp_path):
    shutil.copytree(stack.data_dir / "raw", tmp_path / "raw")
    log = RawLog(tmp_path / "raw")
    batch = log.open_batch("warehouse", "drops")
    batch.append({"name": "shipments_lost.csv", "sha256": "0" * 64})
    manifest = batch.commit({})
    with stack.warehouse.connect(read_only=True) as con:
        found = invariants.accounted(con, log)
    assert not found.holds
    assert f"1 dropped files have no verdict: {manifest.raw_ref(0)}" in found.detail


def test_a_record_both_staged_and_quarantined_breaks_accounted(stack):
    with tampered(
        stack,
        "INSERT INTO ops.quarantine (stream, batch_id, record_index, raw_ref, record_key, rule, "
        "field, message, contract, quarantined_run_id, quarantined_at) SELECT 'storefront/orders', "
        "batch_id, record_index, raw_ref, CAST(order_id AS VARCHAR), 'required', 'id', 'tampered', "
        "'storefront_orders', 'run', now() FROM staging.storefront_orders LIMIT 1",
    ) as con:
        found = invariants.accounted(con, log_of(stack))
    assert not found.holds and "1 records both staged and quarantined" in found.detail


def test_an_erp_document_no_message_sent_is_a_duplicate(stack):
    with tampered(
        stack,
        "DELETE FROM ops.outbox WHERE idempotency_key = (SELECT min(idempotency_key) "
        "FROM ops.outbox WHERE target = 'erp' AND status = 'sent' AND entity = 'sales_order')",
    ) as con:
        found = invariants.no_duplicate_documents(stack.systems, con)
    assert (
        not found.holds and "ERP documents no outbox message sent: ('sales_order'" in found.detail
    )


def test_a_ledger_entry_off_by_a_cent_breaks_the_ledgers(stack):
    with tampered(
        stack,
        "UPDATE core.financial_ledger SET amount_minor = amount_minor + 1 "
        "WHERE entry_id = (SELECT min(entry_id) FROM core.financial_ledger)",
    ) as con:
        found = invariants.ledgers_balance(stack.systems, con)
    assert not found.holds and "do not add up to the provider's net" in found.detail


def test_an_inventory_position_off_its_movements_breaks_the_ledgers(stack):
    with tampered(
        stack,
        "UPDATE core.inventory_positions SET committed = committed + 1, available = available - 1 "
        "WHERE sku = 'CASE-SLIM'",
    ) as con:
        found = invariants.ledgers_balance(stack.systems, con)
    assert not found.holds and "inventory positions off their movements: CASE-SLIM" in found.detail


def test_a_cleaned_hostile_string_breaks_verbatim(stack):
    with tampered(
        stack,
        f"UPDATE core.customers SET first_name = 'Robert' WHERE customer_id = '{HOSTILE_CUSTOMER}'",
    ) as con:
        found = invariants.hostile_verbatim(stack.systems, con)
    assert not found.holds and "core.customers changed a hostile string" in found.detail


def test_a_secret_in_a_file_or_a_column_is_found(stack):
    leak = stack.data_dir / "audit" / "leak.jsonl"
    leak.write_text(f'{{"endpoint": "https://x/?token={SECRETS["erp_client_secret"]}"}}\n')
    try:
        found = invariants.no_secrets(SECRETS.values(), stack.folder, stack.warehouse)
    finally:
        leak.unlink()
    assert not found.holds and "data/audit/leak.jsonl" in found.detail
    with stack.warehouse.connect() as con:
        con.execute(
            "CREATE TABLE ops.leak AS SELECT ? AS said",
            [f"Bearer {SECRETS['payments_secret_key']}"],
        )
    try:
        found = invariants.no_secrets(SECRETS.values(), stack.folder, stack.warehouse)
    finally:
        with stack.warehouse.connect() as con:
            con.execute("DROP TABLE ops.leak")
    assert not found.holds and "ops.leak.said" in found.detail
    # The scenario file holds the credentials by design and is not the pipeline's writing.
    assert any(secret in (stack.folder / "chaos.yaml").read_text() for secret in SECRETS.values())
    assert invariants.no_secrets(SECRETS.values(), stack.folder, stack.warehouse).holds
