"""Order planners map only the orders whose inputs changed (delivery/order_scope.py), and that is
enough: what they skip would have mapped to what the outbox already holds."""

from datetime import timedelta

import dagster as dg
import duckdb
import pytest

from integration_assets.definitions import defs
from integration_assets.storage.order_payloads import CurrentOrder
from integration_assets.storage.warehouse import ORDER_ID_OF_SOURCE_REF
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets_tests.delivery.conftest import delivery_scenario, open_stack

ORDER_DELIVERIES = (
    "delivery/erp/sales_orders",
    "delivery/erp/invoices",
    "delivery/erp/credit_notes",
    "delivery/erp/payments_applied",
    "delivery/wms/reservations",
)
ENTITY = {
    "delivery/erp/sales_orders": ("erp", "sales_order"),
    "delivery/erp/invoices": ("erp", "invoice"),
    "delivery/erp/credit_notes": ("erp", "credit_note"),
    "delivery/erp/payments_applied": ("erp", "payment_applied"),
    "delivery/wms/reservations": ("wms", "reservation"),
}


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.asset_key.to_user_string(): {
            name: value.value
            for name, value in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def quarantined_orders(stack, target: str, entity: str) -> set[int]:
    with stack.warehouse.connect() as con:
        return {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT order_id FROM ops.mapping_quarantine WHERE target = ? AND entity = ?",
                [target, entity],
            ).fetchall()
        }


def heads(stack) -> dict[int, int]:
    with stack.warehouse.connect() as con:
        return dict(con.execute("SELECT order_id, sequence FROM core.order_heads").fetchall())


def outbox_rows(stack) -> list[tuple]:
    with stack.warehouse.connect() as con:
        return con.execute(
            "SELECT idempotency_key, status FROM ops.outbox ORDER BY idempotency_key"
        ).fetchall()


def deliver_until_settled(stack) -> dg.ExecuteInProcessResult:
    """Deliver twice: the second run maps what the first one's later deliveries changed."""
    assert stack.deliver().success
    result = stack.deliver()
    assert result.success
    return result


def test_the_first_plan_maps_every_order_and_a_quiet_run_only_the_held_ones(stack):
    first = metadata(stack.deliver())
    every = len(heads(stack))
    for key in ORDER_DELIVERIES:
        assert first[key]["plan_scope"] == "every order"
        assert first[key]["orders_mapped"] == every
    stack.deliver()  # maps the orders whose invoices and payments went out after their plan
    before = outbox_rows(stack)

    quiet = metadata(stack.deliver())

    assert outbox_rows(stack) == before  # nothing enqueued, nothing changed
    for key in ORDER_DELIVERIES:
        held = quarantined_orders(stack, *ENTITY[key])
        assert quiet[key]["plan_scope"] == "orders whose inputs changed"
        assert quiet[key]["orders_mapped"] == len(held), key
        assert quiet[key]["plan_scope_reasons"]["new_version"] == 0
    # the order of the customer the ERP refused waits, and is tried on every run
    assert quiet["delivery/erp/sales_orders"]["orders_mapped"] == 1
    assert quiet["delivery/erp/sales_orders"]["mapping_quarantine_open"] == 1


@pytest.fixture
def early_stack(tmp_path):
    """The delivery business three hours into its day: most of its orders change later."""
    with open_stack(tmp_path, delivery_scenario(tmp_path), hours=3) as stack:
        yield stack


def test_hours_of_change_map_the_changed_orders_and_deliver_what_a_full_plan_would(early_stack):
    stack = early_stack
    deliver_until_settled(stack)
    before = heads(stack)
    stack.systems.clock.advance(timedelta(hours=24))  # the stories' later events happen
    assert stack.run("orders", "payments", "finance", "customers").success
    changed = {order for order, sequence in heads(stack).items() if before.get(order) != sequence}
    assert changed, "the scenario has events after its first 3 hours"

    result = metadata(stack.deliver())

    for key in ORDER_DELIVERIES:
        assert result[key]["plan_scope_reasons"]["new_version"] == len(changed), key
        assert result[key]["orders_mapped"] >= len(changed)
    assert stack.deliver().success  # and what their deliveries changed
    # what the scoped plans enqueued is everything a plan of every order wants
    replanned = metadata(replan_all(stack))
    for key in ORDER_DELIVERIES:
        assert replanned[key]["orders_mapped"] == len(heads(stack))
        assert replanned[key]["enqueued"] == 0, key


def replan_all(stack) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources=stack.resources,
        instance=stack.instance,
        raise_on_error=False,
        selection=dg.AssetSelection.assets(
            *(dg.AssetKey.from_user_string(key) for key in ORDER_DELIVERIES)
        ),
        run_config={
            "ops": {
                dg.AssetKey.from_user_string(key).to_python_identifier(): {
                    "config": {"replan_all": True}
                }
                for key in ORDER_DELIVERIES
            }
        },
    )


def test_a_delivered_invoice_brings_its_sales_order_back_into_scope(stack):
    deliver_until_settled(stack)
    with stack.warehouse.connect() as con:
        (order_id,) = con.execute(
            "SELECT order_id FROM ops.outbox WHERE entity = 'invoice' AND status = 'sent' "
            "ORDER BY order_id LIMIT 1"
        ).fetchone()
    with stack.warehouse.transaction() as con:  # as a later drain would
        con.execute(
            "UPDATE ops.outbox SET sent_at = ? WHERE entity = 'invoice' AND order_id = ?",
            [utc_now_naive(), order_id],
        )

    result = metadata(stack.deliver())

    reasons = result["delivery/erp/sales_orders"]["plan_scope_reasons"]
    assert reasons["delivery_changed"] == 1
    assert reasons["new_version"] == 0
    assert result["delivery/wms/reservations"]["plan_scope_reasons"]["delivery_changed"] == 0


@pytest.mark.parametrize(
    "source_ref, order_id",
    [
        (CurrentOrder(1001, 3, None, {}, "raw/x").ref + " (raw/x)", 1001),
        (CurrentOrder(1001, 3, None, {}, "raw/x").ref + " (raw/x)/refund:77", 1001),
        ("core/customers:300000004", None),
        ("operator:lena", None),
    ],
)
def test_the_order_of_a_write_is_read_from_its_source_reference(source_ref, order_id):
    with duckdb.connect() as con:
        found = con.execute(
            f"SELECT {ORDER_ID_OF_SOURCE_REF} FROM (SELECT ? AS source_ref)", [source_ref]
        ).fetchone()[0]
    assert found == order_id
