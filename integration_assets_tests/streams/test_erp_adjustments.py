"""Orders edited after their invoice was delivered: the adjustment still owed, and what stays frozen."""

import copy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from integration_assets.sandbox.scenario import SCENARIOS_DIR, load_scenario
from integration_assets.sandbox.storefront_orders import OrderBook
from integration_assets.streams.erp_adjustments import (
    ADJUSTMENT_REASON,
    InvoicedOrder,
    OutboxRecord,
    adjustment_needed_minor,
    erp_adjustment_credit_note,
    erp_supplementary_invoice,
    invoiced_orders,
    invoiced_sales_order,
    issued_invoice,
    parse_adjustment_eid,
)
from integration_assets.streams.erp_mapping import erp_credit_note, erp_invoice, erp_sales_order
from integration_assets.streams.mapped import Mapped

ORDER = "5100"
THRESHOLD = 50_000  # 500.00
KNOWN = {"207119551", "300000002"}


def order(total: str, updated_at: str = "2026-11-21T10:00:00-05:00", **changes) -> dict:
    body = {
        "id": int(ORDER),
        "currency": "USD",
        "customer": {"id": 300000002},
        "financial_status": "paid",
        "created_at": "2026-11-20T09:00:00-05:00",
        "updated_at": updated_at,
        "total_price": total,
    }
    return {**body, **changes}


def invoice_row(
    amount: str, sequence: int = 1, status: str = "sent", override: dict | None = None
) -> OutboxRecord:
    payload = {
        "sales_order_eid": ORDER,
        "customer_eid": "300000002",
        "invoice_date": "2026-11-20",
        "currency": "USD",
        "amount": amount,
    }
    return OutboxRecord("invoice", f"INV-{ORDER}", sequence, status, payload, override)


def credit_row(number: int, amount: str, status: str = "sent", sequence: int = 1) -> OutboxRecord:
    payload = {
        "invoice_eid": f"INV-{ORDER}",
        "customer_eid": "300000002",
        "credit_date": "2026-11-21",
        "currency": "USD",
        "amount": amount,
        "reason": ADJUSTMENT_REASON,
    }
    return OutboxRecord("credit_note", f"CN-ADJ-{ORDER}-{number}", sequence, status, payload)


def supplementary_row(number: int, amount: str, status: str = "sent") -> OutboxRecord:
    payload = {
        "sales_order_eid": ORDER,
        "customer_eid": "300000002",
        "invoice_date": "2026-11-21",
        "currency": "USD",
        "amount": amount,
    }
    return OutboxRecord("invoice", f"INV-{ORDER}-ADJ{number}", 1, status, payload)


def invoiced(*rows: OutboxRecord) -> InvoicedOrder:
    return invoiced_orders(rows)[ORDER]


def adjustments(snapshot: dict, delivered: InvoicedOrder) -> list[tuple[str, str, str]]:
    """(entity, external id, amount) of every adjustment document the order needs now."""
    found = [
        erp_adjustment_credit_note(snapshot, delivered, THRESHOLD),
        erp_supplementary_invoice(snapshot, delivered),
    ]
    return [(m.entity, m.external_id, m.payload["amount"]) for m in found if m is not None]


# ---- the arithmetic ----------------------------------------------------------------------------


def test_an_order_edited_down_after_invoicing_owes_a_credit_note_for_the_difference():
    delivered = invoiced(invoice_row("100.00"))
    mapped = erp_adjustment_credit_note(order("80.00"), delivered, THRESHOLD)
    assert mapped.external_id == f"CN-ADJ-{ORDER}-1"
    assert mapped.payload == {
        "invoice_eid": f"INV-{ORDER}",
        "customer_eid": "300000002",
        "credit_date": "2026-11-21",
        "currency": "USD",
        "amount": "20.00",
        "reason": "order edited after invoicing",
    }
    assert mapped.depends_on == (
        ("erp", "invoice", f"INV-{ORDER}"),
        ("erp", "customer", "300000002"),
    )
    assert mapped.approval_rule is None and mapped.quarantine is None
    assert erp_supplementary_invoice(order("80.00"), delivered) is None


def test_an_order_edited_up_after_invoicing_owes_a_supplementary_invoice():
    delivered = invoiced(invoice_row("100.00"))
    mapped = erp_supplementary_invoice(order("130.50"), delivered)
    assert mapped.external_id == f"INV-{ORDER}-ADJ1"
    assert mapped.payload == {
        "sales_order_eid": ORDER,
        "customer_eid": "300000002",
        "invoice_date": "2026-11-21",
        "currency": "USD",
        "amount": "30.50",
    }
    assert mapped.depends_on[0] == ("erp", "sales_order", ORDER)
    assert erp_adjustment_credit_note(order("130.50"), delivered, THRESHOLD) is None


def test_an_unchanged_order_owes_nothing():
    assert adjustments(order("100.00"), invoiced(invoice_row("100.00"))) == []


def test_back_to_the_original_total_after_a_delivered_credit_note_invoices_the_difference_again():
    delivered = invoiced(invoice_row("100.00"), credit_row(1, "20.00"))
    assert adjustments(order("100.00"), delivered) == [("invoice", f"INV-{ORDER}-ADJ2", "20.00")]


def test_back_to_the_original_total_before_the_credit_note_was_delivered_owes_nothing():
    # The pending credit note is not what the ERP holds, so it is not counted.
    delivered = invoiced(invoice_row("100.00"), credit_row(1, "20.00", status="failed"))
    assert adjustments(order("100.00"), delivered) == []


def test_a_second_edit_before_the_first_adjustment_is_delivered_replaces_it_under_the_same_number():
    delivered = invoiced(invoice_row("100.00"), credit_row(1, "20.00", status="pending"))
    assert adjustments(order("70.00"), delivered) == [("credit_note", f"CN-ADJ-{ORDER}-1", "30.00")]


def test_a_second_edit_after_the_first_adjustment_is_delivered_adds_only_the_new_difference():
    delivered = invoiced(invoice_row("100.00"), credit_row(1, "20.00"))
    assert adjustments(order("70.00"), delivered) == [("credit_note", f"CN-ADJ-{ORDER}-2", "10.00")]
    delivered = invoiced(
        invoice_row("100.00"), credit_row(1, "20.00"), supplementary_row(2, "5.00")
    )
    assert adjustment_needed_minor(order("70.00"), delivered) == -1500
    assert adjustments(order("70.00"), delivered)[0][1] == f"CN-ADJ-{ORDER}-3"


def test_what_was_sent_counts_including_an_operators_edit():
    delivered = invoiced(invoice_row("100.00", override={"amount": "90.00"}))
    assert adjustments(order("80.00"), delivered) == [("credit_note", f"CN-ADJ-{ORDER}-1", "10.00")]
    assert issued_invoice(delivered).payload["amount"] == "90.00"


def test_a_big_adjustment_credit_note_waits_for_approval_like_a_refund():
    mapped = erp_adjustment_credit_note(order("100.00"), invoiced(invoice_row("700.00")), THRESHOLD)
    assert mapped.payload["amount"] == "600.00"
    assert mapped.approval_rule == "credit_note_over_threshold"
    assert mapped.details["threshold"] == "500.00"


def test_a_newer_version_that_only_moves_the_date_keeps_the_adjustment_waiting_for_approval():
    waiting = credit_row(1, "600.00", status="awaiting_approval")
    delivered = invoiced(invoice_row("700.00"), waiting)
    later = order("100.00", updated_at="2026-11-23T16:00:00-05:00")  # e.g. fulfilled two days on
    mapped = erp_adjustment_credit_note(later, delivered, THRESHOLD)
    assert mapped.payload == waiting.payload  # same content: the outbox sees no change
    different = erp_adjustment_credit_note(
        order("90.00", updated_at=later["updated_at"]), delivered, THRESHOLD
    )
    assert (different.payload["amount"], different.payload["credit_date"]) == (
        "610.00",
        "2026-11-23",
    )


def test_unreadable_or_inconsistent_input_is_quarantined_not_raised():
    delivered = invoiced(invoice_row("100.00"))
    unreadable = erp_adjustment_credit_note(order("eighty"), delivered, THRESHOLD)
    assert unreadable.payload is None and unreadable.quarantine.startswith(
        "invalid_input: total_price"
    )
    euros = erp_supplementary_invoice(order("130.00", currency="EUR"), delivered)
    assert euros.quarantine.startswith("invalid_input: the delivered invoice.currency")


# ---- what is read back from the outbox ----------------------------------------------------------


def test_only_orders_with_a_delivered_invoice_count_as_invoiced():
    orders = invoiced_orders(
        [
            invoice_row("100.00", status="failed"),
            OutboxRecord("invoice", "INV-6200", 1, "sent", {"amount": "5.00", "currency": "USD"}),
            OutboxRecord("credit_note", "CN-6200001", 1, "sent", {"amount": "5.00"}),  # a refund
        ]
    )
    assert set(orders) == {"6200"} and orders["6200"].adjustments == {}


def test_the_newest_delivered_version_is_the_one_the_erp_holds():
    rows = [
        invoice_row("100.00"),
        invoice_row("120.00", sequence=2, status="dead"),  # the ERP refused the change
        OutboxRecord("sales_order", ORDER, 1, "sent", {"total": "90.00", "status": "open"}),
        OutboxRecord("sales_order", ORDER, 2, "sent", {"total": "100.00", "status": "open"}),
        OutboxRecord("sales_order", ORDER, 3, "failed", {"total": "120.00", "status": "open"}),
    ]
    delivered = invoiced(*reversed(rows))  # read order does not matter
    assert delivered.invoice["amount"] == "100.00"
    assert delivered.sales_order["total"] == "100.00"


def test_adjustment_ids_name_their_order_and_number_and_nothing_else_matches():
    assert parse_adjustment_eid("credit_note", "CN-ADJ-51-00-12").order_external_id == "51-00"
    assert parse_adjustment_eid("credit_note", "CN-ADJ-5100-12").number == 12
    assert parse_adjustment_eid("invoice", "INV-5100-ADJ3").number == 3
    for entity, external_id in (
        ("credit_note", "CN-5100001"),
        ("invoice", "INV-5100"),
        ("invoice", "CN-ADJ-5100-1"),
        ("credit_note", "CN-ADJ-5100-0"),
    ):
        assert parse_adjustment_eid(entity, external_id) is None


# ---- the frozen documents -----------------------------------------------------------------------


def test_an_invoiced_sales_order_keeps_its_delivered_amounts_and_takes_a_new_status():
    delivered = {
        "customer_eid": "300000002",
        "lines": [{"sku": "A", "quantity": 2, "unit_price": "50.00", "tax": "0.00"}],
        "currency": "USD",
        "shipping": "0.00",
        "tax_total": "0.00",
        "discount_total": "0.00",
        "total": "100.00",
        "status": "open",
    }
    edited = {
        **delivered,
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "50.00", "tax": "0.00"}],
        "total": "50.00",
        "status": "closed",
    }
    frozen = invoiced_sales_order(Mapped("erp", "sales_order", ORDER, edited), delivered)
    assert frozen.payload == {**delivered, "status": "closed"}
    emptied = Mapped("erp", "sales_order", ORDER, {**edited, "lines": []}, quarantine="no_lines")
    assert invoiced_sales_order(emptied, delivered).quarantine is None
    unknown = Mapped("erp", "sales_order", ORDER, edited, quarantine="unknown_customer")
    assert invoiced_sales_order(unknown, delivered) is unknown


# ---- against the sandbox storefront's own orders ------------------------------------------------


def _book(tmp_path: Path) -> tuple[OrderBook, object]:
    raw = yaml.safe_load((SCENARIOS_DIR / "tiny.yaml").read_text())
    raw["stories"] = [
        {
            "name": "edited_and_refunded",
            "customer": 300000002,
            "events": [
                {
                    "at": "+0h",
                    "type": "created",
                    "lines": [
                        {"sku": "IPOD2008GREEN", "quantity": 2},
                        {"sku": "CASE-SLIM", "quantity": 1},
                    ],
                },
                {"at": "+1h", "type": "paid"},
                {
                    "at": "+2h",
                    "type": "refunded",
                    "lines": [{"sku": "IPOD2008GREEN", "quantity": 1}],
                },
                {"at": "+3h", "type": "line_removed", "sku": "CASE-SLIM"},
            ],
        }
    ]
    path = tmp_path / "edited_and_refunded.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    scenario = load_scenario(path)
    return OrderBook(scenario), scenario.clock.start


def test_an_edit_and_a_refund_are_each_credited_once(tmp_path):
    book, start = _book(tmp_path)
    (order_id,) = book.order_ids()

    def at(hours: float) -> dict:
        return copy.deepcopy(book.order_at(order_id, start + timedelta(hours=hours)).body)

    paid, refunded, edited = at(1.5), at(2.5), at(3.5)
    invoice = erp_invoice(paid)
    assert invoice.payload["amount"] == "451.33"  # 2 x 199.00 + 19.90, 8% tax
    delivered = invoiced_orders(
        [OutboxRecord("invoice", invoice.external_id, 1, "sent", invoice.payload)]
    )[str(order_id)]

    # The refund is its own credit note and owes no adjustment: total_price ignores refunds.
    (refund,) = refunded["refunds"]
    refund_note = erp_credit_note(refund, refunded, THRESHOLD)
    assert refund_note.payload["amount"] == "214.92"  # 199.00 + 8% tax
    assert adjustment_needed_minor(refunded, delivered) == 0

    # Removing the case afterwards owes only the case: 19.90 + 8% tax = 21.49, not the refund again.
    adjustment = erp_adjustment_credit_note(edited, delivered, THRESHOLD)
    assert (adjustment.external_id, adjustment.payload["amount"]) == (
        f"CN-ADJ-{order_id}-1",
        "21.49",
    )
    assert erp_supplementary_invoice(edited, delivered) is None
    # Invoice - refund - adjustment = what the order is still worth after both (one iPod, 8% tax).
    booked = (
        Decimal(invoice.payload["amount"])
        - Decimal(refund_note.payload["amount"])
        - Decimal(adjustment.payload["amount"])
    )
    assert booked == Decimal(edited["current_total_price"]) == Decimal("214.92")
    # And the sales order the ERP holds keeps the lines it was invoiced with.
    sold = erp_sales_order(paid, KNOWN).payload
    frozen = invoiced_sales_order(erp_sales_order(edited, KNOWN), sold).payload
    assert [(line["sku"], line["quantity"]) for line in frozen["lines"]] == [
        ("IPOD2008GREEN", 2),
        ("CASE-SLIM", 1),
    ]
