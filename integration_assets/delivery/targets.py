"""How each outbox (target, entity) is written: which client call, which record type or sObject.

The outbox row carries the mapped payload; `send` turns one row into one upsert by external id, with
the row's idempotency key on the request, and returns the client's WriteOutcome. Where the target
takes bulk writes (the ERP's and the WMS's batch endpoints), `send_batch` writes up to the
client's `batch_size` rows in one request and returns one outcome per row, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from integration_assets.delivery.drain import DrainPolicy, DrainReport, drain
from integration_assets.storage.outbox import OutboxRow
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.bulk import RecordWrite
from integration_assets.systems.write_outcome import WriteOutcome

BatchSend = Callable[[Any, list[OutboxRow]], list[WriteOutcome]]


@dataclass(frozen=True)
class Target:
    """One (target, entity) pair of the outbox and the client call that writes it."""

    target: str
    entity: str
    resource_key: str  # the Dagster resource holding the client
    send: Callable[[Any, OutboxRow], WriteOutcome]
    send_batch: BatchSend | None = None

    def batch_size(self, client: Any) -> int:
        """Rows per request: the client's `batch_size` where the target takes bulk writes, else 1."""
        return max(1, int(getattr(client, "batch_size", 1))) if self.send_batch else 1

    def drain(
        self,
        warehouse: Warehouse,
        client: Any,
        run_id: str,
        policy: DrainPolicy | None = None,
        keys: Iterable[str] | None = None,
    ) -> DrainReport:
        """Send the due rows of this target/entity (or only `keys`) through `client`: in bulk
        writes where the target takes them and the client's `batch_size` is above 1, else one
        single write per row (a `batch_size` of 1 never calls the bulk endpoint)."""
        send_batch, size = self.send_batch, self.batch_size(client)
        return drain(
            warehouse,
            self.target,
            self.entity,
            lambda row: self.send(client, row),
            run_id,
            policy or DrainPolicy(),
            keys,
            send_batch=None
            if send_batch is None or size == 1
            else (lambda rows: send_batch(client, rows)),
            batch_size=size,
        )


def _upsert(kind: str) -> Callable[[Any, OutboxRow], WriteOutcome]:
    """An upsert by external id of `kind` (an ERP record type, a CRM sObject)."""

    def send(client: Any, row: OutboxRow) -> WriteOutcome:
        return client.upsert(kind, row.external_id, row.payload_to_send(), row.idempotency_key)

    return send


def _erp_upsert_many(record_type: str) -> BatchSend:
    """A bulk upsert by external id of ERP records of `record_type`."""

    def send_batch(client: Any, rows: list[OutboxRow]) -> list[WriteOutcome]:
        return client.upsert_many(record_type, _record_writes(rows))

    return send_batch


def _record_writes(rows: list[OutboxRow]) -> list[RecordWrite]:
    return [
        RecordWrite(row.external_id, row.payload_to_send(), row.idempotency_key) for row in rows
    ]


def _erp(entity: str, record_type: str) -> Target:
    return Target("erp", entity, "erp", _upsert(record_type), _erp_upsert_many(record_type))


def _wms_reservation(client: Any, row: OutboxRow) -> WriteOutcome:
    return client.put_reservation(row.external_id, row.payload_to_send(), row.idempotency_key)


def _wms_reservations(client: Any, rows: list[OutboxRow]) -> list[WriteOutcome]:
    return client.put_reservations(_record_writes(rows))


TARGETS: dict[tuple[str, str], Target] = {
    (target.target, target.entity): target
    for target in (
        Target("crm", "account", "crm", _upsert("Account")),
        Target("crm", "contact", "crm", _upsert("Contact")),
        _erp("customer", "customer"),
        # A credit limit change writes the ERP customer's credit terms only (a partial customer body).
        _erp("credit_limit", "customer"),
        _erp("sales_order", "sales_order"),
        _erp("invoice", "invoice"),
        _erp("credit_note", "credit_note"),
        _erp("payment_applied", "payment_applied"),
        Target("wms", "reservation", "wms", _wms_reservation, _wms_reservations),
    )
}


def target_for(target: str, entity: str) -> Target:
    try:
        return TARGETS[(target, entity)]
    except KeyError:
        known = ", ".join(f"{t}/{e}" for t, e in TARGETS)
        raise ValueError(f"no delivery for {target}/{entity} (known: {known})") from None
