"""core/orders_current, its fold check and the order marts' timing cost what changed: they fold (or
time) again only the orders with new events, and what they keep is what doing every order would give."""

import dagster as dg

from integration_assets.defs.orders.core import fold_orders
from integration_assets.defs.orders.names import CHECK_FOLD_MATCHES_HEADS, ORDERS_CURRENT
from integration_assets.defs.reporting.marts import ORDER_LIFECYCLE, ORDERS_PER_DAY
from integration_assets_tests.pipeline.conftest import check_description, check_outcomes


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            return {
                k: v.value for k, v in event.event_specific_data.materialization.metadata.items()
            }
    raise KeyError(key)


def check_metadata(result: dg.ExecuteInProcessResult, name: str) -> dict:
    for event in result.all_events:
        data = (
            event.asset_check_evaluation_data
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
            else None
        )
        if data is not None and data.check_name == name:
            return {k: v.value for k, v in data.metadata.items()}
    raise KeyError(name)


def current_rows(pipeline) -> list[tuple]:
    return pipeline.sql("SELECT * FROM core.orders_current ORDER BY order_id")


def folded_whole(pipeline) -> list[tuple]:
    """core.orders_current as a fold of every order's events would build it now."""
    with pipeline.warehouse.transaction() as con:
        con.execute("CREATE TEMP TABLE whole AS SELECT * FROM core.orders_current LIMIT 0")
        rows, _ = fold_orders(con)
        for row in rows:
            con.execute(f"INSERT INTO whole VALUES ({', '.join('?' * len(row))})", row)
        return con.execute("SELECT * FROM whole ORDER BY order_id").fetchall()


def test_a_quiet_run_folds_nothing_and_a_later_poll_only_the_changed_orders(tiny):
    tiny.advance(hours=2)
    first = tiny.run()
    assert first.success
    assert metadata(first, "core/orders_current")["fold_scope"] == "every order"
    heads_before = dict(tiny.sql("SELECT order_id, sequence FROM core.order_heads"))

    quiet = tiny.run(dg.AssetSelection.assets(ORDERS_CURRENT))  # re-materialized by hand
    assert quiet.success
    assert metadata(quiet, "core/orders_current")["orders_folded"] == 0
    assert check_metadata(quiet, CHECK_FOLD_MATCHES_HEADS)["orders_checked"] == 0

    tiny.advance(hours=12)
    later = tiny.run()
    assert later.success, [e.message for e in later.all_events if e.is_failure]
    heads_after = dict(tiny.sql("SELECT order_id, sequence FROM core.order_heads"))
    changed = {o for o, s in heads_after.items() if heads_before.get(o) != s}
    assert changed and len(changed) < len(heads_after) + 1
    assert metadata(later, "core/orders_current")["fold_scope"] == "changed orders"
    assert metadata(later, "core/orders_current")["orders_folded"] == len(changed)
    assert check_metadata(later, CHECK_FOLD_MATCHES_HEADS)["orders_checked"] == len(changed)
    assert current_rows(tiny) == folded_whole(tiny)


def test_a_new_fold_code_folds_every_order_again(tiny):
    tiny.advance(hours=6)
    assert tiny.run().success
    with tiny.warehouse.transaction() as con:
        con.execute("UPDATE ops.derivations SET version = 'older code'")
        con.execute("UPDATE core.orders_current SET refund_count = 99")  # what older code wrote

    result = tiny.run()

    assert metadata(result, "core/orders_current")["fold_scope"] == "every order"
    assert check_metadata(result, CHECK_FOLD_MATCHES_HEADS)["orders_verified_before"] == 0
    assert current_rows(tiny) == folded_whole(tiny)


def test_a_head_its_events_do_not_rebuild_fails_the_check_on_every_run_until_mended(tiny):
    tiny.advance(hours=6)
    assert tiny.run().success
    (order_id,) = tiny.sql("SELECT min(order_id) FROM core.order_heads")[0]
    with tiny.warehouse.transaction() as con:  # a head changed behind the stream's back
        con.execute(
            'UPDATE core.order_heads SET snapshot = json_merge_patch(snapshot, \'{"email": "x@y.z"}\'), '
            "sequence = sequence + 1 WHERE order_id = ?",
            [order_id],
        )

    for _ in range(2):
        result = tiny.run()
        assert check_outcomes(result)[CHECK_FOLD_MATCHES_HEADS] is False
        assert str(order_id) in check_description(result, CHECK_FOLD_MATCHES_HEADS)
        assert check_metadata(result, CHECK_FOLD_MATCHES_HEADS)["orders_mismatched"] == 1


def test_the_marts_time_only_the_changed_orders_and_agree_with_timing_every_order(tiny):
    marts = dg.AssetSelection.assets(ORDERS_PER_DAY, ORDER_LIFECYCLE)
    tiny.advance(hours=2)
    assert tiny.run().success
    heads_before = dict(tiny.sql("SELECT order_id, sequence FROM core.order_heads"))
    quiet = tiny.run(marts)
    assert metadata(quiet, "reporting/orders_per_day")["timing_orders_computed"] == 0
    assert metadata(quiet, "reporting/order_lifecycle")["timing_orders_computed"] == 0

    tiny.advance(hours=12)
    later = tiny.run()
    changed = {
        o
        for o, s in tiny.sql("SELECT order_id, sequence FROM core.order_heads")
        if heads_before.get(o) != s
    }
    assert changed
    computed = [
        metadata(later, key)["timing_orders_computed"]
        for key in ("reporting/orders_per_day", "reporting/order_lifecycle")
    ]
    assert sorted(computed) == [0, len(changed)]  # whichever mart ran first brought it up to date
    by_change = (
        tiny.sql("SELECT * FROM reporting.orders_per_day ORDER BY ALL"),
        tiny.sql("SELECT * FROM reporting.order_lifecycle ORDER BY ALL"),
    )

    with tiny.warehouse.transaction() as con:  # as if the timing code had changed
        con.execute("DELETE FROM ops.derivations WHERE name = 'core.order_timing'")
    whole = tiny.run(marts)
    assert max(
        metadata(whole, key)["timing_orders_computed"]
        for key in ("reporting/orders_per_day", "reporting/order_lifecycle")
    ) == len(heads_before | dict.fromkeys(changed))
    assert (
        tiny.sql("SELECT * FROM reporting.orders_per_day ORDER BY ALL"),
        tiny.sql("SELECT * FROM reporting.order_lifecycle ORDER BY ALL"),
    ) == by_change
