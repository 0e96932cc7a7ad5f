"""The timing definitions applied to orders as the sandbox storefront renders them: when each moment is
reached, and what the ERP and WMS mappings write (or wait for) under each choice."""

import copy
from datetime import datetime, timedelta

import pytest

from integration_assets.sandbox.scenario import SCENARIOS_DIR, load_scenario
from integration_assets.sandbox.storefront_orders import OrderBook
from integration_assets.streams.erp_mapping import (
    erp_credit_note,
    erp_invoice,
    erp_payment_applied,
    erp_sales_order,
)
from integration_assets.streams.timing import (
    DEFAULT_TIMING,
    Timing,
    confirmed_at,
    fulfilment_activated,
    is_confirmed,
    order_timing,
    revenue_recognised_at,
)
from integration_assets.streams.wms_mapping import wms_reservation

TINY = load_scenario(SCENARIOS_DIR / "tiny.yaml")
BOOK = OrderBook(TINY)
START = TINY.clock.start  # 2026-11-20T09:00-05:00
HAPPY, EDITED, CANCELLED, REFUNDED = BOOK.order_ids()
KNOWN = {"207119551", "300000002"}
AT_SHIPMENT = Timing(revenue_recognised="first_fulfilment")
WHEN_FULFILLED = Timing(revenue_recognised="fulfilled")
CONFIRMED_WHEN_PAID = Timing(order_confirmed="paid")
CHARGE = {"id": "ch_1", "amount_minor": 26290, "currency": "usd", "created": 1795190400,
          "payment_method": "card"}  # fmt: skip


def order(order_id: int, hours: float) -> dict:
    """The order as the storefront serves it `hours` after the scenario starts."""
    served = BOOK.order_at(order_id, START + timedelta(hours=hours))
    assert served is not None
    return copy.deepcopy(served.body)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


# ---- moments ---------------------------------------------------------------------------------------


def test_by_default_an_order_is_confirmed_when_created_and_recognised_and_activated_when_paid():
    pending, paid = order(HAPPY, 0.5), order(HAPPY, 2)
    assert confirmed_at(pending) == at(0) and is_confirmed(pending)
    assert revenue_recognised_at(pending) is None
    assert not fulfilment_activated(pending)
    # Paid at +1h; the order payload dates payment at checkout (processed_at), the order's time.
    assert revenue_recognised_at(paid) == at(0)
    assert fulfilment_activated(paid)


def test_times_keep_the_shops_offset_so_their_date_is_the_shops_day():
    moment = confirmed_at(order(HAPPY, 0.5))
    assert moment.utcoffset() == timedelta(hours=-5)


def test_recognised_at_first_fulfilment_or_when_fulfilled():
    # REFUNDED: paid +2h5m, one of two units shipped +6h, the other refunded +8h.
    paid, partly_shipped = order(REFUNDED, 3), order(REFUNDED, 7)
    assert revenue_recognised_at(paid, AT_SHIPMENT) is None
    assert revenue_recognised_at(partly_shipped, AT_SHIPMENT) == at(6)
    assert revenue_recognised_at(partly_shipped, WHEN_FULFILLED) is None
    # HAPPY is shipped whole at +5h.
    assert revenue_recognised_at(order(HAPPY, 6), WHEN_FULFILLED) == at(5)
    assert revenue_recognised_at(order(HAPPY, 6), AT_SHIPMENT) == at(5)


def test_a_failed_shipment_is_no_fulfilment_and_a_fulfilment_left_out_is_dated_by_the_version():
    shipped = order(HAPPY, 6)
    failed = copy.deepcopy(shipped)
    failed["fulfillment_status"] = None
    for fulfilment in failed["fulfillments"]:
        fulfilment["status"] = "failure"
    assert revenue_recognised_at(failed, AT_SHIPMENT) is None
    partial_representation = {k: v for k, v in shipped.items() if k != "fulfillments"}
    assert revenue_recognised_at(partial_representation, WHEN_FULFILLED) == datetime.fromisoformat(
        shipped["updated_at"]
    )


def test_confirmed_when_authorized_or_paid():
    # CANCELLED: created +1h, authorized +1h10m, cancelled +2h (the authorization is voided).
    pending, authorized, voided = order(CANCELLED, 1.05), order(CANCELLED, 1.5), order(CANCELLED, 3)
    when_authorized = Timing(order_confirmed="authorized")
    assert not is_confirmed(pending, when_authorized)
    assert is_confirmed(authorized, when_authorized)
    assert not is_confirmed(authorized, CONFIRMED_WHEN_PAID)
    # A voided authorization does not show money was ever secured (a pending payment is voided too).
    assert voided["financial_status"] == "voided"
    assert not is_confirmed(voided, when_authorized)
    # A refunded order stays paid, so stays confirmed: refunds are events of their own.
    refunded = order(REFUNDED, 11)
    assert is_confirmed(refunded, CONFIRMED_WHEN_PAID)
    assert revenue_recognised_at(refunded) is not None


def test_revenue_is_recognised_only_for_a_confirmed_order():
    shipped_unpaid = order(HAPPY, 6)
    shipped_unpaid["financial_status"] = "pending"
    timing = Timing(order_confirmed="paid", revenue_recognised="first_fulfilment")
    assert revenue_recognised_at(shipped_unpaid, timing) is None
    assert revenue_recognised_at(shipped_unpaid, AT_SHIPMENT) == at(5)  # confirmed when created


def test_activation_follows_confirmation_when_it_says_confirmed():
    pending = order(HAPPY, 0.5)
    assert fulfilment_activated(pending, Timing(fulfilment_activated="confirmed"))
    assert not fulfilment_activated(
        pending, Timing(order_confirmed="paid", fulfilment_activated="confirmed")
    )


def test_the_timing_row_of_an_order_books_what_the_invoice_books():
    timed = order_timing(order(HAPPY, 2))
    assert (timed.order_id, timed.currency) == (HAPPY, "USD")
    assert timed.confirmed_at == at(0) and timed.revenue_recognised_at == at(0)
    assert timed.recognised_minor == 26290 and timed.fulfilment_activated
    not_yet = order_timing(order(HAPPY, 2), AT_SHIPMENT)
    assert not_yet.revenue_recognised_at is None and not_yet.recognised_minor == 0
    assert not order_timing(order(CANCELLED, 3)).fulfilment_activated  # released


def test_an_unreadable_time_is_a_mapping_error_that_the_mapping_quarantines():
    broken = order(HAPPY, 6)
    broken["fulfillments"][0]["created_at"] = "yesterday"
    mapped = erp_invoice(broken, AT_SHIPMENT)
    assert mapped.payload is None
    assert mapped.quarantine.startswith("invalid_input: fulfillments[0]: not an ISO-8601")


# ---- what the mappings write ------------------------------------------------------------------------


def test_the_invoice_is_written_when_revenue_is_recognised_and_dated_that_day():
    assert erp_invoice(order(HAPPY, 2)).payload["invoice_date"] == "2026-11-20"  # default: paid
    assert erp_invoice(order(HAPPY, 2), AT_SHIPMENT) is None  # paid, not shipped
    shipped_next_day = order(HAPPY, 6)
    shipped_next_day["fulfillments"][0]["created_at"] = "2026-11-21T08:30:00-05:00"
    invoice = erp_invoice(shipped_next_day, AT_SHIPMENT)
    assert invoice.external_id == f"INV-{HAPPY}"
    assert invoice.payload["invoice_date"] == "2026-11-21"
    assert invoice.payload["amount"] == "262.90"


def test_a_charge_waits_for_its_invoice_and_an_unpaid_order_is_still_refused():
    paid_unshipped = order(HAPPY, 2)
    assert erp_payment_applied(paid_unshipped, CHARGE, AT_SHIPMENT) is None
    assert erp_payment_applied(paid_unshipped, CHARGE).quarantine is None  # default: invoiced
    # The invoice already at the ERP (delivered under an earlier definition): the charge applies.
    delivered = erp_payment_applied(paid_unshipped, CHARGE, AT_SHIPMENT, invoice_delivered=True)
    assert delivered.quarantine is None and delivered.payload["invoice_eid"] == f"INV-{HAPPY}"
    unpaid = order(HAPPY, 0.5)
    assert erp_payment_applied(unpaid, CHARGE, AT_SHIPMENT).quarantine == "order_not_invoiced"


def test_a_refund_before_shipment_waits_for_the_invoice_under_recognition_at_shipment():
    refunded = order(REFUNDED, 9)  # shipped +6h, refunded +8h
    (refund,) = refunded["refunds"]
    assert erp_credit_note(refund, refunded, 10**9, AT_SHIPMENT) is not None
    never_shipped = copy.deepcopy(refunded)
    never_shipped["fulfillments"], never_shipped["fulfillment_status"] = [], None
    assert erp_credit_note(refund, never_shipped, 10**9, AT_SHIPMENT) is None
    assert (
        erp_credit_note(refund, never_shipped, 10**9) is not None
    )  # default: recognised at payment
    assert (
        erp_credit_note(refund, never_shipped, 10**9, AT_SHIPMENT, invoice_delivered=True)
        is not None
    )


def test_the_sales_order_is_written_once_confirmed_and_then_keeps_following_the_order():
    pending = order(HAPPY, 0.5)
    assert erp_sales_order(pending, KNOWN).payload["status"] == "open"  # default: when created
    assert erp_sales_order(pending, KNOWN, CONFIRMED_WHEN_PAID) is None
    assert erp_sales_order(order(HAPPY, 2), KNOWN, CONFIRMED_WHEN_PAID) is not None
    voided = order(CANCELLED, 3)
    when_authorized = Timing(order_confirmed="authorized")
    assert erp_sales_order(voided, KNOWN, when_authorized) is None
    followed = erp_sales_order(voided, KNOWN, when_authorized, sent_before=True)
    assert followed.payload["status"] == "cancelled"


@pytest.mark.parametrize(
    ("timing", "hours", "expected"),
    [
        (DEFAULT_TIMING, 0.5, None),  # pending: nothing to hold
        (DEFAULT_TIMING, 2, "reserved"),
        (Timing(fulfilment_activated="confirmed"), 0.5, "reserved"),  # confirmed at creation
        (Timing(order_confirmed="paid", fulfilment_activated="confirmed"), 0.5, None),
    ],
)
def test_the_reservation_waits_for_activation(timing, hours, expected):
    mapped = wms_reservation(order(HAPPY, hours), timing)
    assert (None if mapped is None else mapped.payload["status"]) == expected


def test_a_voided_payment_releases_what_activation_at_confirmation_reserved():
    pending_then_voided = order(CANCELLED, 1.05)
    early = Timing(fulfilment_activated="confirmed")
    assert wms_reservation(pending_then_voided, early).payload["status"] == "reserved"
    voided_not_cancelled = order(CANCELLED, 3)
    voided_not_cancelled["cancelled_at"] = None
    assert wms_reservation(voided_not_cancelled, early).payload == {
        "order_id": str(CANCELLED),
        "status": "released",
        "lines": [],
    }
