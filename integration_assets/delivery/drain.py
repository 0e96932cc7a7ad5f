"""Drain the due rows of one (target, entity) through a client, recording every attempt in the outbox.

Rows are sent oldest intent first, one per request or, where the target takes bulk writes
(`send_batch`), `batch_size` consecutive rows per request, each with its own outcome (two rows of
one record keep their order: the target writes a batch's records one after another). Outcomes are
written back in chunks, one transaction of two set-based statements per chunk (storage/outbox.py
`record_attempts`: the same end state as booking each attempt in turn), on a connection opened only
for that: no warehouse lock is held while waiting on a target. A chunk closes after
`book_every_seconds` or `book_every_writes`, whichever comes first: opening the DuckDB file costs
tens of milliseconds, so booking every 100 writes spent a quarter of a peak-day drain opening it
(benchmarks/README.md). A crash loses at most one chunk of bookkeeping, and even then nothing is
doubled: those rows are still due and are sent again with the same idempotency key, and every write
is an upsert by external id, so sending it again changes nothing at the target.

A circuit breaker stops a drain early when the target keeps failing (connection refused, timeouts,
5xx after the client's own retries): the rest stay due, untouched, for the next run, rather than each
burning an attempt against a target that is down. A credential the target refuses (even after one
token refresh) stops the drain at once and is raised after the bookkeeping is written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from integration_assets.storage import outbox as store
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams import outbox as rules
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets.systems.write_outcome import TargetError, WriteOutcome


@dataclass(frozen=True)
class DrainPolicy:
    max_attempts: int = (
        24  # a day of hourly runs before a write that keeps failing becomes a dead letter
    )
    breaker_threshold: int = 3  # consecutive "unavailable" outcomes that stop the drain
    # A bookkeeping transaction at least this often, and after at most this many writes: the most
    # a crash can leave unbooked (to be sent again, harmlessly, by the next run).
    book_every_seconds: float = 2.0
    book_every_writes: int = 1000


@dataclass
class DrainReport:
    due: int = 0
    attempted: int = 0
    deferred: int = 0  # not attempted: the breaker opened first
    outcomes: Counter = field(default_factory=Counter)  # delivered, rejected, conflict, ...
    statuses: Counter = field(default_factory=Counter)  # the rows' statuses after the attempt
    created: int = 0
    auto_resolved: int = 0
    breaker_open: bool = False
    breaker_reason: str = ""
    dead_letters: list[dict] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | bool | str]:
        return {
            "due": self.due,
            "attempted": self.attempted,
            "delivered": self.outcomes["delivered"],
            "documents_created": self.created,
            "dead_lettered": self.statuses[rules.DEAD],
            "retry_later": self.statuses[rules.FAILED],
            "deferred_by_breaker": self.deferred,
            "dead_letters_auto_resolved": self.auto_resolved,
            "breaker_open": self.breaker_open,
        }


def drain(
    warehouse: Warehouse,
    target: str,
    entity: str,
    send: Callable[[store.OutboxRow], WriteOutcome],
    run_id: str,
    policy: DrainPolicy = DrainPolicy(),
    keys: Iterable[str] | None = None,
    send_batch: Callable[[list[store.OutboxRow]], list[WriteOutcome]] | None = None,
    batch_size: int = 1,
) -> DrainReport:
    """Send every due row of target/entity (or only `keys`); return what happened."""
    with warehouse.connect() as con:
        rows = store.due(con, target, entity, keys)
    report = DrainReport(due=len(rows))
    pending: list[store.Attempt] = []
    booked_at = time.monotonic()
    consecutive_unavailable = 0
    size = max(1, batch_size) if send_batch is not None else 1
    try:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            if report.breaker_open:
                report.deferred += len(batch)
                continue
            outcomes = send_batch(batch) if send_batch is not None else [send(batch[0])]
            if len(outcomes) != len(batch):
                raise ValueError(f"{len(outcomes)} outcomes for a batch of {len(batch)} writes")
            attempted_at = utc_now_naive()
            for row, outcome in zip(batch, outcomes, strict=True):
                consecutive_unavailable = _book(
                    report,
                    pending,
                    row,
                    outcome,
                    attempted_at,
                    consecutive_unavailable,
                    target,
                    policy,
                )
            if (
                len(pending) >= policy.book_every_writes
                or time.monotonic() - booked_at >= policy.book_every_seconds
            ):
                report.auto_resolved += _write(warehouse, pending, run_id)
                pending = []
                booked_at = time.monotonic()
    except (
        TargetError
    ):  # auth refused, or an answer nobody can classify: book what happened, then fail
        report.auto_resolved += _write(warehouse, pending, run_id)
        raise
    report.auto_resolved += _write(warehouse, pending, run_id)
    return report


def _book(
    report: DrainReport,
    pending: list[store.Attempt],
    row: store.OutboxRow,
    outcome: WriteOutcome,
    attempted_at: datetime,
    consecutive_unavailable: int,
    target: str,
    policy: DrainPolicy,
) -> int:
    """Count one attempt's outcome, queue its booking, and return the unavailable streak after it."""
    report.attempted += 1
    report.outcomes[outcome.outcome] += 1
    if outcome.created:
        report.created += 1
    transition = rules.after_attempt(
        row.attempts,
        outcome.outcome,
        outcome.http_status,
        outcome.message,
        outcome.error_class,
        outcome.target_record_id,
        policy.max_attempts,
    )
    report.statuses[transition.status] += 1
    if transition.status == rules.DEAD:
        report.dead_letters.append(
            {
                "idempotency_key": row.idempotency_key,
                "external_id": row.external_id,
                "error_class": transition.error_class,
                "message": transition.target_message,
            }
        )
    pending.append(store.Attempt(row, transition, attempted_at))
    if outcome.outcome == rules.UNAVAILABLE:
        consecutive_unavailable += 1
        if consecutive_unavailable >= policy.breaker_threshold:
            report.breaker_open = True
            report.breaker_reason = (
                f"{target} unavailable for {consecutive_unavailable} writes in a row "
                f"({outcome.error_class}: {outcome.message})"
            )
        return consecutive_unavailable
    return 0


def _write(warehouse: Warehouse, attempts: list[store.Attempt], run_id: str) -> int:
    """Book one chunk of attempts in one transaction (two statements, whatever the chunk's size)."""
    if not attempts:
        return 0
    with warehouse.transaction() as con:
        return store.record_attempts(con, attempts, run_id)
