"""Edits made to an order after its invoice was delivered, booked the way accounting does: as adjustments.

An issued invoice never changes (the ERP refuses a new amount, as a real ERP does), and neither do the
amounts of its sales order. When the order is edited afterwards (a quantity lowered, a line removed
or added), the difference between what the order is worth now and what has been invoiced so far
becomes a document of its own: a credit note when it is worth less, a supplementary invoice when it
is worth more.

What the order is worth is `erp_mapping.invoiceable_minor`: the total as sold, after edits and before
refunds, the same figure the invoice was issued for. Refunds never lower it; each is a credit note of
its own (`erp_mapping.erp_credit_note`), so an edit and a refund are never both counted.

Numbering: the k-th adjustment of order 5100 is `CN-ADJ-5100-k` or `INV-5100-ADJk`, where k is the
number of the order's adjustments already delivered, plus one. An adjustment not yet delivered keeps
its number, so a newer edit replaces (supersedes) it in the outbox instead of adding a document, and
one that was delivered is counted, so it is never asked for again.

A waiting adjustment (for approval, or for the ERP to come back) that a newer edit makes wrong is
replaced when the new one is of the same kind. When the order is back to what was invoiced, or the
difference changed sign, the waiting one is not withdrawn (the outbox supersedes a record only with
new content for it): an approver can reject it; if it is sent, the next pass books the
counter-adjustment, so the balance at the ERP is right in the end.

What the ERP holds is read back from the outbox: rows with status `sent`, with any operator edit
(override) applied, as that is what was sent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from integration_assets.streams.erp_mapping import (
    APPROVAL_CREDIT_NOTE,
    TARGET,
    invoice_eid,
    invoiceable_minor,
)
from integration_assets.streams.mapped import (
    Mapped,
    MappingInputError,
    decimal_string,
    guarded,
    local_date,
    minor,
    order_currency,
    order_id,
)
from integration_assets.streams.outbox import SENT, apply_override

ADJUSTMENT_REASON = "order edited after invoicing"
# The sales order fields the ERP refuses to change once the order is invoiced.
INVOICED_ORDER_AMOUNT_FIELDS = (
    "lines",
    "currency",
    "shipping",
    "tax_total",
    "discount_total",
    "total",
)
# Payload fields that say *when*, not *what*: a newer order version moves them without changing the
# adjustment, and must not replace one that waits for approval (`_keep_enqueued`).
_DATE_FIELDS = ("credit_date", "invoice_date")

_CREDIT_NOTE_ADJUSTMENT = re.compile(r"CN-ADJ-(?P<order>.+)-(?P<number>[1-9][0-9]*)")
_SUPPLEMENTARY_INVOICE = re.compile(r"INV-(?P<order>.+)-ADJ(?P<number>[1-9][0-9]*)")


def adjustment_credit_note_eid(order_external_id: str, number: int) -> str:
    return f"CN-ADJ-{order_external_id}-{number}"


def supplementary_invoice_eid(order_external_id: str, number: int) -> str:
    return f"{invoice_eid(order_external_id)}-ADJ{number}"


@dataclass(frozen=True)
class AdjustmentId:
    order_external_id: str
    number: int
    entity: str  # "credit_note" or "invoice"


def parse_adjustment_eid(entity: str, external_id: str) -> AdjustmentId | None:
    """Which order and which adjustment an ERP external id names; None for any other document."""
    pattern = {"credit_note": _CREDIT_NOTE_ADJUSTMENT, "invoice": _SUPPLEMENTARY_INVOICE}.get(
        entity
    )
    found = pattern.fullmatch(external_id) if pattern else None
    if found is None:
        return None
    return AdjustmentId(found["order"], int(found["number"]), entity)


@dataclass(frozen=True)
class OutboxRecord:
    """One ops.outbox row of an ERP sales order, invoice or credit note, as a planner reads it."""

    entity: str
    external_id: str
    sequence: int
    status: str
    payload: Mapping[str, Any]
    override: Mapping[str, Any] | None = None

    @property
    def as_sent(self) -> dict[str, Any]:
        return apply_override(self.payload, self.override or {})


@dataclass(frozen=True)
class DeliveredAdjustment:
    external_id: str
    entity: str
    payload: Mapping[str, Any]  # as sent


@dataclass(frozen=True)
class InvoicedOrder:
    """What the ERP holds for one order whose invoice was delivered, and the adjustments in the outbox.

    - `invoice`, `sales_order`: the newest delivered version, as sent (None: no sales order delivered).
    - `adjustments`: every adjustment delivered, by external id.
    - `newest_enqueued`: the newest outbox payload (as enqueued, any status) of each adjustment, so
      an unchanged adjustment is intended with exactly that content again.
    """

    order_external_id: str
    invoice: Mapping[str, Any]
    sales_order: Mapping[str, Any] | None = None
    adjustments: Mapping[str, DeliveredAdjustment] = field(default_factory=dict)
    newest_enqueued: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def invoiced_orders(records: Iterable[OutboxRecord]) -> dict[str, InvoicedOrder]:
    """Group ERP outbox rows by order; only orders whose invoice (INV-<order>) was delivered appear."""
    invoices: dict[str, Mapping[str, Any]] = {}
    sales_orders: dict[str, Mapping[str, Any]] = {}
    delivered: dict[str, dict[str, DeliveredAdjustment]] = {}
    enqueued: dict[str, dict[str, Mapping[str, Any]]] = {}
    # Oldest first, so the newest row of a record is the one that stays.
    for record in sorted(records, key=lambda r: (r.entity, r.external_id, r.sequence)):
        adjustment = parse_adjustment_eid(record.entity, record.external_id)
        if adjustment is not None:
            order = adjustment.order_external_id
            enqueued.setdefault(order, {})[record.external_id] = record.payload
            if record.status == SENT:
                delivered.setdefault(order, {})[record.external_id] = DeliveredAdjustment(
                    record.external_id, record.entity, record.as_sent
                )
        elif record.status != SENT:
            continue
        elif record.entity == "sales_order":
            sales_orders[record.external_id] = record.as_sent
        elif record.entity == "invoice" and record.external_id.startswith("INV-"):
            invoices[record.external_id.removeprefix("INV-")] = record.as_sent
    return {
        order: InvoicedOrder(
            order,
            invoice,
            sales_orders.get(order),
            delivered.get(order, {}),
            enqueued.get(order, {}),
        )
        for order, invoice in invoices.items()
    }


def _amount_minor(payload: Mapping[str, Any], currency: str, where: str) -> int:
    if str(payload.get("currency") or "").upper() != currency:
        raise MappingInputError(
            f"{where}.currency: the order is in {currency} but {where} is in "
            f"{payload.get('currency')!r:.20}"
        )
    return minor(payload.get("amount"), currency, f"{where}.amount")


def adjustment_needed_minor(order_snapshot: Mapping[str, Any], invoiced: InvoicedOrder) -> int:
    """What the order is worth now, minus what was invoiced, minus the adjustments delivered.

    Negative: the order was reduced and a credit note is owed; positive: a supplementary invoice.
    Raises MappingInputError when an amount cannot be read or the currencies differ.
    """
    currency = order_currency(order_snapshot)
    needed = invoiceable_minor(order_snapshot, currency)
    needed -= _amount_minor(invoiced.invoice, currency, "the delivered invoice")
    for adjustment in invoiced.adjustments.values():
        amount = _amount_minor(adjustment.payload, currency, adjustment.external_id)
        needed += amount if adjustment.entity == "credit_note" else -amount
    return needed


def next_adjustment_number(invoiced: InvoicedOrder) -> int:
    """Delivered adjustments + 1; past any number already taken, should the outbox hold a gap."""
    number = len(invoiced.adjustments) + 1
    order = invoiced.order_external_id
    while {
        adjustment_credit_note_eid(order, number),
        supplementary_invoice_eid(order, number),
    } & invoiced.adjustments.keys():
        number += 1
    return number


def _keep_enqueued(payload: dict[str, Any], enqueued: Mapping[str, Any] | None) -> dict[str, Any]:
    """The outbox's content when only the date differs, so a newer order version (a fulfilment, a
    note) neither resends nor re-asks an approver for the same adjustment."""

    def undated(body: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key not in _DATE_FIELDS}

    if enqueued is not None and undated(enqueued) == undated(payload):
        return dict(enqueued)
    return payload


def _adjustment(
    order_snapshot: Mapping[str, Any],
    invoiced: InvoicedOrder,
    entity: str,
    approval_threshold_minor: int,
) -> Mapped | None:
    number = next_adjustment_number(invoiced)
    order = invoiced.order_external_id
    if entity == "credit_note":
        external_id = adjustment_credit_note_eid(order, number)
    else:
        external_id = supplementary_invoice_eid(order, number)

    def build() -> Mapped | None:
        eid = order_id(order_snapshot)
        needed = adjustment_needed_minor(order_snapshot, invoiced)
        if needed == 0 or (needed < 0) != (entity == "credit_note"):
            return None  # nothing owed, or owed the other way (the other document's planner)
        currency = order_currency(order_snapshot)
        amount = abs(needed)
        customer_id = invoiced.invoice.get("customer_eid")
        on = local_date(order_snapshot.get("updated_at"), "updated_at")
        if entity == "credit_note":
            payload = {
                "invoice_eid": invoice_eid(eid),
                "customer_eid": customer_id,
                "credit_date": on,
                "currency": currency,
                "amount": decimal_string(amount, currency),
                "reason": ADJUSTMENT_REASON,
            }
            depends = [(TARGET, "invoice", invoice_eid(eid))]
        else:
            payload = {
                "sales_order_eid": eid,
                "customer_eid": customer_id,
                "invoice_date": on,
                "currency": currency,
                "amount": decimal_string(amount, currency),
            }
            depends = [(TARGET, "sales_order", eid)]
        if customer_id:
            depends.append((TARGET, "customer", str(customer_id)))
        over = entity == "credit_note" and amount > approval_threshold_minor
        return Mapped(
            TARGET,
            entity,
            external_id,
            _keep_enqueued(payload, invoiced.newest_enqueued.get(external_id)),
            quarantine=None if customer_id else "no_customer",
            depends_on=tuple(depends),
            approval_rule=APPROVAL_CREDIT_NOTE if over else None,
            details=(
                {
                    "amount": decimal_string(amount, currency),
                    "threshold": decimal_string(approval_threshold_minor, currency),
                    "reason": ADJUSTMENT_REASON,
                }
                if over
                else {}
            ),
        )

    return guarded(TARGET, entity, external_id, build)


def erp_adjustment_credit_note(
    order_snapshot: Mapping[str, Any], invoiced: InvoicedOrder, approval_threshold_minor: int
) -> Mapped | None:
    """The credit note owed for an invoiced order edited down (CN-ADJ-<order>-<k>), None if none is.

    Against the order's invoice, reason "order edited after invoicing"; above
    `approval_threshold_minor` a person approves it first, like a refund's credit note.
    """
    return _adjustment(order_snapshot, invoiced, "credit_note", approval_threshold_minor)


def erp_supplementary_invoice(
    order_snapshot: Mapping[str, Any], invoiced: InvoicedOrder
) -> Mapped | None:
    """The supplementary invoice owed for an invoiced order edited up (INV-<order>-ADJ<k>), or None."""
    return _adjustment(order_snapshot, invoiced, "invoice", 0)


def issued_invoice(invoiced: InvoicedOrder) -> Mapped:
    """The invoice exactly as delivered: an issued invoice is not rewritten, so the outbox sees no change."""
    order = invoiced.order_external_id
    customer_id = invoiced.invoice.get("customer_eid")
    depends = [(TARGET, "sales_order", order)]
    if customer_id:
        depends.append((TARGET, "customer", str(customer_id)))
    return Mapped(
        TARGET, "invoice", invoice_eid(order), dict(invoiced.invoice), depends_on=tuple(depends)
    )


def invoiced_sales_order(current: Mapped | None, delivered: Mapping[str, Any]) -> Mapped | None:
    """The sales order of an invoiced order: its amounts as delivered, the rest (status) as it is now.

    Lines and amounts are what the invoice was issued for; later edits are adjustments. A status
    change (closed, cancelled) still reaches the ERP, which accepts it. A mapping that could not be
    read, or that is held back for its customer, stays as it was; "no lines" no longer applies, since
    the lines are the delivered ones.
    """
    if current is None or current.payload is None:
        return current
    if current.quarantine not in (None, "no_lines"):
        return current
    payload = {
        key: value
        for key, value in current.payload.items()
        if key not in INVOICED_ORDER_AMOUNT_FIELDS
    }
    payload.update(
        {key: delivered[key] for key in INVOICED_ORDER_AMOUNT_FIELDS if key in delivered}
    )
    return dataclasses.replace(current, payload=payload, quarantine=None)
