"""Timing definitions obeyed end to end: the sandbox systems over HTTP, a real DuckDB, in-process runs.

The definitions are changed the way an operator tries a new version: an edited timing.yaml in the
override directory (INTEGRATION_ASSETS_CONTRACTS_DIR), read again by every run.
"""

from datetime import timedelta

import dagster as dg

from integration_assets.contracts.location import CONTRACTS_DIR_ENV
from integration_assets_tests.delivery.conftest import open_stack
from integration_assets_tests.timing.stories import (
    CREATED_LOCAL_DATE,
    PAID_NOT_SHIPPED,
    PENDING,
    SHIPPED_LOCAL_DATE,
    timing_scenario,
    write_timing,
)

UPSTREAM = ("orders", "payments", "finance", "customers")


def erp_record(stack, kind: str, external_id: str) -> dict | None:
    for document in stack.systems.erp.app.documents(kind):
        if document["external_id"] == external_id:
            return document["record"]
    return None


def reservation(stack, order_id: int) -> dict | None:
    found = [r for r in stack.systems.wms.reservations() if r["order_id"] == str(order_id)]
    return found[0] if found else None


def payments_applied_to(stack, order_id: int) -> list[dict]:
    return [
        document["record"]
        for document in stack.systems.erp.app.documents("payment_applied")
        if document["record"]["invoice_eid"] == f"INV-{order_id}"
    ]


def mart_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            metadata = event.event_specific_data.materialization.metadata
            return {name: value.value for name, value in metadata.items()}
    raise KeyError(key)


def marts(stack) -> dict:
    """Rebuild the marts; the mart figures, the unconfirmed orders and the mart's metadata."""
    result = stack.run("reporting")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with stack.warehouse.connect() as con:
        orders, confirmed, recognised = con.execute(
            "SELECT sum(orders), sum(confirmed_orders), sum(recognised_revenue_minor) "
            "FROM reporting.orders_per_day"
        ).fetchone()
        unconfirmed = {
            row[0]
            for row in con.execute(
                "SELECT order_id FROM reporting.order_lifecycle WHERE confirmed_at IS NULL"
            ).fetchall()
        }
        unpaid = {
            row[0]
            for row in con.execute(
                "SELECT order_id FROM core.orders_current WHERE financial_status "
                "NOT IN ('paid', 'partially_refunded', 'refunded')"
            ).fetchall()
        }
    return {
        "orders": int(orders),
        "confirmed": int(confirmed),
        "recognised_minor": int(recognised),
        "unconfirmed": unconfirmed,
        "unpaid": unpaid,
        "metadata": mart_metadata(result, "reporting/orders_per_day"),
    }


def test_the_packaged_definitions_invoice_at_payment_and_reserve_once_paid(tmp_path, monkeypatch):
    monkeypatch.delenv(CONTRACTS_DIR_ENV, raising=False)
    with open_stack(tmp_path, timing_scenario(tmp_path)) as stack:
        assert stack.deliver().success
        invoice = erp_record(stack, "invoice", f"INV-{PAID_NOT_SHIPPED}")
        assert invoice is not None and invoice["invoice_date"] == CREATED_LOCAL_DATE
        assert payments_applied_to(stack, PAID_NOT_SHIPPED)
        assert erp_record(stack, "sales_order", str(PENDING)) is not None  # confirmed when created
        assert reservation(stack, PENDING) is None  # not paid: fulfilment not activated
        figures = marts(stack)
        assert figures["confirmed"] == figures["orders"] and figures["unconfirmed"] == set()
        assert figures["metadata"]["timing_version"] == 1
        assert figures["metadata"]["timing/revenue_recognised"] == "paid"


def test_changed_definitions_move_invoices_sales_orders_reservations_and_mart_figures(
    tmp_path, monkeypatch
):
    contracts = tmp_path / "contracts"
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(contracts))
    write_timing(contracts, order_confirmed="paid", revenue_recognised="first_fulfilment")
    with open_stack(tmp_path, timing_scenario(tmp_path)) as stack:
        # 12h in: PAID_NOT_SHIPPED is paid and not shipped, PENDING not paid.
        assert stack.deliver().success
        assert erp_record(stack, "invoice", f"INV-{PAID_NOT_SHIPPED}") is None
        assert erp_record(stack, "sales_order", str(PAID_NOT_SHIPPED)) is not None
        assert payments_applied_to(stack, PAID_NOT_SHIPPED) == []
        with stack.warehouse.connect() as con:
            held = con.execute(
                "SELECT count(*) FROM ops.mapping_quarantine WHERE entity = 'payment_applied' "
                "AND source_ref LIKE ?",
                [f"%{PAID_NOT_SHIPPED}%"],
            ).fetchone()[0]
        assert held == 0  # the charge waits for its invoice: nothing is wrong with it
        assert erp_record(stack, "sales_order", str(PENDING)) is None  # not confirmed: not paid
        assert reservation(stack, PENDING) is None
        confirmed_when_paid = marts(stack)
        assert PENDING in confirmed_when_paid["unconfirmed"]
        assert confirmed_when_paid["unconfirmed"] == confirmed_when_paid["unpaid"]
        assert confirmed_when_paid["metadata"]["timing/order_confirmed"] == "paid"

        # Confirmation at creation, fulfilment activated on confirmation: PENDING is confirmed and
        # its stock held now; still no invoice for what has not shipped.
        write_timing(
            contracts, revenue_recognised="first_fulfilment", fulfilment_activated="confirmed"
        )
        confirmed_when_created = marts(stack)
        assert confirmed_when_created["confirmed"] == confirmed_when_created["orders"]
        assert confirmed_when_paid["confirmed"] == (
            confirmed_when_created["confirmed"] - len(confirmed_when_paid["unpaid"])
        )
        assert confirmed_when_created["recognised_minor"] == confirmed_when_paid["recognised_minor"]
        assert stack.deliver().success
        assert erp_record(stack, "sales_order", str(PENDING)) is not None
        assert reservation(stack, PENDING)["status"] == "reserved"
        assert erp_record(stack, "invoice", f"INV-{PAID_NOT_SHIPPED}") is None

        # +21h: PAID_NOT_SHIPPED has shipped (2026-11-21): its invoice is written, dated that day,
        # and its charge is applied to it.
        stack.systems.clock.advance(timedelta(hours=9))
        assert stack.run(*UPSTREAM).success
        assert stack.deliver().success
        invoice = erp_record(stack, "invoice", f"INV-{PAID_NOT_SHIPPED}")
        assert invoice is not None and invoice["invoice_date"] == SHIPPED_LOCAL_DATE
        assert len(payments_applied_to(stack, PAID_NOT_SHIPPED)) == 1
        assert marts(stack)["recognised_minor"] > confirmed_when_created["recognised_minor"]
