"""What staging makes of one CRM account row or ERP customer row: a typed version, or the rule it broke.

The golden record reads these rows again in core (streams/customers.py), so staging applies both the
stream's contract and that same reader: a row core could not read is quarantined here, with its rule,
field and raw reference, instead of being dropped later where nobody looks. Contracts name nested
fields by their dotted path (`Owner.Email`, `record.payment_terms`), as an operator would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.contracts import Contract
from integration_assets.streams.contract_rules import Violation, typed_fields
from integration_assets.streams.customers import (
    CustomerRecordError,
    crm_account_from_row,
    erp_customer_from_row,
)
from integration_assets.streams.hashing import payload_hash

SYSTEMS = ("crm", "erp")
RULE_UNREADABLE = "unreadable_record"
# CustomerRecordError messages read "<source record>: <field>: <problem>"; the field is what we keep.
_FIELD_IN_MESSAGE = re.compile(r": ([A-Za-z_][\w.]*): ")


@dataclass(frozen=True)
class StagedReference:
    """One source record version, keyed for deduplication by (system, source_record_id, payload_hash)."""

    system: str
    customer_id: str
    source_record_id: str
    modified_at: datetime | None
    # The ERP credit limit's currency (the record's own, else the company's); None for CRM rows and
    # ERP customers without a limit. Core reads the row again with it, so both read it the same way.
    currency: str | None
    payload_hash: str


def flattened(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The record plus every nested object's fields under dotted names (`Owner.Email`).

    Salesforce's `attributes` annotations are type metadata, not data, and are left out of the paths.
    """
    view: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        view[name] = value
        if isinstance(value, Mapping) and key != "attributes":
            view.update(flattened(value, f"{name}."))
    return view


def record_key(system: str, payload: Any) -> str | None:
    """The best identifier a quarantined row offers: its customer id, else the source's record id."""
    if not isinstance(payload, Mapping):
        return None
    fields = ("External_Id__c", "Id") if system == "crm" else ("external_id", "id")
    for name in fields:
        value = payload.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


def _unreadable(error: CustomerRecordError) -> Violation:
    match = _FIELD_IN_MESSAGE.search(str(error))
    return Violation(RULE_UNREADABLE, match.group(1) if match else "", str(error))


def stage_reference(
    system: str, payload: Any, contract: Contract, company_currency: str
) -> StagedReference | Violation:
    """Type one row of `system` ("crm" or "erp") against its contract and the golden-record reader.

    `company_currency` is the ERP's own currency: a credit limit without a currency is in it.
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown customer reference system {system!r} (expected crm or erp)")
    if not isinstance(payload, Mapping):
        return Violation(
            "not_an_object", "", f"record must be a JSON object, got {type(payload).__name__}"
        )
    view = flattened(payload)
    record_currency = view.get("record.currency")
    money_currency = record_currency if isinstance(record_currency, str) else company_currency
    typed = typed_fields(view, contract, money_currency.upper())
    if isinstance(typed, Violation):
        return typed
    digest = payload_hash(payload)
    try:
        if system == "crm":
            account = crm_account_from_row(payload)
            return StagedReference(
                "crm",
                account.customer_id,
                str(account.account_id),
                account.last_modified,
                None,
                digest,
            )
        customer = erp_customer_from_row(payload, company_currency)
    except CustomerRecordError as error:
        return _unreadable(error)
    return StagedReference(
        "erp",
        customer.customer_id,
        str(customer.erp_id),
        customer.updated_at,
        customer.currency,
        digest,
    )
