"""core.inventory_oversells as episodes: written whole with each short order's channel, and read by the
no_oversell check, open exceptions and `explain sku` in a text bounded however long a SKU stays oversold."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_assets.defs.inventory.ledger import no_oversell
from integration_assets.explain.exceptions import open_exceptions
from integration_assets.explain.render import render_sku
from integration_assets.explain.sku import explain_sku
from integration_assets.report import render_text, warehouse_section
from integration_assets.storage.oversells import oversell_text, oversold_skus, write_oversells
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.inventory_ledger import NAMED_SHORT_ORDERS, Oversell

T0 = datetime(2026, 11, 20, 20, 5, tzinfo=UTC)
MANY = 5000


def _stage_channels(con, channels: dict[int, str | None]) -> None:
    """Staged storefront orders carrying only what the channel lookup reads (two versions each: the
    newest wins)."""
    for order_id, channel in channels.items():
        for minutes, source_name in ((0, "old"), (1, channel)):
            con.execute(
                "INSERT INTO staging.storefront_orders (order_id, updated_at, payload_hash, batch_id,"
                " record_index, raw_ref, currency, financial_status, created_at, total_price_minor,"
                " subtotal_price_minor, total_tax_minor, total_discounts_minor, shipping_minor,"
                " totals_mismatch_minor, source_name, snapshot, quality_flags, contract_version,"
                " staged_run_id, staged_at) VALUES (?, ?, 'h', 'b', 0, 'r', 'EUR', 'paid', ?, 0, 0, 0,"
                " 0, 0, 0, ?, '{}', [], 1, 'run', ?)",
                [order_id, T0 + timedelta(minutes=minutes), T0, source_name, T0],
            )


EPISODES = [
    # a closed episode of IPOD, then LIMITED-ED sold on two channels, then IPOD again and still short
    Oversell("IPOD", T0 - timedelta(days=1), T0 - timedelta(hours=20), -1, (9,)),
    Oversell("LIMITED-ED", T0, None, -2, (2267, 2276)),
    Oversell("IPOD", T0 + timedelta(hours=1), None, -MANY, tuple(range(100_000, 100_000 + MANY))),
]


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.transaction() as con:
        _stage_channels(con, {9: "web", 2267: "web", 2276: "pos", 100_000: "pos", 100_001: ""})
        write_oversells(con, EPISODES)
        con.execute(
            "CREATE TABLE core.inventory_ledger AS SELECT 'm1' AS movement_id,"
            " TIMESTAMP '2026-11-20 20:05' AS occurred_at, 'LIMITED-ED' AS sku, NULL AS location,"
            " 'sale_commitment' AS kind, 1 AS quantity, 1 AS on_hand_delta, 0 AS committed_delta,"
            " 'ref' AS source_ref, 2267 AS order_id"
        )
        con.execute(
            "CREATE TABLE core.inventory_drift (sku VARCHAR, location VARCHAR, counted_at TIMESTAMP,"
            " ledger_on_hand BIGINT, counted BIGINT, delta BIGINT, cause VARCHAR, explanation VARCHAR)"
        )
    return warehouse


def test_the_table_keeps_the_schema_columns_and_names_each_channel(tmp_path, warehouse):
    with Warehouse(tmp_path / "fresh.duckdb").connect() as fresh:
        declared = fresh.execute("DESCRIBE core.inventory_oversells").fetchall()
    with warehouse.connect() as con:
        written = con.execute("DESCRIBE core.inventory_oversells").fetchall()
        rows = con.execute(
            "SELECT sku, ended_at IS NULL, lowest_available, orders[1:3], channels[1:3], len(orders),"
            " len(channels) FROM core.inventory_oversells ORDER BY started_at"
        ).fetchall()
    assert [c[:2] for c in written] == [c[:2] for c in declared]
    assert rows == [
        ("IPOD", False, -1, [9], ["web"], 1, 1),
        ("LIMITED-ED", True, -2, [2267, 2276], ["web", "pos"], 2, 2),
        # newest staged channel; empty or never staged: unknown
        (
            "IPOD",
            True,
            -MANY,
            [100_000, 100_001, 100_002],
            ["pos", "unknown", "unknown"],
            MANY,
            MANY,
        ),
    ]


def test_no_episodes_make_an_empty_table_of_the_same_shape(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.transaction() as con:
        before = con.execute("DESCRIBE core.inventory_oversells").fetchall()
        write_oversells(con, [])
        after = con.execute("DESCRIBE core.inventory_oversells").fetchall()
        assert oversold_skus(con) == []
    assert [c[:2] for c in after] == [c[:2] for c in before]
    assert no_oversell(warehouse=WarehouseResource(path=str(warehouse.path))).passed


def test_the_check_says_per_sku_its_episodes_lowest_and_a_bounded_list_of_orders(warehouse):
    result = no_oversell(warehouse=WarehouseResource(path=str(warehouse.path)))
    assert not result.passed
    ipod, limited = result.description.split("; ")
    assert limited == (
        "LIMITED-ED: available -2 at lowest in 1 episode (open since 2026-11-20 20:05),"
        " orders [2267 (web), 2276 (pos)], sold on pos and web"
    )
    assert ipod.startswith(
        f"IPOD: available -{MANY} at lowest in 2 episodes (the last open since 2026-11-20 21:05),"
        " orders [9 (web), 100000 (pos), 100001 (unknown), 100002 (unknown),"
    )
    assert ipod.endswith(
        f", and {MANY + 1 - NAMED_SHORT_ORDERS} more], sold on pos and unknown and web"
    )
    assert len(ipod) < 400
    assert result.metadata["skus_oversold"].value == 2
    assert result.metadata["oversell_episodes"].value == 3


def test_a_sku_whose_episodes_all_ended_says_when_the_last_ended(warehouse):
    with warehouse.connect() as con:
        con.execute("UPDATE core.inventory_oversells SET ended_at = started_at + INTERVAL 2 HOUR")
        [ipod, _] = oversold_skus(con)
    assert "(the last ended 2026-11-20 23:05)" in oversell_text(ipod)


def test_each_episode_is_one_exception_with_a_bounded_detail_and_a_key_that_survives_growth(
    warehouse,
):
    with warehouse.connect() as con:
        found = [e for e in open_exceptions(con) if e["kind"] == "oversell"]
    assert [(e["entity_id"], e["since"]) for e in found] == [
        ("IPOD", "2026-11-19T20:05:00Z"),
        ("LIMITED-ED", "2026-11-20T20:05:00Z"),
        ("IPOD", "2026-11-20T21:05:00Z"),
    ]
    assert found[0]["detail"] == (
        "IPOD: available -1 at lowest, oversold from 2026-11-19T20:05:00Z to 2026-11-20T00:05:00Z,"
        " orders [9 (web)]"
    )
    assert found[1]["ref"] == "core/inventory_oversells:LIMITED-ED@2026-11-20T20:05:00Z"
    assert found[2]["detail"].endswith(f", and {MANY - NAMED_SHORT_ORDERS} more]")
    assert len(found[2]["detail"]) < 400


def test_explain_sku_lists_its_episode_with_every_order_once_and_renders_a_bounded_text(warehouse):
    with warehouse.connect() as con:
        story = explain_sku(con, "LIMITED-ED")
    assert story["oversells"] == [
        {
            "started_at": "2026-11-20T20:05:00Z",
            "ended_at": None,
            "lowest_available": -2,
            "orders": [2267, 2276],
            "channels": ["web", "pos"],
        }
    ]
    text = render_sku(story)
    assert "Oversold 2026-11-20 20:05 .. now: available -2 at lowest, 2 short order(s)" in text
    assert "  orders [2267 (web), 2276 (pos)]" in text


def test_the_report_gives_each_oversold_sku_once_with_a_bounded_text(warehouse):
    inventory = warehouse_section(warehouse)["inventory"]
    ipod, limited = inventory["oversells"]
    assert limited == {
        "sku": "LIMITED-ED",
        "episodes": 1,
        "oversold_now": True,
        "lowest_available": -2,
        "short_orders": 2,
        "named_orders": [2267, 2276],
        "channels": ["pos", "web"],
        "text": "LIMITED-ED: available -2 at lowest in 1 episode (open since 2026-11-20 20:05),"
        " orders [2267 (web), 2276 (pos)], sold on pos and web",
    }
    assert (ipod["episodes"], ipod["short_orders"], len(ipod["named_orders"])) == (
        2,
        MANY + 1,
        NAMED_SHORT_ORDERS,
    )
    text = render_text(
        {
            "counts": {},
            "staging_totals": {},
            "checks": [],
            "quarantine": [],
            "balances": [],
            "inventory": inventory,
        }
    )
    assert "Inventory: 2 SKU(s) oversold, 0 count drift(s)" in text
    assert f"  oversold {limited['text']}" in text
