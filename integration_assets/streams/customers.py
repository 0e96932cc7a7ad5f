"""The customer golden record: one row per customer, merged attribute by attribute by the ownership registry.

Three systems know a customer and each is right about different things: the storefront about the
email the customer signs in with, the CRM about the address and the account manager, the ERP about
credit terms. Copying one system over another loses the others' truth, so every attribute is taken from
the first system in its precedence (system of record, then fallbacks) that has a value, and every
other system that holds a *different* value is recorded as a conflict that the merge resolved, so a
person can see, and fix at the source, where the systems disagree.

Inputs (all keyed by the storefront customer id, as a string, which is also the CRM `External_Id__c`
and the ERP external id):
- `StorefrontCustomer`: from the newest order snapshot of each customer (`storefront_customer`,
  `latest_storefront_customers`); tags `segment:<value>` and `account-manager:<email>` are read.
- `CrmAccount`: a row of the CRM Account query (`crm_account_from_row`).
- `ErpCustomer`: a row of the ERP customer list (`erp_customer_from_row`).
A row that cannot be read raises `CustomerRecordError` naming the source, the record and the field;
`read_rows` splits a batch into what was read and what was rejected, so nothing is dropped unseen.

The merge is deterministic and independent of input order: when one system holds several records of
the same customer, the newest wins, and ties are broken by content, never by position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from integration_assets.contracts.ownership import OwnershipRegistry
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.money import MoneyFormatError, is_currency_code, to_minor_units
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc

ENTITY = "customer"
PAYMENT_TERMS = ("NET15", "NET30", "NET60", "PREPAID")
SEGMENT_TAG = "segment:"
ACCOUNT_MANAGER_TAG = "account-manager:"

GOLDEN_COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "is_company",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "segment",
    "account_manager_email",
    "credit_limit_minor",
    "currency",
    "payment_terms",
    "sources",
    "attribute_sources",
)
# Lineage, not customer attributes: which systems know the customer, and where each value came from.
LINEAGE_COLUMNS = ("sources", "attribute_sources")
CONFLICT_COLUMNS = (
    "customer_id",
    "attribute",
    "chosen_system",
    "chosen_value",
    "overridden_system",
    "overridden_value",
    "rule",
)
ADDRESS_COLUMNS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")


class CustomerRecordError(ValueError):
    """A source record that cannot be read; the message names the source, the record and the field."""


class CustomerMergeError(ValueError):
    """The ownership registry and the golden record disagree about which columns exist."""


@dataclass(frozen=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def columns(self) -> dict[str, str | None]:
        return dict(
            zip(
                ADDRESS_COLUMNS,
                (self.line1, self.line2, self.city, self.region, self.postal_code, self.country),
                strict=True,
            )
        )


@dataclass(frozen=True)
class StorefrontCustomer:
    """A storefront customer as the newest order snapshot of that customer shows it."""

    customer_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    company: str | None
    address: Address | None
    segment: str | None
    account_manager_email: str | None
    tags: tuple[str, ...]
    observed_at: datetime
    source_ref: str


@dataclass(frozen=True)
class CrmAccount:
    """A row of the CRM Account query (External_Id__c, Billing*, Phone, Customer_Segment__c, Owner.Email...)."""

    customer_id: str
    account_id: str | None
    name: str | None
    phone: str | None
    address: Address | None
    industry: str | None
    segment: str | None
    owner_id: str | None
    owner_email: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class ErpCustomer:
    """A row of the ERP customer list: external_id plus the record's fields."""

    customer_id: str
    erp_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    is_company: bool
    address: Address | None
    credit_limit_minor: int | None
    currency: str | None
    payment_terms: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class CustomerMerge:
    """The merge's output: `golden` rows (GOLDEN_COLUMNS, sorted by customer_id) and `conflicts` rows
    (CONFLICT_COLUMNS), plus per system how many older records of a customer a newer one superseded."""

    golden: tuple[dict[str, Any], ...]
    conflicts: tuple[dict[str, Any], ...]
    superseded: Mapping[str, int]


# ---- reading the sources --------------------------------------------------------------------------


def _text(value: Any, where: str) -> str | None:
    """A trimmed string, None for absent or blank; numbers become text (a phone sent as a number)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CustomerRecordError(f"{where}: expected text, got {type(value).__name__}")
    text = " ".join(str(value).split())
    return text or None


def _email(value: Any, where: str) -> str | None:
    # Email matching everywhere (CRM user lookup, ERP uniqueness) is case-insensitive in practice.
    text = _text(value, where)
    return text.lower() if text else None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise CustomerRecordError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _identifier(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CustomerRecordError(f"{where}: expected an id, got {value!r:.40}")
    return str(value).strip() or None


def _address(parts: Iterable[str | None]) -> Address | None:
    address = Address(*parts)
    return address if any(address.columns().values()) else None


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = [_text(item, where) or "" for item in value]
    else:
        raise CustomerRecordError(
            f"{where}: expected comma-separated tags, got {type(value).__name__}"
        )
    return tuple(tag.strip() for tag in items if tag.strip())


def _tag_value(tags: tuple[str, ...], prefix: str) -> str | None:
    # The first tag with the prefix wins: the storefront keeps tags in one stable order.
    for tag in tags:
        if tag.lower().startswith(prefix):
            return tag[len(prefix) :].strip().lower() or None
    return None


def storefront_customer(
    order_snapshot: Mapping[str, Any], observed_at: datetime, source_ref: str
) -> StorefrontCustomer | None:
    """The customer of one storefront order snapshot (Shopify order JSON), or None for a guest order.

    `observed_at` is when the snapshot was true (the order's updated_at, timezone-aware) and decides
    which snapshot is the newest; `source_ref` is its raw reference, kept for tracing.
    """
    where = f"storefront order {order_snapshot.get('id')!r}"
    if observed_at.tzinfo is None:
        raise CustomerRecordError(f"{where}: observed_at has no timezone")
    customer = _mapping(order_snapshot.get("customer"), f"{where}: customer")
    customer_id = _identifier(customer.get("id"), f"{where}: customer.id")
    if customer_id is None:
        return None
    billing = _mapping(order_snapshot.get("billing_address"), f"{where}: billing_address")
    tags = _tags(customer.get("tags"), f"{where}: customer.tags")
    return StorefrontCustomer(
        customer_id=customer_id,
        email=_email(customer.get("email"), f"{where}: customer.email")
        or _email(order_snapshot.get("email"), f"{where}: email"),
        first_name=_text(customer.get("first_name"), f"{where}: customer.first_name"),
        last_name=_text(customer.get("last_name"), f"{where}: customer.last_name"),
        phone=_text(customer.get("phone"), f"{where}: customer.phone")
        or _text(billing.get("phone"), f"{where}: billing_address.phone"),
        company=_text(billing.get("company"), f"{where}: billing_address.company"),
        address=_address(
            _text(billing.get(key), f"{where}: billing_address.{key}")
            for key in ("address1", "address2", "city", "province_code", "zip", "country_code")
        ),
        segment=_tag_value(tags, SEGMENT_TAG),
        account_manager_email=_tag_value(tags, ACCOUNT_MANAGER_TAG),
        tags=tags,
        observed_at=observed_at,
        source_ref=source_ref,
    )


def storefront_customer_json(customer: StorefrontCustomer) -> str:
    """A storefront customer as JSON text (kept per order, so later runs need not reread the order)."""
    return orjson.dumps(asdict(customer)).decode()


def storefront_customer_from_json(text: str) -> StorefrontCustomer:
    """The inverse of `storefront_customer_json`."""
    fields = orjson.loads(text)
    address = fields["address"]
    return StorefrontCustomer(
        **{
            **fields,
            "address": None if address is None else Address(**address),
            "tags": tuple(fields["tags"]),
            "observed_at": datetime.fromisoformat(fields["observed_at"]),
        }
    )


def latest_storefront_customers(
    snapshots: Iterable[tuple[Mapping[str, Any], datetime, str]],
) -> list[StorefrontCustomer]:
    """One customer per id from (order snapshot, observed_at, source_ref): the newest snapshot wins.

    Guest orders (no customer) are skipped. Sorted by customer id.
    """
    customers = (storefront_customer(*snapshot) for snapshot in snapshots)
    newest, _ = _newest_by_customer(
        (c for c in customers if c is not None), lambda c: (c.observed_at, c.source_ref)
    )
    return [newest[customer_id] for customer_id in sorted(newest)]


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value)
    except TimestampFormatError as error:
        raise CustomerRecordError(f"{where}: {error}") from None


def crm_account_from_row(row: Mapping[str, Any]) -> CrmAccount:
    """Read one row of the CRM Account query. `Owner.Email` may come nested (`Owner: {Email}`, as
    Salesforce returns relationships) or flat (`"Owner.Email"`). A row without External_Id__c cannot
    be matched to a storefront customer and is rejected."""
    where = f"CRM account {row.get('Id')!r}"
    customer_id = _identifier(row.get("External_Id__c"), f"{where}: External_Id__c")
    if customer_id is None:
        raise CustomerRecordError(
            f"{where}: no External_Id__c, so it cannot be matched to a storefront customer"
        )
    owner = _mapping(row.get("Owner"), f"{where}: Owner")
    owner_email = owner.get("Email") if "Email" in owner else row.get("Owner.Email")
    street = row.get("BillingStreet")
    if street is not None and not isinstance(street, str):
        raise CustomerRecordError(f"{where}: BillingStreet: expected text")
    # Salesforce keeps street lines in one field separated by newlines; the first line is line 1.
    street_lines = [" ".join(line.split()) for line in (street or "").splitlines() if line.strip()]
    segment = _text(row.get("Customer_Segment__c"), f"{where}: Customer_Segment__c")
    return CrmAccount(
        customer_id=customer_id,
        account_id=_identifier(row.get("Id"), f"{where}: Id"),
        name=_text(row.get("Name"), f"{where}: Name"),
        phone=_text(row.get("Phone"), f"{where}: Phone"),
        address=_address(
            (
                street_lines[0] if street_lines else None,
                ", ".join(street_lines[1:]) or None,
                _text(row.get("BillingCity"), f"{where}: BillingCity"),
                _text(row.get("BillingState"), f"{where}: BillingState"),
                _text(row.get("BillingPostalCode"), f"{where}: BillingPostalCode"),
                _text(row.get("BillingCountry"), f"{where}: BillingCountry"),
            )
        ),
        industry=_text(row.get("Industry"), f"{where}: Industry"),
        # Picklist values ("Wholesale") are compared with our lower-case segment tags ("wholesale").
        segment=segment.lower() if segment else None,
        owner_id=_identifier(row.get("OwnerId"), f"{where}: OwnerId"),
        owner_email=_email(owner_email, f"{where}: Owner.Email"),
        last_modified=_parse_time(row.get("LastModifiedDate"), f"{where}: LastModifiedDate"),
    )


def erp_customer_from_row(
    row: Mapping[str, Any], default_currency: str | None = None
) -> ErpCustomer:
    """Read one row of the ERP customer list ({id, external_id, record, updated_at}).

    `credit_limit` is a decimal string; its currency is the record's `currency`, else
    `default_currency` (the ERP's company currency); a limit with neither is rejected, since an
    amount without a currency cannot be put into minor units.
    """
    where = f"ERP customer {row.get('external_id')!r}"
    customer_id = _identifier(row.get("external_id"), f"{where}: external_id")
    if customer_id is None:
        raise CustomerRecordError(f"{where}: no external_id")
    record = _mapping(row.get("record"), f"{where}: record")
    billing = _mapping(record.get("billing_address"), f"{where}: record.billing_address")
    currency = _text(record.get("currency"), f"{where}: record.currency") or default_currency
    currency = currency.upper() if currency else None
    credit_limit_minor = None
    if record.get("credit_limit") is not None:
        if not is_currency_code(currency):
            raise CustomerRecordError(
                f"{where}: record.credit_limit has no valid currency (got {currency!r})"
            )
        try:
            credit_limit_minor = to_minor_units(record["credit_limit"], currency)
        except MoneyFormatError as error:
            raise CustomerRecordError(f"{where}: record.credit_limit: {error}") from None
    terms = _text(record.get("payment_terms"), f"{where}: record.payment_terms")
    if terms is not None and terms not in PAYMENT_TERMS:
        raise CustomerRecordError(
            f"{where}: record.payment_terms {terms!r} is not one of {', '.join(PAYMENT_TERMS)}"
        )
    is_company = record.get("is_company", False)
    if not isinstance(is_company, bool):
        raise CustomerRecordError(f"{where}: record.is_company: expected true or false")
    return ErpCustomer(
        customer_id=customer_id,
        erp_id=_identifier(row.get("id"), f"{where}: id"),
        name=_text(record.get("name"), f"{where}: record.name"),
        email=_email(record.get("email"), f"{where}: record.email"),
        phone=_text(record.get("phone"), f"{where}: record.phone"),
        is_company=is_company,
        address=_address(
            _text(billing.get(key), f"{where}: record.billing_address.{key}")
            for key in ("line1", "line2", "city", "region", "postal_code", "country")
        ),
        credit_limit_minor=credit_limit_minor,
        currency=currency if credit_limit_minor is not None else None,
        payment_terms=terms,
        updated_at=_parse_time(row.get("updated_at"), f"{where}: updated_at"),
    )


Parsed = TypeVar("Parsed")


def read_rows(
    rows: Iterable[Mapping[str, Any]], reader: Callable[[Mapping[str, Any]], Parsed]
) -> tuple[list[Parsed], list[tuple[int, str]]]:
    """Read every row; the ones that cannot be read come back as (index, message), for quarantine."""
    parsed, rejected = [], []
    for index, row in enumerate(rows):
        try:
            parsed.append(reader(row))
        except CustomerRecordError as error:
            rejected.append((index, str(error)))
    return parsed, rejected


# ---- merging --------------------------------------------------------------------------------------

Record = TypeVar("Record", StorefrontCustomer, CrmAccount, ErpCustomer)


def _newest_by_customer(
    records: Iterable[Record], recency: Callable[[Record], tuple]
) -> tuple[dict[str, Record], int]:
    """The newest record per customer id and how many older ones it superseded.

    Ties on recency are broken by the record's content hash, so the result never depends on the order
    the records arrived in.
    """

    def rank(record: Record) -> tuple:
        parts = recency(record)
        # None (a source that does not say when) ranks oldest.
        return (
            tuple((value is not None, value) for value in parts),
            payload_hash(record),
        )

    newest: dict[str, Record] = {}
    superseded = 0
    for record in records:
        current = newest.get(record.customer_id)
        if current is not None:
            superseded += 1
            if rank(record) <= rank(current):
                continue
        newest[record.customer_id] = record
    return newest, superseded


def _storefront_values(customer: StorefrontCustomer) -> dict[str, dict[str, Any]]:
    return {
        "email": {"email": customer.email},
        "first_name": {"first_name": customer.first_name},
        "last_name": {"last_name": customer.last_name},
        "phone": {"phone": customer.phone},
        "company": {"company": customer.company, "is_company": True} if customer.company else {},
        "address": customer.address.columns() if customer.address else {},
        "segment": {"segment": customer.segment},
        "account_manager_email": {"account_manager_email": customer.account_manager_email},
    }


def _crm_values(account: CrmAccount) -> dict[str, dict[str, Any]]:
    # The Account query cannot tell a person account from a business one (Name is either), so the CRM
    # offers no company and no names: guessing them would put a person's name in `company`.
    return {
        "phone": {"phone": account.phone},
        "address": account.address.columns() if account.address else {},
        "segment": {"segment": account.segment},
        "account_manager_email": {"account_manager_email": account.owner_email},
    }


def _erp_values(customer: ErpCustomer) -> dict[str, dict[str, Any]]:
    return {
        "email": {"email": customer.email},
        "phone": {"phone": customer.phone},
        "company": (
            {"company": customer.name, "is_company": True}
            if customer.is_company and customer.name
            else {}
        ),
        "address": customer.address.columns() if customer.address else {},
        "credit_limit": (
            {"credit_limit_minor": customer.credit_limit_minor, "currency": customer.currency}
            if customer.credit_limit_minor is not None
            else {}
        ),
        "payment_terms": {"payment_terms": customer.payment_terms},
    }


def _has_value(columns: Mapping[str, Any]) -> bool:
    return any(value is not None for value in columns.values())


def _comparable(columns: Mapping[str, Any]) -> tuple:
    # Case and spacing are not disagreements ("Main St" vs "main  st"); anything else is.
    return tuple(
        value.casefold() if isinstance(value, str) else value for value in columns.values()
    )


def _rendered(columns: Mapping[str, Any]) -> str:
    if len(columns) == 1:
        (value,) = columns.values()
        return str(value)
    return orjson.dumps(dict(columns), option=orjson.OPT_SORT_KEYS).decode()


def _check_registry(registry: OwnershipRegistry) -> None:
    registered = set(registry.columns(ENTITY))
    expected = set(GOLDEN_COLUMNS) - set(LINEAGE_COLUMNS)
    if registered != expected:
        raise CustomerMergeError(
            f"{registry.source}: the customer attributes span {sorted(registered)} but the golden "
            f"record has {sorted(expected)}; missing from the registry: {sorted(expected - registered)}, "
            f"unknown to the merge: {sorted(registered - expected)}"
        )


def merge_customers(
    storefront: Iterable[StorefrontCustomer],
    crm: Iterable[CrmAccount],
    erp: Iterable[ErpCustomer],
    registry: OwnershipRegistry,
) -> CustomerMerge:
    """The golden record of every customer any of the three systems knows, and every conflict resolved.

    Each attribute comes whole (an address never mixes parts of two systems) from the first system in
    its registry precedence that has a value; each other system holding a different value becomes a
    conflict row with rule `system_of_record` (the system of record won) or `fallback` (the system of
    record had no value and a fallback won).
    """
    _check_registry(registry)
    storefront_by_id, storefront_superseded = _newest_by_customer(
        storefront, lambda c: (c.observed_at, c.source_ref)
    )
    crm_by_id, crm_superseded = _newest_by_customer(crm, lambda a: (a.last_modified,))
    erp_by_id, erp_superseded = _newest_by_customer(erp, lambda c: (c.updated_at,))
    by_system: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
        "storefront": {cid: _storefront_values(c) for cid, c in storefront_by_id.items()},
        "crm": {cid: _crm_values(a) for cid, a in crm_by_id.items()},
        "erp": {cid: _erp_values(c) for cid, c in erp_by_id.items()},
    }
    entity = registry.entity(ENTITY)
    merged_attributes = [a for name, a in entity.attributes.items() if name not in entity.key]
    golden, conflicts = [], []
    for customer_id in sorted(set().union(*by_system.values())):
        row: dict[str, Any] = dict.fromkeys(GOLDEN_COLUMNS)
        row["customer_id"] = customer_id
        row["is_company"] = False
        chosen_from: dict[str, str] = {}
        for attribute in merged_attributes:
            offers = [
                (system, values)
                for system in attribute.precedence
                if _has_value(
                    values := by_system.get(system, {}).get(customer_id, {}).get(attribute.name, {})
                )
            ]
            if not offers:
                continue
            chosen_system, chosen = offers[0]
            row.update(chosen)
            chosen_from[attribute.name] = chosen_system
            rule = "system_of_record" if chosen_system == attribute.system else "fallback"
            for other_system, other in offers[1:]:
                if _comparable(other) != _comparable(chosen):
                    conflicts.append(
                        {
                            "customer_id": customer_id,
                            "attribute": attribute.name,
                            "chosen_system": chosen_system,
                            "chosen_value": _rendered(chosen),
                            "overridden_system": other_system,
                            "overridden_value": _rendered(other),
                            "rule": rule,
                        }
                    )
        row["sources"] = [s for s in registry.systems if customer_id in by_system.get(s, {})]
        row["attribute_sources"] = orjson.dumps(chosen_from, option=orjson.OPT_SORT_KEYS).decode()
        golden.append(row)
    return CustomerMerge(
        golden=tuple(golden),
        conflicts=tuple(conflicts),
        superseded={
            "storefront": storefront_superseded,
            "crm": crm_superseded,
            "erp": erp_superseded,
        },
    )
