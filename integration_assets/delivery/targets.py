"""How each outbox (target, entity) is written: which client call, which record type or sObject.

The outbox row carries the mapped payload; `send` turns one row into one upsert by external id, with
the row's idempotency key on the request, and returns the client's WriteOutcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integration_assets.storage.outbox import OutboxRow
from integration_assets.systems.write_outcome import WriteOutcome


@dataclass(frozen=True)
class Target:
    """One (target, entity) pair of the outbox and the client call that writes it."""

    target: str
    entity: str
    resource_key: str  # the Dagster resource holding the client
    send: Callable[[Any, OutboxRow], WriteOutcome]


def _upsert(kind: str) -> Callable[[Any, OutboxRow], WriteOutcome]:
    """An upsert by external id of `kind` (an ERP record type, a CRM sObject)."""

    def send(client: Any, row: OutboxRow) -> WriteOutcome:
        return client.upsert(kind, row.external_id, row.payload_to_send(), row.idempotency_key)

    return send


def _wms_reservation(client: Any, row: OutboxRow) -> WriteOutcome:
    return client.put_reservation(row.external_id, row.payload_to_send(), row.idempotency_key)


TARGETS: dict[tuple[str, str], Target] = {
    (target.target, target.entity): target
    for target in (
        Target("crm", "account", "crm", _upsert("Account")),
        Target("crm", "contact", "crm", _upsert("Contact")),
        Target("erp", "customer", "erp", _upsert("customer")),
        # A credit limit change writes the ERP customer's credit terms only (a partial customer body).
        Target("erp", "credit_limit", "erp", _upsert("customer")),
        Target("erp", "sales_order", "erp", _upsert("sales_order")),
        Target("erp", "invoice", "erp", _upsert("invoice")),
        Target("erp", "credit_note", "erp", _upsert("credit_note")),
        Target("erp", "payment_applied", "erp", _upsert("payment_applied")),
        Target("wms", "reservation", "wms", _wms_reservation),
    )
}


def target_for(target: str, entity: str) -> Target:
    try:
        return TARGETS[(target, entity)]
    except KeyError:
        known = ", ".join(f"{t}/{e}" for t, e in TARGETS)
        raise ValueError(f"no delivery for {target}/{entity} (known: {known})") from None
