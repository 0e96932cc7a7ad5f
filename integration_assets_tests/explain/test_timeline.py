"""The pure parts of explain: time order, what each system knew, event lines, the exceptions table."""

from datetime import datetime

from integration_assets.defs.reporting.exceptions import exceptions_markdown
from integration_assets.explain.describe import describe_event, line_skus
from integration_assets.explain.exceptions import write_subject
from integration_assets.explain.timeline import Entry, in_time_order, knowledge


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute)


def test_entries_sort_by_time_then_system_and_undated_ones_last():
    entries = [
        Entry(None, "storefront", "note", "no time"),
        Entry(_at(12), "warehouse", "shipment", "shipped"),
        Entry(_at(12), "storefront", "fulfillment_created", "fulfilled"),
        Entry(_at(11), "payments", "charge", "charged"),
    ]
    assert [e.kind for e in in_time_order(entries)] == [
        "charge",
        "fulfillment_created",  # same minute: the storefront before the warehouse
        "shipment",
        "note",
    ]


def test_knowledge_is_each_systems_newest_stated_state_whatever_the_arrival_order():
    entries = [
        Entry(_at(14), "storefront", "version", "", "raw#2", "paid, partial"),
        Entry(_at(10), "storefront", "version", "", "raw#1", "pending, unfulfilled"),
        Entry(_at(15), "storefront", "order_paid", "no state stated"),
        Entry(_at(13), "warehouse", "shipment", "", "raw/warehouse#3", "shipped WIDGET x2"),
    ]
    known = knowledge(entries)
    assert known == knowledge(list(reversed(entries)))
    assert [(k["system"], k["state"], k["as_of"]) for k in known] == [
        ("storefront", "paid, partial", "2026-11-20T14:00:00Z"),
        ("warehouse", "shipped WIDGET x2", "2026-11-20T13:00:00Z"),
    ]


def test_event_lines_name_skus_and_amounts():
    events = [
        {
            "event_type": "line_item_added",
            "attribute": "lines.11",
            "before": None,
            "after": '{"sku": "WIDGET", "quantity": 3, "price_minor": 10000}',
        },
        {
            "event_type": "line_item_quantity_changed",
            "attribute": "lines.11",
            "before": '{"sku": "WIDGET", "quantity": 3}',
            "after": '{"sku": "WIDGET", "quantity": 2}',
        },
        {
            "event_type": "refund_created",
            "attribute": "refunds.7",
            "before": None,
            "after": '{"amount_minor": 10000, "lines": {"11": 1}}',
        },
    ]
    skus = line_skus(events)
    assert skus == {"11": "WIDGET"}
    lines = [describe_event(e, "USD", skus) for e in events]
    assert lines == [
        "line_item_added WIDGET x3",
        "line_item_quantity_changed WIDGET quantity 3 -> 2",
        "refund_created 100.00 USD (WIDGET x1)",
    ]


def test_a_write_is_about_the_order_or_customer_it_was_built_from():
    assert write_subject(
        "credit_note", "CN-51001000006", "core/order_heads:5100001000@9 (raw#0)/refund:6"
    ) == (
        "order",
        "5100001000",
    )
    assert write_subject("account", "400000002", "core/customers:400000002") == (
        "customer",
        "400000002",
    )
    assert write_subject("credit_limit", "400000009", "operator:ada") == ("customer", "400000009")
    assert write_subject("reservation", "RES-1", "somewhere else") == (None, None)


def test_the_exceptions_table_lists_the_newest_with_their_commands():
    exceptions = [
        {
            "kind": "dead_letter",
            "entity": "customer",
            "entity_id": str(n),
            "detail": f"erp/customer {n}: validation | bad",
            "ref": None,
            "since": f"2026-11-20T1{n}:00:00Z",
            "command": f"integration-assets explain customer {n}",
        }
        for n in range(3)
    ]
    table = exceptions_markdown(exceptions, limit=2)
    assert table.index("explain customer 2`") < table.index("explain customer 1`")
    assert "explain customer 0`" not in table and "1 older exception(s) not shown" in table
    assert "validation \\| bad" in table  # a pipe in the text does not break the table
    assert exceptions_markdown([]) == "No open exceptions."
