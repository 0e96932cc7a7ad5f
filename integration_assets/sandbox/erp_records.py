"""The sandbox ERP's record rules: which fields each record type takes and what makes one invalid.

Pure functions (no HTTP, no store), so the rules are readable in one place and testable alone. A
record is checked field by field and every problem is reported at once with its path
(`billing_address.country`, `lines[1].quantity`), a code (`required`, `invalid`, `too_long`,
`unknown_field`, `read_only`, `reference_not_found`) and a short message. Messages never echo the
offending value: the answer ends up in dead-letter tables and alerts, and values can be personal
data.

Money on the wire is a decimal string with two places ("123.45"; a currency without cents such as
JPY has none, as its minor unit says) plus an upper-case ISO-4217 `currency`. A customer's `credit_limit` and `payment_terms` belong to the ERP: a full customer write
may not carry them, and a body with only those (and `currency`) is the credit-terms write.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from integration_assets.streams.money import currency_exponent

RECORD_TYPES = ("customer", "sales_order", "invoice", "credit_note", "payment_applied")
PAYMENT_TERMS = ("NET15", "NET30", "NET60", "PREPAID")
ORDER_STATUSES = ("open", "cancelled", "closed")
CUSTOMER_NAME_MAX = 80
ERP_OWNED_CUSTOMER_FIELDS = ("credit_limit", "payment_terms")
CREDIT_TERMS_FIELDS = frozenset({*ERP_OWNED_CUSTOMER_FIELDS, "currency"})
POSTAL_CODE_COUNTRIES = ("US", "CA")

_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[A-Za-z]{2,}")

ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "region", "postal_code", "country"})
LINE_FIELDS = frozenset({"sku", "quantity", "unit_price", "tax"})
RECORD_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset({"name", "email", "phone", "is_company", "billing_address"}),
    "sales_order": frozenset(
        {
            "customer_eid",
            "order_number",
            "order_date",
            "currency",
            "status",
            "lines",
            "shipping",
            "tax_total",
            "discount_total",
            "total",
        }
    ),
    "invoice": frozenset({"sales_order_eid", "customer_eid", "invoice_date", "currency", "amount"}),
    "credit_note": frozenset(
        {"invoice_eid", "customer_eid", "credit_date", "currency", "amount", "reason"}
    ),
    "payment_applied": frozenset(
        {"invoice_eid", "paid_at", "currency", "amount", "reference", "method"}
    ),
}
# field -> the record type it must name (by external id), per record type.
REFERENCE_FIELDS: dict[str, dict[str, str]] = {
    "customer": {},
    "sales_order": {"customer_eid": "customer"},
    "invoice": {"sales_order_eid": "sales_order", "customer_eid": "customer"},
    "credit_note": {"invoice_eid": "invoice", "customer_eid": "customer"},
    "payment_applied": {"invoice_eid": "invoice"},
}
# Changing these on a sales order that is already invoiced is a conflict.
ORDER_AMOUNT_FIELDS = ("lines", "currency", "shipping", "tax_total", "discount_total", "total")


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Reference:
    """`field` of a record names `record_type` `external_id`, which must exist."""

    field: str
    record_type: str
    external_id: str


class _Checks:
    """Collects field errors; each check returns whether the value passed (absent counts as passed)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[FieldError] = []

    def fail(self, field: str, code: str, message: str) -> bool:
        self.errors.append(FieldError(field, code, message))
        return False

    def only(self, allowed: frozenset[str], value: dict[str, Any], prefix: str = "") -> None:
        for key in sorted(str(key) for key in value if key not in allowed):
            self.fail(f"{prefix}{key}", "unknown_field", "unknown field")

    def required(self, value: dict[str, Any], key: str, path: str) -> bool:
        if value.get(key) is None or value.get(key) == "":
            return self.fail(path, "required", "required")
        return True

    def text(self, value: Any, path: str, max_length: int | None = None) -> bool:
        if value is None:
            return True
        if not isinstance(value, str):
            return self.fail(path, "invalid", "must be a string")
        if max_length is not None and len(value) > max_length:
            return self.fail(path, "too_long", f"must be at most {max_length} characters")
        return True

    def matching(self, value: Any, path: str, pattern: re.Pattern[str], what: str) -> bool:
        if value is None:
            return True
        if not isinstance(value, str) or not pattern.fullmatch(value):
            return self.fail(path, "invalid", f"must be {what}")
        return True

    def money(self, value: Any, path: str, positive: bool = False) -> bool:
        """A decimal string with the currency's minor-unit places: '12.50' (USD), '1200' (JPY)."""
        currency = self.body.get("currency")
        places = (
            currency_exponent(currency)
            if isinstance(currency, str) and _CURRENCY.fullmatch(currency)
            else 2
        )
        pattern = re.compile(rf"\d+\.\d{{{places}}}" if places else r"\d+")
        example = f"{12.5:.{places}f}"
        if not self.matching(value, path, pattern, f"a decimal string like '{example}'"):
            return False
        if value is not None and positive and Decimal(value) <= 0:
            return self.fail(path, "invalid", "must be greater than 0")
        return True

    def iso(self, value: Any, path: str, parse: Callable[[str], object], what: str) -> bool:
        if value is None:
            return True
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            parse(value)
        except ValueError:
            return self.fail(path, "invalid", f"must be an ISO-8601 {what}")
        return True

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> bool:
        if value is None or value in choices:
            return True
        return self.fail(path, "invalid", f"must be one of {', '.join(choices)}")

    def currency_with_money(self, money_fields: list[str]) -> None:
        """Money without its currency is a number nobody can book."""
        currency = self.body.get("currency")
        valid = self.matching(currency, "currency", _CURRENCY, "an ISO-4217 code like 'USD'")
        if valid and currency is None and money_fields:
            self.fail("currency", "required", f"required with {money_fields[0]}")


def validate_record(record_type: str, body: Any) -> list[FieldError]:
    """Every field problem of a full `record_type` body (empty: valid). Unknown types raise KeyError."""
    allowed = RECORD_FIELDS[record_type]
    if not isinstance(body, dict):
        return [FieldError("", "invalid", "the body must be a JSON object")]
    checks = _Checks(body)
    if record_type == "customer":
        owned = [key for key in ERP_OWNED_CUSTOMER_FIELDS if key in body]
        for key in owned:
            checks.fail(key, "read_only", "owned by the ERP; set it with a credit-terms write")
        checks.only(allowed | set(owned), body)
        _check_customer(checks, body)
    else:
        checks.only(allowed, body)
        {
            "sales_order": _check_sales_order,
            "invoice": _check_invoice,
            "credit_note": _check_credit_note,
            "payment_applied": _check_payment_applied,
        }[record_type](checks, body)
    return checks.errors


def is_credit_terms_write(record_type: str, body: Any) -> bool:
    """A customer body with only `credit_limit`/`payment_terms` (+ `currency`): updates just those."""
    return (
        record_type == "customer"
        and isinstance(body, dict)
        and bool(body)
        and set(body) <= CREDIT_TERMS_FIELDS
        and any(key in body for key in ERP_OWNED_CUSTOMER_FIELDS)
    )


def validate_credit_terms(body: dict[str, Any]) -> list[FieldError]:
    checks = _Checks(body)
    checks.money(body.get("credit_limit"), "credit_limit")
    checks.choice(body.get("payment_terms"), "payment_terms", PAYMENT_TERMS)
    checks.matching(body.get("currency"), "currency", _CURRENCY, "an ISO-4217 code like 'USD'")
    return checks.errors


def references_of(record_type: str, body: dict[str, Any]) -> list[Reference]:
    """The records a (valid) body names by external id, in field order."""
    return [
        Reference(field, target, body[field])
        for field, target in REFERENCE_FIELDS[record_type].items()
        if isinstance(body.get(field), str) and body[field]
    ]


def order_amounts_changed(stored: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """The amount fields (lines included) that differ between a stored sales order and a new body."""
    return [field for field in ORDER_AMOUNT_FIELDS if stored.get(field) != body.get(field)]


def _check_customer(checks: _Checks, body: dict[str, Any]) -> None:
    if checks.required(body, "name", "name"):
        checks.text(body["name"], "name", CUSTOMER_NAME_MAX)
    if checks.required(body, "email", "email"):
        checks.matching(body["email"], "email", _EMAIL, "a valid email address")
    checks.text(body.get("phone"), "phone")
    if body.get("is_company") is not None and not isinstance(body["is_company"], bool):
        checks.fail("is_company", "invalid", "must be true or false")
    address = body.get("billing_address")
    if address is None:
        return
    if not isinstance(address, dict):
        checks.fail("billing_address", "invalid", "must be an object")
        return
    checks.only(ADDRESS_FIELDS, address, "billing_address.")
    for key in ("line1", "line2", "city", "region", "postal_code"):
        checks.text(address.get(key), f"billing_address.{key}")
    if checks.required(address, "country", "billing_address.country"):
        valid_country = checks.matching(
            address["country"],
            "billing_address.country",
            _COUNTRY,
            "an ISO-3166 alpha-2 code like 'US'",
        )
        if valid_country and address["country"] in POSTAL_CODE_COUNTRIES:
            checks.required(address, "postal_code", "billing_address.postal_code")


def _check_sales_order(checks: _Checks, body: dict[str, Any]) -> None:
    if checks.required(body, "customer_eid", "customer_eid"):
        checks.text(body["customer_eid"], "customer_eid")
    checks.text(body.get("order_number"), "order_number")
    checks.iso(body.get("order_date"), "order_date", date.fromisoformat, "date")
    checks.choice(body.get("status"), "status", ORDER_STATUSES)
    money_fields = []
    lines = body.get("lines")
    if lines is None or lines == []:
        if body.get("status") != "cancelled":
            checks.fail("lines", "required", "at least one line unless the order is cancelled")
    elif not isinstance(lines, list):
        checks.fail("lines", "invalid", "must be a list")
    else:
        for index, line in enumerate(lines):
            path = f"lines[{index}]"
            if not isinstance(line, dict):
                checks.fail(path, "invalid", "must be an object")
                continue
            checks.only(LINE_FIELDS, line, f"{path}.")
            if checks.required(line, "sku", f"{path}.sku"):
                checks.text(line["sku"], f"{path}.sku")
            quantity = line.get("quantity")
            if quantity is None:
                checks.fail(f"{path}.quantity", "required", "required")
            elif isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                checks.fail(f"{path}.quantity", "invalid", "must be an integer greater than 0")
            for key in ("unit_price", "tax"):
                checks.money(line.get(key), f"{path}.{key}")
                if line.get(key) is not None:
                    money_fields.append(f"{path}.{key}")
    for key in ("shipping", "tax_total", "discount_total", "total"):
        checks.money(body.get(key), key)
        if body.get(key) is not None:
            money_fields.append(key)
    checks.currency_with_money(money_fields)


def _check_amount_record(
    checks: _Checks, body: dict[str, Any], parent_field: str, date_field: str, is_datetime: bool
) -> None:
    if checks.required(body, parent_field, parent_field):
        checks.text(body[parent_field], parent_field)
    if is_datetime:
        checks.iso(body.get(date_field), date_field, datetime.fromisoformat, "timestamp")
    else:
        checks.iso(body.get(date_field), date_field, date.fromisoformat, "date")
    if checks.required(body, "amount", "amount"):
        checks.money(body["amount"], "amount", positive=True)
    checks.currency_with_money(["amount"] if body.get("amount") is not None else [])


def _check_invoice(checks: _Checks, body: dict[str, Any]) -> None:
    _check_amount_record(checks, body, "sales_order_eid", "invoice_date", is_datetime=False)
    checks.text(body.get("customer_eid"), "customer_eid")


def _check_credit_note(checks: _Checks, body: dict[str, Any]) -> None:
    _check_amount_record(checks, body, "invoice_eid", "credit_date", is_datetime=False)
    checks.text(body.get("customer_eid"), "customer_eid")
    checks.text(body.get("reason"), "reason")


def _check_payment_applied(checks: _Checks, body: dict[str, Any]) -> None:
    _check_amount_record(checks, body, "invoice_eid", "paid_at", is_datetime=True)
    checks.text(body.get("reference"), "reference")
    checks.text(body.get("method"), "method")
