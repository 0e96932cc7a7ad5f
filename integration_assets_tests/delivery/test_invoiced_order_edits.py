"""An order edited after its invoice reached the ERP: booked as adjustments, never a refused update.

Over HTTP against the sandbox ERP, which refuses (409) a changed invoice amount or changed lines on
an invoiced sales order, as a real ERP does.
"""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from integration_assets.storage import outbox as store
from integration_assets_tests.delivery.conftest import Stack, delivery_scenario, open_stack

ORDER = 5100900000  # pinned, so the test names its documents
CUSTOMER = "300000002"
# The delivery fixture has already moved the clock 12 hours on: every edit below comes after the
# first delivery, so after the invoice was issued.
EDITED_AFTER_INVOICE = {
    "name": "edited_after_invoice",
    "id": ORDER,
    "customer": int(CUSTOMER),
    "events": [
        {
            "at": "+1h",
            "type": "created",
            "lines": [
                {"sku": "IPOD2008RED", "quantity": 2},
                {"sku": "CASE-SLIM", "quantity": 1},
            ],
        },
        {"at": "+1h5m", "type": "paid"},
        {"at": "+13h", "type": "quantity_changed", "sku": "IPOD2008RED", "quantity": 1},
        {"at": "+15h", "type": "line_added", "sku": "IPOD2008GREEN", "quantity": 1},
    ],
}


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    raw = yaml.safe_load(delivery_scenario(tmp_path).read_text())
    raw["stories"].append(EDITED_AFTER_INVOICE)
    path = Path(tmp_path) / "edited_after_invoice.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with open_stack(tmp_path, path) as stack:
        yield stack


def poll_and_deliver(stack: Stack, hours: int) -> None:
    stack.systems.clock.advance(timedelta(hours=hours))
    polled = stack.run("orders", "payments", "finance", "customers")
    assert polled.success
    stack.deliver()


def erp_record(stack: Stack, record_type: str, external_id: str) -> dict | None:
    stored = stack.systems.erp.app.store.get(record_type, external_id)
    return None if stored is None else stored.record


def refused(stack: Stack) -> list[tuple[str, str | None]]:
    """Open dead letters other than the customer whose email the ERP and CRM refuse by design."""
    with stack.warehouse.connect() as con:
        rows = store.list_rows(con, status="dead", open_only=True)
    return [
        (row["idempotency_key"], row["target_message"])
        for row in rows
        if row["external_id"] != "300000004"
    ]


def outbox_rows(stack: Stack) -> int:
    with stack.warehouse.connect() as con:
        return con.execute("SELECT count(*) FROM ops.outbox").fetchone()[0]


def test_edits_after_invoicing_become_adjustment_documents_and_are_written_once(stack):
    stack.deliver()
    invoice = erp_record(stack, "invoice", f"INV-{ORDER}")
    assert invoice["amount"] == "451.33"  # 2 x 199.00 + 19.90, 8% tax

    # Two hours on, one red iPod fewer: 199.00 + 8% tax is owed back.
    poll_and_deliver(stack, hours=2)
    assert refused(stack) == []
    assert "409" not in stack.systems.erp.stats()["api_by_status"]
    assert erp_record(stack, "credit_note", f"CN-ADJ-{ORDER}-1") == {
        "invoice_eid": f"INV-{ORDER}",
        "customer_eid": CUSTOMER,
        "credit_date": "2026-11-20",
        "currency": "USD",
        "amount": "214.92",
        "reason": "order edited after invoicing",
    }
    # The invoice and the sales order stay as issued.
    assert erp_record(stack, "invoice", f"INV-{ORDER}") == invoice
    lines = erp_record(stack, "sales_order", str(ORDER))["lines"]
    assert [(line["sku"], line["quantity"]) for line in lines] == [
        ("IPOD2008RED", 2),
        ("CASE-SLIM", 1),
    ]
    adjustments = [
        document["external_id"]
        for kind in ("invoice", "credit_note")
        for document in stack.systems.erp.app.documents(kind)
        if "ADJ" in document["external_id"]
    ]
    assert adjustments == [f"CN-ADJ-{ORDER}-1"]

    # Delivering again writes nothing: no new outbox row, no create or update at the ERP.
    writes, rows = dict(stack.systems.erp.stats()["writes"]), outbox_rows(stack)
    stack.deliver()
    after = stack.systems.erp.stats()["writes"]
    assert (after["creates"], after["updates"]) == (writes["creates"], writes["updates"])
    assert outbox_rows(stack) == rows

    # Then a green iPod is added: worth 214.92 more than after the first adjustment.
    poll_and_deliver(stack, hours=2)
    assert refused(stack) == []
    assert erp_record(stack, "invoice", f"INV-{ORDER}-ADJ2") == {
        "sales_order_eid": str(ORDER),
        "customer_eid": CUSTOMER,
        "invoice_date": "2026-11-21",
        "currency": "USD",
        "amount": "214.92",
    }
    assert erp_record(stack, "invoice", f"INV-{ORDER}") == invoice
    with stack.warehouse.connect() as con:
        rows = sorted(
            (row["entity"], row["external_id"], row["status"])
            for row in store.list_rows(con, target="erp")
            if str(ORDER) in row["external_id"]
        )
    # One row per document, each delivered: nothing refused, superseded or written twice.
    assert rows == [
        ("credit_note", f"CN-ADJ-{ORDER}-1", "sent"),
        ("invoice", f"INV-{ORDER}", "sent"),
        ("invoice", f"INV-{ORDER}-ADJ2", "sent"),
        ("sales_order", str(ORDER), "sent"),
    ]
