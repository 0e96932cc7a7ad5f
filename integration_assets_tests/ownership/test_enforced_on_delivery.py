"""Ownership enforced in the delivery asset: a write carrying a value its owner's system did not
supply is refused before the outbox, kept in ops.mapping_quarantine, and never reaches the target."""

import dataclasses

from integration_assets.streams import erp_mapping
from integration_assets_tests.delivery.conftest import delivery_scenario, open_stack

WHOLESALE = "300000006"  # Lena Fischer, Acme Retail Ltd (see the delivery scenario)
WRONG_PHONE = "+1 303 555 0142"  # e.g. read from a warehouse delivery note, not from the CRM


def test_a_mapping_taking_phone_from_the_wrong_system_is_refused_and_nothing_reaches_the_erp(
    tmp_path, monkeypatch
):
    real = erp_mapping.erp_customer

    def phone_from_elsewhere(golden):
        mapped = real(golden)
        if str(golden["customer_id"]) != WHOLESALE:
            return mapped
        return dataclasses.replace(mapped, payload={**mapped.payload, "phone": WRONG_PHONE})

    monkeypatch.setattr(erp_mapping, "erp_customer", phone_from_elsewhere)
    with open_stack(tmp_path, delivery_scenario(tmp_path)) as stack:
        result = stack.deliver()
        assert result.success
        with stack.warehouse.connect() as con:
            (reason,) = con.execute(
                "SELECT reason FROM ops.mapping_quarantine "
                "WHERE target = 'erp' AND entity = 'customer' AND external_id = ?",
                [WHOLESALE],
            ).fetchone()
            in_outbox = con.execute(
                "SELECT count(*) FROM ops.outbox WHERE target = 'erp' AND entity = 'customer' "
                "AND external_id = ?",
                [WHOLESALE],
            ).fetchone()[0]
            held_orders = con.execute(
                "SELECT reason FROM ops.mapping_quarantine "
                "WHERE target = 'erp' AND entity = 'sales_order'"
            ).fetchall()
        assert reason.startswith(
            f"ownership: erp/customer {WHOLESALE}: phone carries customer.phone"
        )
        assert "system of record is crm (then storefront, erp)" in reason
        assert "Customer Service (customer-service@example.com)" in reason
        assert "Correct it in crm" in reason
        assert in_outbox == 0  # never enqueued
        erp_customers = {doc["external_id"] for doc in stack.systems.erp.app.documents("customer")}
        assert WHOLESALE not in erp_customers
        assert len(erp_customers) >= 1  # the other customers went through
        # her order waits for her customer, naming why, instead of being refused by the ERP
        assert any(
            r.startswith(f"parent_not_built: erp/customer/{WHOLESALE} (ownership: ")
            for (r,) in held_orders
        )
        # the materialization says how many writes ownership refused
        (materialization,) = [
            event.event_specific_data.materialization
            for event in result.get_asset_materialization_events()
            if event.asset_key.to_user_string() == "delivery/erp/customers"
        ]
        assert materialization.metadata["ownership_refused"].value == 1
