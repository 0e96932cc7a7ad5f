"""core.order_heads keeps the head version's source document, so reading current orders is one SELECT;
a warehouse built before the column existed still reads its orders (from raw) and is filled once."""

import copy

import orjson
import pytest

from integration_assets.defs.orders import core as orders_core
from integration_assets.defs.orders import staging as orders_staging
from integration_assets.defs.orders.names import SOURCE, STREAM_NAME
from integration_assets.storage import order_payloads
from integration_assets.storage.order_payloads import (
    current_orders,
    fill_missing_payloads,
    iter_current_orders,
)
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import SCHEMA_RECORD, Warehouse, forget_schema_checks
from integration_assets_tests.conftest import load_fixture_order
from integration_assets_tests.seeding import land_and_promote_orders


def _order() -> dict:
    return load_fixture_order("monei_shopify_api_node/order/res/get.json")


def _other_order() -> dict:
    order = copy.deepcopy(_order())
    order.update(id=450789470, customer=None, email="walk-in@example.com")
    return order


def _edited(order: dict) -> dict:
    edited = copy.deepcopy(order)
    edited.update(updated_at="2030-01-01T00:00:00Z", note="edited later")
    return edited


class _CountingRawLog(RawLog):
    """Counts the batch files read for payloads: the point is to read none."""

    files_read = 0

    def read_records(self, manifest):
        type(self).files_read += 1
        return super().read_records(manifest)


def _world(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    raw_log = RawLog(tmp_path / "raw")
    return warehouse, raw_log


def _heads(warehouse: Warehouse) -> dict[int, tuple]:
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT order_id, sequence, raw_ref, payload FROM core.order_heads"
        ).fetchall()
    return {order_id: (sequence, raw_ref, payload) for order_id, sequence, raw_ref, payload in rows}


@pytest.mark.parametrize("chunk", [None, 1])
def test_promotion_stores_each_new_heads_source_document_and_readers_use_it(
    tmp_path, monkeypatch, chunk
):
    # 1: the batch is applied an order at a time and the payloads streamed from raw are written a
    # head at a time, and the end is the same.
    if chunk is not None:
        monkeypatch.setattr(orders_core, "ORDERS_PER_CHUNK", chunk)
        monkeypatch.setattr(order_payloads, "PAYLOADS_PER_UPDATE", chunk)
    warehouse, raw_log = _world(tmp_path)
    first, second = _order(), _other_order()
    land_and_promote_orders(warehouse, raw_log, [first, second])
    [batch] = raw_log.batches(SOURCE, STREAM_NAME)

    heads = _heads(warehouse)
    assert {order_id: orjson.loads(payload) for order_id, (_, _, payload) in heads.items()} == {
        first["id"]: first,
        second["id"]: second,
    }
    assert sorted(raw_ref for _, raw_ref, _ in heads.values()) == [
        batch.raw_ref(0),
        batch.raw_ref(1),
    ]

    counting = _CountingRawLog(raw_log.root)
    with warehouse.connect() as con:
        orders = current_orders(con, counting)
    assert _CountingRawLog.files_read == 0, "current orders are read from the warehouse, not raw"
    assert [(o.order_id, o.payload, o.raw_ref) for o in orders] == [
        (first["id"], first, batch.raw_ref(0)),
        (second["id"], second, batch.raw_ref(1)),
    ]


def test_a_newer_version_replaces_the_payload_and_an_older_one_does_not(tmp_path):
    warehouse, raw_log = _world(tmp_path)
    original = _order()
    edited = _edited(original)
    land_and_promote_orders(warehouse, raw_log, [original])
    land_and_promote_orders(warehouse, raw_log, [edited])
    land_and_promote_orders(warehouse, raw_log, [original])  # stale: arrives after the edit
    second_batch = raw_log.batches(SOURCE, STREAM_NAME)[1]

    with warehouse.connect() as con:
        [order] = current_orders(con, raw_log)
    assert order.payload == edited
    assert order.raw_ref == second_batch.raw_ref(0)
    assert order.sequence == _heads(warehouse)[original["id"]][0]


def test_a_warehouse_built_before_the_payload_column_reads_from_raw_until_filled_once(tmp_path):
    warehouse, raw_log = _world(tmp_path)
    land_and_promote_orders(warehouse, raw_log, [_order(), _other_order()])
    with warehouse.connect() as con:
        expected = current_orders(con, raw_log)
    # The table as it was before: no raw_ref, no payload.
    with warehouse.transaction() as con:
        con.execute("ALTER TABLE core.order_heads DROP COLUMN payload")
        con.execute("ALTER TABLE core.order_heads DROP COLUMN raw_ref")
        # ...as the schema text of before left it: its recorded fingerprint is not today's
        con.execute(f"UPDATE {SCHEMA_RECORD} SET fingerprint = 'before payloads'")

    forget_schema_checks()  # a new process has checked no warehouse yet
    upgraded = Warehouse(warehouse.path)  # a new process: the schema adds the columns, empty
    with upgraded.connect() as con:
        assert current_orders(con, raw_log) == expected
    assert [(raw_ref, payload) for _, raw_ref, payload in _heads(upgraded).values()] == [
        (None, None),
        (None, None),
    ]

    with upgraded.transaction() as con:
        assert fill_missing_payloads(con, raw_log) == 2
    with upgraded.transaction() as con:
        assert fill_missing_payloads(con, raw_log) == 0, "filled once, then nothing to read"
    counting = _CountingRawLog(raw_log.root)
    _CountingRawLog.files_read = 0
    with upgraded.connect() as con:
        assert current_orders(con, counting) == expected
    assert _CountingRawLog.files_read == 0


def test_current_orders_stream_a_chunk_at_a_time_in_order_id_order(tmp_path):
    warehouse, raw_log = _world(tmp_path)
    orders = [_order(), _other_order()]
    for number in range(3):
        extra = copy.deepcopy(_other_order())
        extra.update(id=450789480 + number)
        orders.append(extra)
    land_and_promote_orders(warehouse, raw_log, orders)
    with warehouse.connect() as con:
        expected = current_orders(con, raw_log)
        streamed = iter_current_orders(con, raw_log, chunk_size=2)
        first = next(streamed)
        rest = list(streamed)
    assert [first, *rest] == expected
    assert [order.order_id for order in expected] == sorted(order["id"] for order in orders)


def test_raw_payloads_stream_in_file_order_and_a_missing_one_is_named_after_the_rest(tmp_path):
    warehouse, raw_log = _world(tmp_path)
    land_and_promote_orders(warehouse, raw_log, [_order(), _other_order()])
    [batch] = raw_log.batches(SOURCE, STREAM_NAME)
    refs = [batch.raw_ref(1), batch.raw_ref(0)]
    assert [ref for ref, _ in raw_log.iter_payloads(refs)] == [batch.raw_ref(0), batch.raw_ref(1)]
    seen = []
    try:
        for ref, payload in raw_log.iter_payloads([*refs, batch.raw_ref(7)]):
            seen.append((ref, payload["id"]))
    except KeyError as error:
        assert batch.raw_ref(7) in str(error)
    else:
        raise AssertionError("a reference that is not in raw must be named")
    assert sorted(seen) == sorted(
        [(batch.raw_ref(0), _order()["id"]), (batch.raw_ref(1), _other_order()["id"])]
    )


def _promoted_state(warehouse: Warehouse) -> tuple[list, list, list]:
    with warehouse.connect(read_only=True) as con:
        events = con.execute(
            "SELECT order_id, sequence, event_type, attribute, before, after, occurred_at, "
            "split_part(raw_ref, '#', 2) FROM core.order_events ORDER BY order_id, sequence"
        ).fetchall()
        heads = con.execute(
            "SELECT order_id, sequence, updated_at, payload_hash, snapshot, payload, "
            "split_part(raw_ref, '#', 2) FROM core.order_heads ORDER BY order_id"
        ).fetchall()
        books = con.execute(
            "SELECT versions, applied, duplicates, stale, events FROM core.promoted_batches "
            "ORDER BY batch_id"
        ).fetchall()
    return events, heads, books


def test_applying_a_batch_an_order_at_a_time_changes_nothing(tmp_path, monkeypatch):
    """Two versions of one order in a batch, another order, then a version older than the head."""
    original, other = _order(), _other_order()
    late = copy.deepcopy(original)
    late.update(updated_at="2020-01-01T00:00:00Z", note="arrives after the 2030 edit")
    batches = [[original, _edited(original), other], [late]]
    states = []
    for chunk in (5000, 1):
        monkeypatch.setattr(orders_core, "ORDERS_PER_CHUNK", chunk)
        warehouse, raw_log = _world(tmp_path / f"chunk-{chunk}")
        for orders in batches:
            land_and_promote_orders(warehouse, raw_log, orders)
        states.append(_promoted_state(warehouse))
    events, heads, books = states[0]
    assert states[1] == states[0]
    assert books[0][:2] == (3, 3) and books[1] == (1, 0, 0, 1, 0)  # the late version is stale
    assert len(heads) == 2 and len(events) > 2


@pytest.mark.parametrize("rows_per_insert", [10_000, 1])
def test_staging_a_batch_in_chunks_counts_and_writes_the_same(
    tmp_path, monkeypatch, rows_per_insert
):
    """A repeated record, a record the contract refuses and an edit, staged a row at a time or all
    at once: the same rows, the same books."""
    monkeypatch.setattr(orders_staging, "ROWS_PER_INSERT", rows_per_insert)
    warehouse, raw_log = _world(tmp_path)
    original, other = _order(), _other_order()
    broken = copy.deepcopy(other)
    broken.update(id=450789499, created_at="not a time")
    staged = land_and_promote_orders(
        warehouse, raw_log, [original, other, original, broken, _edited(original)]
    )
    assert (staged["staged"], staged["duplicates"], staged["quarantined"]) == (3, 1, 1)
    assert staged["balance"].holds
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT order_id, record_index FROM staging.storefront_orders ORDER BY record_index"
        ).fetchall()
    assert rows == [(original["id"], 0), (other["id"], 1), (original["id"], 4)]
