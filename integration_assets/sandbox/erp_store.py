"""The sandbox ERP's records in memory: upsert by external id with versions, references, conflicts.

One lock around every write, so a reference check and the write it allows are one step (two
concurrent deliveries can never both create the same document). Bodies reach `upsert` already
validated field by field (`erp_records.validate_record`); what is checked here needs the other
records: that referenced records exist, that an email belongs to one customer, that an invoiced
order's amounts and an invoice's amount do not change. An `Idempotency-Key` seen before with the
same request replays the first answer (so a retry after a lost response still reads `created`);
with a different request it is refused.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from integration_assets.sandbox.erp_records import (
    ERP_OWNED_CUSTOMER_FIELDS,
    RECORD_TYPES,
    FieldError,
    order_amounts_changed,
    references_of,
)

ID_PREFIXES = {
    "customer": "CUS",
    "sales_order": "SO",
    "invoice": "INV",
    "credit_note": "CN",
    "payment_applied": "PAY",
}


class ReferencesMissing(Exception):
    """The body names records that do not exist (yet): `reference_not_found` on each field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))
        self.errors = errors


class RecordConflict(Exception):
    """The write contradicts what the ERP holds; the message says what, without personal data."""


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


@dataclass
class StoredRecord:
    id: str
    type: str
    external_id: str
    version: int
    record: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def as_json(self, with_updated_at: bool = False) -> dict[str, Any]:
        body = {
            "id": self.id,
            "external_id": self.external_id,
            "type": self.type,
            "version": self.version,
            "record": copy.deepcopy(self.record),
        }
        if with_updated_at:
            body["updated_at"] = self.updated_at.isoformat(timespec="seconds")
        return body


@dataclass(frozen=True)
class UpsertResult:
    status: int  # 201 created, 200 updated or unchanged
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class WriteCounts:
    creates: int = 0
    updates: int = 0
    noops: int = 0
    replays: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "creates": self.creates,
            "updates": self.updates,
            "noops": self.noops,
            "replays": self.replays,
        }


@dataclass
class _KeyedAnswer:
    fingerprint: tuple[str, str, Any]
    result: UpsertResult


@dataclass
class ErpStore:
    """Every record by type and external id; thread-safe."""

    _records: dict[str, dict[str, StoredRecord]] = field(
        default_factory=lambda: {record_type: {} for record_type in RECORD_TYPES}
    )
    _answers_by_key: dict[str, _KeyedAnswer] = field(default_factory=dict)
    _next_number: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    writes: WriteCounts = field(default_factory=WriteCounts)
    # Kept as the records change, so no write or list page rescans every record of a type:
    # how many invoices name each sales order, the customers holding each email address (case
    # folded), and each type's records in list order.
    _invoices_per_order: Counter[str | None] = field(default_factory=Counter)
    _customers_by_email: dict[str, set[str]] = field(default_factory=dict)
    _listed: dict[str, list[StoredRecord] | None] = field(default_factory=dict)

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, record_type: str, external_id: str) -> StoredRecord | None:
        with self._lock:
            stored = self._records[record_type].get(external_id)
            return None if stored is None else copy.deepcopy(stored)

    def records(self, record_type: str) -> list[StoredRecord]:
        """Every record of a type, oldest change first (then by id: a stable page order)."""
        with self._lock:
            stored = list(self._records[record_type].values())
        return [copy.deepcopy(item) for item in sorted(stored, key=lambda r: (r.updated_at, r.id))]

    def page(
        self, record_type: str, since: datetime | None, offset: int, limit: int
    ) -> tuple[list[StoredRecord], int]:
        """One page of `records(record_type)` changed at or after `since`, and how many there are.

        Only the page is copied; the list order is kept between writes, and `since` is a binary
        search in it, so a page costs the same on page 1 and page 1,000.
        """
        with self._lock:
            listed = self._listed.get(record_type)
            if listed is None:
                listed = sorted(
                    self._records[record_type].values(), key=lambda r: (r.updated_at, r.id)
                )
                self._listed[record_type] = listed
            first = 0 if since is None else bisect.bisect_left(listed, since, key=_updated_at)
            total = len(listed) - first
            chosen = listed[first + offset : first + offset + limit]
            return [copy.deepcopy(item) for item in chosen], total

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {record_type: len(items) for record_type, items in self._records.items()}

    # ---- writes ---------------------------------------------------------------------------------
    def upsert(
        self,
        record_type: str,
        external_id: str,
        body: dict[str, Any],
        now: datetime,
        idempotency_key: str | None = None,
        credit_terms_only: bool = False,
    ) -> UpsertResult:
        """Create, update or leave unchanged; raises ReferencesMissing, RecordConflict or
        IdempotencyKeyReused. `credit_terms_only`: merge the ERP-owned customer fields into an
        existing customer instead of replacing the record."""
        fingerprint = (record_type, external_id, _canonical(body))
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._answers_by_key:
                earlier = self._answers_by_key[idempotency_key]
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was already used for a different request"
                    )
                self.writes.replays += 1
                return UpsertResult(
                    earlier.result.status, copy.deepcopy(earlier.result.body), replayed=True
                )
            stored = self._records[record_type].get(external_id)
            if credit_terms_only:
                if stored is None:
                    raise ReferencesMissing(
                        [
                            FieldError(
                                "external_id",
                                "reference_not_found",
                                "no customer with this external id to set credit terms on",
                            )
                        ]
                    )
                record = {**stored.record, **body}
            else:
                self._check_references(record_type, body)
                record = dict(body)
                if stored is not None and record_type == "customer":
                    # A full customer write replaces what we send, never the ERP's own terms.
                    for owned in (*ERP_OWNED_CUSTOMER_FIELDS, "currency"):
                        if owned in stored.record:
                            record[owned] = stored.record[owned]
            self._check_conflicts(record_type, external_id, stored, record)
            result = self._write(record_type, external_id, stored, record, now)
            if idempotency_key is not None:
                self._answers_by_key[idempotency_key] = _KeyedAnswer(fingerprint, result)
            return UpsertResult(result.status, copy.deepcopy(result.body))

    def seed(
        self, record_type: str, external_id: str, record: dict[str, Any], now: datetime
    ) -> None:
        """Put a record in place as version 1, as if the ERP had always held it (scenario seeds)."""
        with self._lock:
            if external_id in self._records[record_type]:
                raise ValueError(f"{record_type} {external_id!r} is seeded twice")
            self._write(record_type, external_id, None, dict(record), now)

    def _write(
        self,
        record_type: str,
        external_id: str,
        stored: StoredRecord | None,
        record: dict[str, Any],
        now: datetime,
    ) -> UpsertResult:
        if record_type == "invoice":
            if stored is not None:
                self._invoices_per_order[stored.record.get("sales_order_eid")] -= 1
            self._invoices_per_order[record.get("sales_order_eid")] += 1
        if record_type == "customer":
            if stored is not None:
                self._customers_by_email.get(_email_key(stored.record), set()).discard(external_id)
            self._customers_by_email.setdefault(_email_key(record), set()).add(external_id)
        if stored is None:
            self._listed[record_type] = None  # a new record: the list order is made again
            number = self._next_number.get(record_type, 0) + 1
            self._next_number[record_type] = number
            stored = StoredRecord(
                id=f"{ID_PREFIXES[record_type]}-{number:06d}",
                type=record_type,
                external_id=external_id,
                version=1,
                record=copy.deepcopy(record),
                created_at=now,
                updated_at=now,
            )
            self._records[record_type][external_id] = stored
            self.writes.creates += 1
            return UpsertResult(201, {**stored.as_json(), "created": True})
        if stored.record == record:
            self.writes.noops += 1
        else:
            stored.record = copy.deepcopy(record)
            stored.version += 1
            stored.updated_at = now
            self._listed[record_type] = None  # its updated_at moved: the list order is made again
            self.writes.updates += 1
        return UpsertResult(200, {**stored.as_json(), "created": False})

    def _check_references(self, record_type: str, body: dict[str, Any]) -> None:
        missing = [
            FieldError(
                reference.field,
                "reference_not_found",
                f"no {reference.record_type} with this external id",
            )
            for reference in references_of(record_type, body)
            if reference.external_id not in self._records[reference.record_type]
        ]
        if missing:
            raise ReferencesMissing(missing)

    def _check_conflicts(
        self,
        record_type: str,
        external_id: str,
        stored: StoredRecord | None,
        record: dict[str, Any],
    ) -> None:
        if record_type == "customer" and isinstance(record.get("email"), str):
            holders = self._customers_by_email.get(_email_key(record), set()) - {external_id}
            if holders:
                raise RecordConflict(
                    f"the email address is already used by customer {min(holders)!r}"
                )
        if stored is None:
            return
        if record_type == "sales_order" and self._is_invoiced(external_id):
            changed = order_amounts_changed(stored.record, record)
            if changed:
                raise RecordConflict(
                    f"sales order {external_id!r} is already invoiced; its "
                    f"{', '.join(changed)} can no longer change"
                )
        if record_type == "invoice":
            changed = [
                key for key in ("amount", "currency") if stored.record.get(key) != record.get(key)
            ]
            if changed:
                raise RecordConflict(
                    f"invoice {external_id!r} is issued; its {' and '.join(changed)} cannot "
                    "change (issue a credit note instead)"
                )

    def _is_invoiced(self, order_external_id: str) -> bool:
        return self._invoices_per_order[order_external_id] > 0


def _email_key(record: dict[str, Any]) -> str:
    """How customers are told apart by email: case folded (no email is the empty string)."""
    return str(record.get("email", "")).casefold()


def _updated_at(stored: StoredRecord) -> datetime:
    return stored.updated_at


def _canonical(value: Any) -> Any:
    """A hashable, order-insensitive form of a JSON value (for comparing requests)."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), _canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_canonical(item) for item in value)
    return value
