"""Golden customers and Shopify orders -> ERP record writes (customer, credit limit, sales order,
invoice, credit note, payment applied), in the ERP's record shapes, money as decimal strings.

Why the sales order keeps what was *sold* (after edits, before refunds) rather than what is left:
the ERP refuses to change the lines or amounts of an invoiced sales order, and accounting wants a
refund as a credit note against the invoice, not as a rewritten sale. So a refund never touches the
sales order or the invoice; it becomes a credit note of its own.

When each document is written follows the timing definitions (contracts/timing.yaml, applied by
streams/timing.py): the sales order once the order is confirmed, the invoice once its revenue is
recognised (dated that day), payments applied and refund credit notes once there is an invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from integration_assets.streams.mapped import (
    Mapped,
    MappingInputError,
    count,
    decimal_string,
    guarded,
    line_items,
    local_date,
    minor,
    order_currency,
    order_customer_id,
    order_id,
    refunded_units_by_line,
)
from integration_assets.streams.money import is_currency_code
from integration_assets.streams.timing import (
    DEFAULT_TIMING,
    PAID,
    Timing,
    is_confirmed,
    is_paid,
    revenue_recognised_at,
)

TARGET = "erp"
NAME_MAX_LENGTH = 80
POSTAL_CODE_REQUIRED = ("US", "CA")
ORDER_ACCOUNT_LOOKUP = "order_account"
APPROVAL_CREDIT_LIMIT = "credit_limit_change"
APPROVAL_CREDIT_NOTE = "credit_note_over_threshold"


def invoice_eid(order_external_id: str) -> str:
    return f"INV-{order_external_id}"


def credit_note_eid(refund_id: str) -> str:
    return f"CN-{refund_id}"


def _looks_like_email(value: str) -> bool:
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and " " not in value


def erp_customer(golden: Mapping[str, Any]) -> Mapped:
    """The ERP customer upsert for a golden customer row (name, email, phone, is_company, billing address).

    Credit limit and payment terms are the ERP's own and are left out: they change only through
    `erp_credit_limit`, which a person approves. A record the ERP would refuse (no name, no valid
    email, an address without country, a US/CA address without postal code) is quarantined with the
    reason, so the operator sees why instead of a 400 from the ERP.
    """
    customer_id = str(golden.get("customer_id"))

    def build() -> Mapped:
        is_company = bool(golden.get("is_company"))
        if is_company:
            name = golden.get("company")
        else:
            name = " ".join(
                part for part in (golden.get("first_name"), golden.get("last_name")) if part
            )
        address = {
            "line1": golden.get("address_line1"),
            "line2": golden.get("address_line2"),
            "city": golden.get("city"),
            "region": golden.get("region"),
            "postal_code": golden.get("postal_code"),
            "country": golden.get("country"),
        }
        email = golden.get("email")
        problems = []
        if not name:
            problems.append("name_missing")
        elif len(name) > NAME_MAX_LENGTH:
            problems.append("name_too_long")
        if not email:
            problems.append("email_missing")
        elif not _looks_like_email(email):
            problems.append("email_invalid")
        has_address = any(address.values())
        if has_address and not address["country"]:
            problems.append("address_country_missing")
        if address["country"] in POSTAL_CODE_REQUIRED and not address["postal_code"]:
            problems.append("postal_code_missing")
        payload: dict[str, Any] = {"name": name, "email": email, "is_company": is_company}
        if golden.get("phone"):
            payload["phone"] = golden["phone"]
        if has_address:
            payload["billing_address"] = {k: v for k, v in address.items() if v is not None}
        return Mapped(
            TARGET,
            "customer",
            customer_id,
            payload,
            quarantine=problems[0] if problems else None,
            details={"problems": problems} if len(problems) > 1 else {},
        )

    return guarded(TARGET, "customer", customer_id, build)


def erp_credit_limit(
    golden_or_request: Mapping[str, Any], previous_minor: int | None
) -> Mapped | None:
    """A credit limit change for the ERP customer: a body with only credit_limit and currency.

    `golden_or_request` holds customer_id, credit_limit_minor and currency (optionally requested_by and
    reason); `previous_minor` is the limit the ERP holds now (same currency), None if it has none.
    Always waits for a person's approval: a credit limit is money the business may never see again.
    None when the limit would not change.
    """
    customer_id = str(golden_or_request.get("customer_id"))
    requested = golden_or_request.get("credit_limit_minor")
    if requested is None or requested == previous_minor:
        return None

    def build() -> Mapped:
        currency = golden_or_request.get("currency")
        if not is_currency_code(currency):
            raise MappingInputError(f"currency: not an ISO-4217 code: {currency!r:.20}")
        limit = count(requested, "credit_limit_minor")
        details = {
            "currency": currency,
            "requested": decimal_string(limit, currency),
            "previous": None
            if previous_minor is None
            else decimal_string(previous_minor, currency),
        }
        for key in ("requested_by", "reason"):
            if golden_or_request.get(key):
                details[key] = str(golden_or_request[key])
        return Mapped(
            TARGET,
            "credit_limit",
            customer_id,
            {"credit_limit": decimal_string(limit, currency), "currency": currency},
            depends_on=((TARGET, "customer", customer_id),),
            approval_rule=APPROVAL_CREDIT_LIMIT,
            details=details,
        )

    return guarded(TARGET, "credit_limit", customer_id, build)


def _sold_lines(order: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    """Lines as sold: after edits (current_quantity), with refunded units added back; without
    current_quantity (older payloads) the ordered quantity. Lines sold at zero units are left out."""
    refunded = refunded_units_by_line(order)
    lines = []
    for index, line in enumerate(line_items(order)):
        where = f"line_items[{index}]"
        if "current_quantity" in line:
            quantity = count(line["current_quantity"], f"{where}.current_quantity")
            quantity += refunded[str(line.get("id"))]
        else:
            quantity = count(line.get("quantity"), f"{where}.quantity")
        if quantity == 0:
            continue
        sku = line.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise MappingInputError(f"{where}.sku: a sold line without a SKU cannot be booked")
        tax = sum(
            minor(tax_line.get("price"), currency, f"{where}.tax_lines.price")
            for tax_line in line.get("tax_lines") or []
        )
        lines.append(
            {
                "sku": sku.strip(),
                "quantity": quantity,
                "unit_price": decimal_string(
                    minor(line.get("price"), currency, f"{where}.price"), currency
                ),
                "tax": decimal_string(tax, currency),
            }
        )
    return lines


def _shipping_minor(order: Mapping[str, Any], currency: str) -> int:
    shop_money = ((order.get("total_shipping_price_set") or {}).get("shop_money")) or {}
    if shop_money.get("amount") is not None:
        return minor(shop_money["amount"], currency, "total_shipping_price_set")
    return sum(
        minor(line.get("price"), currency, f"shipping_lines[{index}].price")
        for index, line in enumerate(order.get("shipping_lines") or [])
    )


def _order_number(order: Mapping[str, Any]) -> str:
    number = order.get("order_number")
    if number is None:
        number = order.get("name")
    if number is None:
        raise MappingInputError("order_number and name both missing")
    return str(number)


def _order_status(order: Mapping[str, Any]) -> str:
    if order.get("cancelled_at"):
        return "cancelled"
    return "closed" if order.get("closed_at") else "open"


def erp_sales_order(
    order_snapshot: Mapping[str, Any],
    known_customer_ids: Collection[str],
    timing: Timing = DEFAULT_TIMING,
    sent_before: bool = False,
) -> Mapped | None:
    """The ERP sales order (external id = order id) of a Shopify order snapshot, once the order is
    confirmed (`timing.order_confirmed`); None before. A sales order already sent (`sent_before`)
    keeps following the order (a cancellation, a close) whatever the definition says now.

    The order's customer must be a golden customer (`known_customer_ids`, as strings): otherwise the
    lookup `order_account` is counted missing and the write is quarantined `unknown_customer` (a guest
    order: `no_customer`), since the ERP would refuse a sales order for a customer it does not have.
    """
    external_id = str(order_snapshot.get("id"))

    def build() -> Mapped | None:
        if not sent_before and not is_confirmed(order_snapshot, timing):
            return None
        eid = order_id(order_snapshot)
        currency = order_currency(order_snapshot)
        customer_id = order_customer_id(order_snapshot)
        status = _order_status(order_snapshot)
        lines = _sold_lines(order_snapshot, currency)
        quarantine = None
        if customer_id is None:
            quarantine = "no_customer"
        elif customer_id not in known_customer_ids:
            quarantine = "unknown_customer"
        elif not lines and status != "cancelled":
            quarantine = "no_lines"
        payload = {
            "customer_eid": customer_id,
            "order_number": _order_number(order_snapshot),
            "order_date": local_date(order_snapshot.get("created_at"), "created_at"),
            "currency": currency,
            "status": status,
            "lines": lines,
            "shipping": decimal_string(_shipping_minor(order_snapshot, currency), currency),
            "tax_total": decimal_string(
                minor(order_snapshot.get("total_tax") or "0", currency, "total_tax"), currency
            ),
            "discount_total": decimal_string(
                minor(order_snapshot.get("total_discounts") or "0", currency, "total_discounts"),
                currency,
            ),
            "total": decimal_string(
                minor(order_snapshot.get("total_price"), currency, "total_price"), currency
            ),
        }
        found = customer_id is not None and customer_id in known_customer_ids
        return Mapped(
            TARGET,
            "sales_order",
            eid,
            payload,
            quarantine=quarantine,
            lookups=((ORDER_ACCOUNT_LOOKUP, "found" if found else "missing"),),
            depends_on=((TARGET, "customer", customer_id),) if customer_id else (),
            details={"customer_id": customer_id} if not found else {},
        )

    return guarded(TARGET, "sales_order", external_id, build)


def invoiceable_minor(order: Mapping[str, Any], currency: str) -> int:
    """What the order is worth to invoice, in minor units: its total as sold.

    Shopify's `total_price` follows edits (a quantity changed, a line removed or added) but not
    refunds, which leave the sale as it was and become credit notes of their own. So the invoice,
    and any adjustment after it (`erp_adjustments`), count each edit once and leave every refund to
    its credit note.
    """
    return minor(order.get("total_price"), currency, "total_price")


def erp_invoice(
    order_snapshot: Mapping[str, Any], timing: Timing = DEFAULT_TIMING
) -> Mapped | None:
    """The invoice (INV-<order id>) of an order whose revenue is recognised
    (`timing.revenue_recognised`, by default once money is taken), for the amount sold and dated the
    day of recognition; None until then.

    Invoiced once and never changed (the ERP refuses a changed amount): refunds become credit notes,
    and edits made after the invoice was delivered become adjustments (`erp_adjustments`).
    """
    external_id = invoice_eid(str(order_snapshot.get("id")))

    def build() -> Mapped | None:
        recognised_at = revenue_recognised_at(order_snapshot, timing)
        if recognised_at is None:
            return None
        eid = order_id(order_snapshot)
        currency = order_currency(order_snapshot)
        customer_id = order_customer_id(order_snapshot)
        amount = invoiceable_minor(order_snapshot, currency)
        quarantine = None
        if customer_id is None:
            quarantine = "no_customer"
        elif amount <= 0:
            quarantine = "amount_not_positive"
        depends = [(TARGET, "sales_order", eid)]
        if customer_id:
            depends.append((TARGET, "customer", customer_id))
        return Mapped(
            TARGET,
            "invoice",
            invoice_eid(eid),
            {
                "sales_order_eid": eid,
                "customer_eid": customer_id,
                "invoice_date": local_date(recognised_at, "revenue recognised at"),
                "currency": currency,
                "amount": decimal_string(amount, currency),
            },
            quarantine=quarantine,
            depends_on=tuple(depends),
        )

    return guarded(TARGET, "invoice", external_id, build)


def erp_credit_note(
    refund: Mapping[str, Any],
    order_snapshot: Mapping[str, Any],
    approval_threshold_minor: int,
    timing: Timing = DEFAULT_TIMING,
    invoice_delivered: bool = False,
) -> Mapped | None:
    """The credit note (CN-<refund id>) of one Shopify refund, against the order's invoice.

    The amount is what the refund's successful transactions actually returned; a refund that moved
    no money (a restock only, or a failed transaction) needs no credit note and gives None. Above
    `approval_threshold_minor` a person approves it first (`credit_note_over_threshold`).

    When revenue is recognised at a shipment, a refund can come first: None while the order has no
    invoice (not recognised, none delivered), since nothing was invoiced to credit yet; for an order
    cancelled before it shipped, nothing ever is. When it is recognised at payment, a refund that
    returned money is itself proof of a payment, so its credit note never waits on the order's
    financial status (real payloads show refunds on orders still marked `authorized`).
    """
    external_id = credit_note_eid(str(refund.get("id")))

    def build() -> Mapped | None:
        if (
            timing.revenue_recognised != PAID
            and not invoice_delivered
            and revenue_recognised_at(order_snapshot, timing) is None
        ):
            return None
        eid = order_id(order_snapshot)
        order_cur = order_currency(order_snapshot)
        if refund.get("id") is None:
            raise MappingInputError("refund id missing")
        amounts: dict[str, int] = defaultdict(int)
        for index, transaction in enumerate(refund.get("transactions") or []):
            if transaction.get("kind") != "refund" or transaction.get("status") != "success":
                continue
            currency = str(transaction.get("currency") or order_cur).upper()
            amounts[currency] += minor(
                transaction.get("amount"), currency, f"transactions[{index}].amount"
            )
        if not any(amounts.values()):
            return None
        customer_id = order_customer_id(order_snapshot)
        quarantine = None
        if len(amounts) > 1:
            quarantine = "mixed_currencies"
        elif customer_id is None:
            quarantine = "no_customer"
        currency, amount = sorted(amounts.items())[0]
        if quarantine is None and amount <= 0:
            quarantine = "amount_not_positive"
        over = amount > approval_threshold_minor
        depends = [(TARGET, "invoice", invoice_eid(eid))]
        if customer_id:
            depends.append((TARGET, "customer", customer_id))
        return Mapped(
            TARGET,
            "credit_note",
            external_id,
            {
                "invoice_eid": invoice_eid(eid),
                "customer_eid": customer_id,
                "credit_date": local_date(refund.get("created_at"), "refund.created_at"),
                "currency": currency,
                "amount": decimal_string(amount, currency),
                "reason": str(refund.get("note") or "storefront refund"),
            },
            quarantine=quarantine,
            depends_on=tuple(depends),
            approval_rule=APPROVAL_CREDIT_NOTE if over else None,
            details=(
                {
                    "amount": decimal_string(amount, currency),
                    "threshold": decimal_string(approval_threshold_minor, currency),
                }
                if over
                else {}
            ),
        )

    return guarded(TARGET, "credit_note", external_id, build)


def _paid_at(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise MappingInputError("charge.created: datetime without a timezone")
        moment = value
    elif isinstance(value, int) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)  # Stripe's unix seconds
    else:
        raise MappingInputError(f"charge.created: not a time: {value!r:.40}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def erp_payment_applied(
    order_snapshot: Mapping[str, Any],
    charge: Mapping[str, Any],
    timing: Timing = DEFAULT_TIMING,
    invoice_delivered: bool = False,
) -> Mapped | None:
    """A charge applied to the order's invoice (external id = the charge id).

    `charge`: {id, amount_minor, currency, created (aware datetime or unix seconds), payment_method}.
    A paid order whose revenue is not recognised yet (say, recognised at shipment) has no invoice yet:
    None, the charge waits. Quarantined when the order has no invoice and is not paid either
    (`order_not_invoiced`) or the charge is in another currency than the order, since either would be
    refused or misbooked by the ERP.
    """
    external_id = str(charge.get("id"))

    def build() -> Mapped | None:
        invoiced = invoice_delivered or revenue_recognised_at(order_snapshot, timing) is not None
        if not invoiced and is_paid(order_snapshot):
            return None
        eid = order_id(order_snapshot)
        order_cur = order_currency(order_snapshot)
        if not charge.get("id"):
            raise MappingInputError("charge id missing")
        currency = str(charge.get("currency") or "").upper()
        if not is_currency_code(currency):
            raise MappingInputError(f"charge currency: not an ISO-4217 code: {currency!r:.20}")
        amount = charge.get("amount_minor")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise MappingInputError(f"charge amount_minor: not an integer: {amount!r:.20}")
        method = charge.get("payment_method")
        if isinstance(method, Mapping):
            method = method.get("type")
        quarantine = None
        if not invoiced:
            quarantine = "order_not_invoiced"
        elif currency != order_cur:
            quarantine = "currency_mismatch"
        elif amount <= 0:
            quarantine = "amount_not_positive"
        payload = {
            "invoice_eid": invoice_eid(eid),
            "paid_at": _paid_at(charge.get("created")),
            "currency": currency,
            "amount": decimal_string(amount, currency),
            "reference": external_id,
        }
        if method:
            payload["method"] = str(method)
        return Mapped(
            TARGET,
            "payment_applied",
            external_id,
            payload,
            quarantine=quarantine,
            depends_on=((TARGET, "invoice", invoice_eid(eid)),),
        )

    return guarded(TARGET, "payment_applied", external_id, build)
