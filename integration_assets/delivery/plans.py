"""What each delivery maps from: read the core tables, call the pure mappings, collect a PlanResult.

Reads happen in one short warehouse session (the file opened once for all of a planner's reads);
lookups against a target (the CRM's users and picklists) happen after it is closed, so no warehouse
lock is held while waiting on a network.

The order planners apply the timing definitions (contracts/timing.yaml), read at plan time so a
changed definition applies from the next run: sales orders once confirmed, invoices once revenue is
recognised, reservations once fulfilment is activated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from integration_assets.contracts.timing import load_timing
from integration_assets.delivery.order_scope import OrderScope, inputs_version, plan_scope
from integration_assets.delivery.planning import PlanResult, PlanSources, plan_from_mapped
from integration_assets.storage.order_payloads import iter_current_orders, orders_condition
from integration_assets.storage.warehouse import Warehouse, table_exists
from integration_assets.streams import crm_mapping, erp_adjustments, erp_mapping, wms_mapping
from integration_assets.streams.customers import GOLDEN_COLUMNS
from integration_assets.streams.timing import Timing

# Credit notes above this (in minor units of the order's currency) wait for a person.
CREDIT_NOTE_APPROVAL_THRESHOLD_MINOR = 50_000


def golden_customers(warehouse: Warehouse) -> list[dict[str, Any]]:
    with warehouse.connect() as con:
        if not table_exists(con, "core.customers"):
            return []
        rows = con.execute(
            f"SELECT {', '.join(GOLDEN_COLUMNS)} FROM core.customers ORDER BY customer_id"
        ).fetchall()
    return [dict(zip(GOLDEN_COLUMNS, row, strict=True)) for row in rows]


def known_customer_ids(warehouse: Warehouse) -> set[str]:
    """The golden customers' ids, as the storefront's order payloads name them (strings)."""
    with warehouse.connect() as con:
        if not table_exists(con, "core.customers"):
            return set()
        return {
            str(row[0]) for row in con.execute("SELECT customer_id FROM core.customers").fetchall()
        }


def applied_timing() -> Timing:
    """The timing definitions in force now (the packaged file, or the override directory's)."""
    return load_timing().timing


def order_scope(
    sources: PlanSources, target: str, entity: str, timing: Timing, *settings: object
) -> OrderScope:
    """The orders this plan maps (delivery/order_scope.py): charges are an input of payments applied."""
    with sources.warehouse.connect() as con:
        return plan_scope(
            con,
            target,
            entity,
            inputs_version(timing, *settings),
            replan_all=sources.replan_all,
            with_charges=entity == "payment_applied",
        )


def enqueued_external_ids(
    sources: PlanSources, target: str, entity: str, scope: OrderScope
) -> set[str]:
    """Every external id the outbox ever held for (target, entity) and the scope's orders, whatever
    became of it."""
    condition, params = orders_condition(scope.order_ids)
    with sources.warehouse.connect() as con:
        return {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT external_id FROM ops.outbox "
                f"WHERE target = $target AND entity = $entity AND {condition}",
                {"target": target, "entity": entity, **params},
            ).fetchall()
        }


def order_snapshots(
    sources: PlanSources, scope: OrderScope
) -> Iterator[tuple[dict[str, Any], str]]:
    """The current version of each order in scope as the storefront sent it, with a reference to
    that version; each is noted in `scope.mapped`.

    Streamed (read when iterated, a chunk of documents at a time): a planner maps each order as it
    comes and keeps only its write intents. The planners iterate inside their `Warehouse.session()`,
    so this shares the database they already opened.
    """
    with sources.warehouse.connect() as con:
        for order in iter_current_orders(con, sources.raw_log, order_ids=scope.order_ids):
            scope.mapped[order.order_id] = order.sequence
            yield order.payload, f"{order.ref} ({order.raw_ref})"


def plan_crm_accounts(sources: PlanSources, crm: Any = None) -> PlanResult:
    customers = golden_customers(sources.warehouse)
    picklists = {
        field: crm.picklist_values("Account", field)
        for field in ("Industry", "Customer_Segment__c")
    }
    record_types = crm.record_type_ids("Account")
    owners_by_email = {
        email: crm.users_by_email(email)
        for email in sorted(
            {c["account_manager_email"] for c in customers if c["account_manager_email"]}
        )
    }
    return plan_from_mapped(
        "crm",
        "account",
        (
            (
                crm_mapping.crm_account(
                    customer,
                    owners_by_email,
                    crm.default_owner_id,
                    picklists,
                    record_types.get("Person Account", ""),
                    record_types.get("Business Account", ""),
                ),
                f"core/customers:{customer['customer_id']}",
            )
            for customer in customers
        ),
    )


def plan_crm_contacts(sources: PlanSources, crm: Any = None) -> PlanResult:
    customers = golden_customers(sources.warehouse)
    owners_by_email = {
        email: crm.users_by_email(email)
        for email in sorted(
            {
                c["account_manager_email"]
                for c in customers
                if c["account_manager_email"] and c["is_company"]
            }
        )
    }
    return plan_from_mapped(
        "crm",
        "contact",
        (
            (
                crm_mapping.crm_contact(customer, owners_by_email, crm.default_owner_id),
                f"core/customers:{customer['customer_id']}",
            )
            for customer in customers
        ),
    )


def plan_erp_customers(sources: PlanSources, erp: Any = None) -> PlanResult:
    return plan_from_mapped(
        "erp",
        "customer",
        (
            (erp_mapping.erp_customer(c), f"core/customers:{c['customer_id']}")
            for c in golden_customers(sources.warehouse)
        ),
    )


def plan_erp_credit_limits(sources: PlanSources, erp: Any = None) -> PlanResult:
    """Credit limit changes are requested by people (`integration-assets credit-limit request`), not mapped."""
    return PlanResult("erp", "credit_limit")


def invoiced_orders(
    sources: PlanSources, scope: OrderScope
) -> dict[str, erp_adjustments.InvoicedOrder]:
    """The scope's orders whose invoice the ERP holds, with what was delivered for them, read from
    ops.outbox.

    Only delivered rows and adjustments are read: the rest of the outbox does not change what an
    invoiced order's documents are.
    """
    condition, params = orders_condition(scope.order_ids)
    with sources.warehouse.connect() as con:
        rows = con.execute(
            "SELECT entity, external_id, sequence, status, payload, override FROM ops.outbox "
            "WHERE target = 'erp' AND entity IN ('sales_order', 'invoice', 'credit_note') "
            "AND (status = 'sent' OR starts_with(external_id, 'CN-ADJ-') "
            f"OR (entity = 'invoice' AND contains(external_id, '-ADJ'))) AND {condition}",
            params,
        ).fetchall()
    return erp_adjustments.invoiced_orders(
        erp_adjustments.OutboxRecord(
            entity,
            external_id,
            int(sequence),
            status,
            orjson.loads(payload),
            None if override is None else orjson.loads(override),
        )
        for entity, external_id, sequence, status, payload, override in rows
    )


def _order_key(snapshot: dict[str, Any]) -> str:
    return str(snapshot.get("id")).strip()


def plan_erp_sales_orders(sources: PlanSources, erp: Any = None) -> PlanResult:
    """Sales orders as sold, once the order is confirmed (or already sent: it keeps following the
    order); once invoiced, their lines and amounts stay as delivered (the ERP refuses to change
    them, and later edits are booked as adjustments)."""
    with sources.warehouse.session():
        timing = applied_timing()
        scope = order_scope(sources, "erp", "sales_order", timing)
        known = known_customer_ids(sources.warehouse)
        invoiced = invoiced_orders(sources, scope)
        sent_before = enqueued_external_ids(sources, "erp", "sales_order", scope)
        snapshots = order_snapshots(sources, scope)

        def sales_orders():
            for snapshot, ref in snapshots:
                mapped = erp_mapping.erp_sales_order(
                    snapshot, known, timing, sent_before=_order_key(snapshot) in sent_before
                )
                delivered = invoiced.get(_order_key(snapshot))
                if delivered is not None and delivered.sales_order is not None:
                    mapped = erp_adjustments.invoiced_sales_order(mapped, delivered.sales_order)
                yield mapped, ref

        return plan_from_mapped("erp", "sales_order", sales_orders(), scope)


def plan_erp_invoices(sources: PlanSources, erp: Any = None) -> PlanResult:
    """One invoice per order whose revenue is recognised, never rewritten once delivered; an order
    edited up after that gets a supplementary invoice for the difference."""
    with sources.warehouse.session():
        timing = applied_timing()
        scope = order_scope(sources, "erp", "invoice", timing)
        invoiced = invoiced_orders(sources, scope)
        snapshots = order_snapshots(sources, scope)

        def invoices():
            for snapshot, ref in snapshots:
                delivered = invoiced.get(_order_key(snapshot))
                if delivered is None:
                    yield erp_mapping.erp_invoice(snapshot, timing), ref
                    continue
                yield erp_adjustments.issued_invoice(delivered), ref
                supplementary = erp_adjustments.erp_supplementary_invoice(snapshot, delivered)
                if supplementary is not None:
                    yield supplementary, f"{ref}/adjustment"

        return plan_from_mapped("erp", "invoice", invoices(), scope)


def plan_erp_credit_notes(sources: PlanSources, erp: Any = None) -> PlanResult:
    """A credit note per refund that moved money (once the order has an invoice), and one per
    invoiced order edited down."""
    with sources.warehouse.session():
        timing = applied_timing()
        scope = order_scope(
            sources, "erp", "credit_note", timing, CREDIT_NOTE_APPROVAL_THRESHOLD_MINOR
        )
        invoiced = invoiced_orders(sources, scope)
        snapshots = order_snapshots(sources, scope)

        def credit_notes():
            for snapshot, ref in snapshots:
                delivered = invoiced.get(_order_key(snapshot))
                for refund in snapshot.get("refunds") or []:
                    yield (
                        erp_mapping.erp_credit_note(
                            refund,
                            snapshot,
                            CREDIT_NOTE_APPROVAL_THRESHOLD_MINOR,
                            timing,
                            invoice_delivered=delivered is not None,
                        ),
                        f"{ref}/refund:{refund.get('id')}",
                    )
                if delivered is not None:
                    adjustment = erp_adjustments.erp_adjustment_credit_note(
                        snapshot, delivered, CREDIT_NOTE_APPROVAL_THRESHOLD_MINOR
                    )
                    if adjustment is not None:
                        yield adjustment, f"{ref}/adjustment"

        return plan_from_mapped("erp", "credit_note", credit_notes(), scope)


def succeeded_charges(warehouse: Warehouse, scope: OrderScope) -> dict[int, list[dict[str, Any]]]:
    """The newest version of every succeeded charge of the scope's orders, by storefront order id."""
    condition, params = orders_condition(scope.order_ids)
    with warehouse.connect() as con:
        rows = con.execute(
            f"""
            SELECT order_id, object_id, amount_minor, currency, created, payload FROM (
                SELECT *, row_number() OVER (PARTITION BY object_id ORDER BY staged_at DESC, batch_id DESC) AS newest
                FROM staging.payments_objects
                WHERE resource = 'charges' AND order_id IS NOT NULL AND {condition})
            WHERE newest = 1 AND status = 'succeeded' ORDER BY order_id, created
            """,
            params,
        ).fetchall()
    charges: dict[int, list[dict[str, Any]]] = {}
    for order_id, object_id, amount_minor, currency, created, payload in rows:
        details = orjson.loads(payload).get("payment_method_details") or {}
        charges.setdefault(int(order_id), []).append(
            {
                "id": object_id,
                "amount_minor": int(amount_minor),
                "currency": currency,
                "created": int(created.timestamp()) if hasattr(created, "timestamp") else created,
                "payment_method": details.get("type") or "card",
            }
        )
    return charges


def plan_erp_payments_applied(sources: PlanSources, erp: Any = None) -> PlanResult:
    """Each succeeded charge applied to its order's invoice, once the order has one."""
    with sources.warehouse.session():
        timing = applied_timing()
        scope = order_scope(sources, "erp", "payment_applied", timing)
        charges = succeeded_charges(sources.warehouse, scope)
        invoiced = invoiced_orders(sources, scope)
        snapshots = order_snapshots(sources, scope)

        def applied():
            for snapshot, ref in snapshots:
                delivered = _order_key(snapshot) in invoiced
                for charge in charges.get(int(snapshot.get("id") or 0), []):
                    yield (
                        erp_mapping.erp_payment_applied(
                            snapshot, charge, timing, invoice_delivered=delivered
                        ),
                        f"{ref}/charge:{charge['id']}",
                    )

        return plan_from_mapped("erp", "payment_applied", applied(), scope)


def plan_wms_reservations(sources: PlanSources, wms: Any = None) -> PlanResult:
    """Reserve stock once an order's fulfilment is activated; release (or adjust) on cancellation,
    refund or edit.

    A release for an order that never had a reservation is not sent: there is nothing to release.
    """
    with sources.warehouse.session():
        timing = applied_timing()
        scope = order_scope(sources, "wms", "reservation", timing)
        reserved_before = enqueued_external_ids(sources, "wms", "reservation", scope)
        snapshots = order_snapshots(sources, scope)

        def reservations():
            for snapshot, ref in snapshots:
                mapped = wms_mapping.wms_reservation(snapshot, timing)
                if (
                    mapped is not None
                    and mapped.payload is not None
                    and mapped.payload.get("status") == "released"
                    and mapped.external_id not in reserved_before
                ):
                    mapped = None
                yield (mapped, ref)

        return plan_from_mapped("wms", "reservation", reservations(), scope)
