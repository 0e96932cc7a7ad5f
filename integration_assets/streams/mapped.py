"""What every target transform returns (`Mapped`), the lookup tally, and Shopify order helpers they share.

A transform never sends anything and never raises on bad data: it says what it would write, what it
had to look up and how each lookup went, what it flagged, whether the write must be held back
(quarantine) or approved by a person first, and which other writes it references. The asset that calls
it turns that into outbox rows and metadata, so every failed lookup is counted and visible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from integration_assets.streams.money import (
    MoneyFormatError,
    format_minor_units,
    is_currency_code,
    to_minor_units,
)
from integration_assets.streams.timestamps import TimestampFormatError

# Lookup outcomes that mean the lookup failed (the rest: found, mapped, no_email).
FAILED_OUTCOMES = frozenset({"missing", "ambiguous", "unknown"})
INVALID_INPUT = "invalid_input"


class MappingInputError(ValueError):
    """Input a transform cannot read; it becomes the quarantine reason `invalid_input: <message>`."""


@dataclass(frozen=True)
class Mapped:
    """One intended write into a target system.

    - `payload`: the body to send (None only when the input could not be read). When `quarantine` is
      set the write must not be sent; the payload is kept for the operator who fixes it.
    - `flags`: short notes that do not stop the write ("owner_defaulted",
      "picklist_unknown:Customer_Segment__c=platinum").
    - `lookups`: (lookup name, outcome) for every lookup made, e.g. ("crm_owner_by_email", "found").
    - `depends_on`: (target, entity, external_id) of the writes this one references; send those first.
    - `approval_rule`: why a person must approve before it is sent, or None.
    - `details`: context for the operator or approver (previous credit limit, owner candidates).
    """

    target: str
    entity: str
    external_id: str
    payload: dict[str, Any] | None
    flags: tuple[str, ...] = ()
    quarantine: str | None = None
    lookups: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[tuple[str, str, str], ...] = ()
    approval_rule: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def aggregate_lookups(results: Iterable[Mapped | None]) -> dict[str, dict[str, int]]:
    """Count every lookup outcome over a batch of transforms: {lookup name: {outcome: count}}, sorted.

    None results (transforms that had nothing to write) are skipped.
    """
    counts: Counter[tuple[str, str]] = Counter(
        lookup for result in results if result is not None for lookup in result.lookups
    )
    tally: dict[str, dict[str, int]] = {}
    for (name, outcome), count in sorted(counts.items()):
        tally.setdefault(name, {})[outcome] = count
    return tally


def failed_lookups(results: Iterable[Mapped | None]) -> int:
    """How many lookups failed (missing, ambiguous, unknown) over a batch."""
    return sum(
        1
        for result in results
        if result is not None
        for _, outcome in result.lookups
        if outcome in FAILED_OUTCOMES
    )


def guarded(
    target: str, entity: str, external_id: str, build: Callable[[], Mapped | None]
) -> Mapped | None:
    """Run a transform; input it cannot read becomes a quarantined write, never an exception that
    would stop the rest of the batch."""
    try:
        return build()
    except (MappingInputError, MoneyFormatError, TimestampFormatError) as error:
        return Mapped(target, entity, external_id, None, quarantine=f"{INVALID_INPUT}: {error}")


# ---- Shopify order snapshot helpers -----------------------------------------------------------------


def order_id(order: Mapping[str, Any]) -> str:
    value = order.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MappingInputError(f"order id missing or not an id: {value!r:.40}")
    return str(value).strip()


def order_customer_id(order: Mapping[str, Any]) -> str | None:
    """The storefront customer id of the order as a string, None for a guest order."""
    customer = order.get("customer")
    if customer is None:
        return None
    if not isinstance(customer, Mapping):
        raise MappingInputError("customer: expected an object")
    value = customer.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MappingInputError(f"customer.id: not an id: {value!r:.40}")
    return str(value)


def order_currency(order: Mapping[str, Any]) -> str:
    currency = order.get("currency")
    if not isinstance(currency, str) or not is_currency_code(currency.upper()):
        raise MappingInputError(f"currency: not an ISO-4217 code: {currency!r:.20}")
    return currency.upper()


def minor(value: Any, currency: str, where: str) -> int:
    try:
        return to_minor_units(value, currency)
    except MoneyFormatError as error:
        raise MappingInputError(f"{where}: {error}") from None


def decimal_string(amount_minor: int, currency: str) -> str:
    """Minor units to the decimal string the ERP expects on the wire ("123.45")."""
    return format_minor_units(amount_minor, currency)


def local_date(value: Any, where: str) -> str:
    """The calendar date of a timestamp in the offset it was written with (the shop's own day)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise MappingInputError(f"{where}: not an ISO-8601 timestamp: {value!r:.40}") from None
    else:
        raise MappingInputError(f"{where}: missing timestamp")
    if moment.tzinfo is None:
        raise MappingInputError(f"{where}: timestamp without a UTC offset")
    return date(moment.year, moment.month, moment.day).isoformat()


def line_items(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    lines = order.get("line_items") or []
    if not isinstance(lines, list) or not all(isinstance(line, Mapping) for line in lines):
        raise MappingInputError("line_items: expected a list of objects")
    return lines


def count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingInputError(f"{where}: expected a count >= 0, got {value!r:.20}")
    return value


def refunded_units_by_line(order: Mapping[str, Any]) -> Counter[str]:
    """Units refunded per line item id, over all of the order's refunds."""
    units: Counter[str] = Counter()
    for r_index, refund in enumerate(order.get("refunds") or []):
        for i_index, item in enumerate((refund or {}).get("refund_line_items") or []):
            where = f"refunds[{r_index}].refund_line_items[{i_index}]"
            units[str(item.get("line_item_id"))] += count(item.get("quantity"), f"{where}.quantity")
    return units
