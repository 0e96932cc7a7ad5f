"""Measure the success metrics from the warehouse: one value per metric and scope, with its counts.

Every figure is read from tables the pipeline already keeps (staging.batches, core.promoted_batches,
staging.warehouse_files, ops.audit_log, ops.outbox, ops.mapping_quarantine, ops.operator_actions,
core.payment_reconciliation, core.inventory_drift), so a number can always be traced to rows.
Times are this pipeline's clock (UTC): when a batch was staged or promoted, when a write was
confirmed, when a person acted. The sources' own timestamps are not compared with it: the sandbox
systems run on a scenario clock, and real systems' clocks drift.

A table that does not exist yet (a fresh warehouse) reads as empty: the metric is "no data", which
is shown and never judged as met or missed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb

from integration_assets.health.metrics import SOURCE, TARGET, TARGETS
from integration_assets.storage.warehouse import table_exists

# The landing moment is in every raw batch id: raw/<source>/<stream>/<YYYYmmddTHHMMSSffffff>Z-<hash>.
LANDED_AT = re.compile(r"raw/[^#()\s]+/(\d{8}T\d{12})Z-")
# An attempt that worked: a 2xx or 3xx answer, or a warehouse file picked up from the inbox (landed,
# or recognised as a duplicate drop: both are the inbox answering).
OK_STATUS_SQL = "(regexp_full_match(status, '[23][0-9][0-9]') OR status IN ('landed', 'duplicate'))"
WAREHOUSE_FILES = "warehouse/files"


@dataclass(frozen=True)
class Measure:
    metric: str
    scope: str  # source:<stream> | target:<system>
    value: float | None  # None: no data to measure
    detail: str  # the counts behind the value, for a person


def source(stream: str) -> str:
    return f"{SOURCE}:{stream}"


def target(system: str) -> str:
    return f"{TARGET}:{system}"


def stream_system(stream: str) -> str:
    """The system a stream is read from, by its audit-trail name: storefront/orders -> storefront."""
    return stream.split("/", 1)[0]


def landed_at(source_ref: str) -> datetime | None:
    """When the raw batch a source reference points into was landed (naive UTC), or None."""
    found = LANDED_AT.search(source_ref or "")
    return datetime.strptime(found.group(1), "%Y%m%dT%H%M%S%f") if found else None


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` 0.95 for p95) of a non-empty list (pure)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def _rows(con: duckdb.DuckDBPyConnection, table: str, sql: str, params=()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall() if table_exists(con, table) else []


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 3)


def measure_all(
    con: duckdb.DuckDBPyConnection, streams: Iterable[str], now: datetime, window_hours: int
) -> list[Measure]:
    """Every metric for every stream in `streams` (plus any other stream staged) and every target,
    as of `now` (naive UTC) over the `window_hours` before it."""
    since = now - timedelta(hours=window_hours)
    seen = {
        row[0]
        for row in _rows(con, "staging.batches", "SELECT DISTINCT stream FROM staging.batches")
    }
    all_streams = sorted(set(streams) | seen)
    measures: list[Measure] = []
    measures += freshness(con, all_streams, now)
    measures += source_error_rates(con, all_streams, since)
    measures += source_quarantine_rates(con, all_streams, since)
    measures += reconciliation_match_rates(con)
    measures += source_records_per_run(con, all_streams, since)
    measures += target_latency(con, since)
    measures += target_error_rates(con, since)
    measures += target_quarantine_rates(con, since)
    measures += dead_letters(con, now)
    measures += manual_interventions(con, since)
    measures += target_records_per_run(con, since)
    return measures


# --- sources ---------------------------------------------------------------------------------------


def freshness(con: duckdb.DuckDBPyConnection, streams: list[str], now: datetime) -> list[Measure]:
    """Hours since each stream last promoted a record: into core (core.promoted_batches, versions
    applied) where the stream is promoted there, else past its staging checkpoint (a batch with
    records staged; a warehouse file staged with rows)."""
    newest: dict[str, datetime] = {}
    how: dict[str, str] = {}
    for stream, at in _rows(
        con,
        "staging.batches",
        "SELECT stream, max(staged_at) FROM staging.batches WHERE staged > 0 GROUP BY stream",
    ):
        newest[stream], how[stream] = at, "staged"
    for stream, at in _rows(
        con,
        "core.promoted_batches",
        "SELECT stream, max(promoted_at) FROM core.promoted_batches WHERE applied > 0 GROUP BY stream",
    ):
        newest[stream], how[stream] = at, "promoted to core"
    for (at,) in _rows(
        con,
        "staging.warehouse_files",
        "SELECT max(staged_at) FROM staging.warehouse_files WHERE status = 'staged' AND rows > 0",
    ):
        if at is not None:
            newest[WAREHOUSE_FILES], how[WAREHOUSE_FILES] = at, "staged"
    measures = []
    for stream in streams:
        at = newest.get(stream)
        measures.append(
            Measure(
                "freshness_hours",
                source(stream),
                None if at is None else _hours(now - at),
                "no record promoted yet"
                if at is None
                else f"newest record {how[stream]} at {at.isoformat(timespec='seconds')} UTC",
            )
        )
    return measures


def _error_rates(
    con: duckdb.DuckDBPyConnection, direction: str, since: datetime
) -> dict[str, tuple[int, int, int]]:
    """system -> (attempts, failed, throttled) in the audit trail since `since`, one direction. A
    429 is throttling the protocol asks us to wait out (and we do): counted apart, not as failed."""
    return {
        system: (int(total), int(failed), int(throttled))
        for system, total, failed, throttled in _rows(
            con,
            "ops.audit_log",
            f"SELECT system, count(*), count(*) FILTER (WHERE NOT {OK_STATUS_SQL} AND status <> '429'), "
            "count(*) FILTER (WHERE status = '429') FROM ops.audit_log "
            "WHERE direction = ? AND occurred_at >= ? GROUP BY system",
            (direction, since),
        )
    }


def _rate(metric: str, scope: str, part: int, whole: int, what: str, of: str) -> Measure:
    return Measure(
        metric,
        scope,
        round(part / whole, 6) if whole else None,
        f"{part} {what} of {whole} {of}" if whole else f"no {of} in the window",
    )


def _error_rate(scope: str, counts: tuple[int, int, int], attempts: str) -> Measure:
    total, failed, throttled = counts
    measure = _rate("error_rate", scope, failed, total, "failed", attempts)
    if throttled:
        return replace(measure, detail=f"{measure.detail} ({throttled} throttled: 429)")
    return measure


def source_error_rates(
    con: duckdb.DuckDBPyConnection, streams: list[str], since: datetime
) -> list[Measure]:
    """Failed read attempts to the stream's system: a stream shares its system's rate."""
    rates = _error_rates(con, "inbound", since)
    return [
        _error_rate(
            source(stream),
            rates.get(stream_system(stream), (0, 0, 0)),
            f"read attempts to {stream_system(stream)}",
        )
        for stream in streams
    ]


def source_quarantine_rates(
    con: duckdb.DuckDBPyConnection, streams: list[str], since: datetime
) -> list[Measure]:
    """Records quarantined of records read by the batches staged in the window; for the
    warehouse, files quarantined of the files staged or quarantined (duplicates are not read)."""
    counts = {
        stream: (int(read), int(quarantined))
        for stream, read, quarantined in _rows(
            con,
            "staging.batches",
            "SELECT stream, sum(records_read), sum(quarantined) FROM staging.batches "
            "WHERE staged_at >= ? GROUP BY stream",
            (since,),
        )
    }
    for files, quarantined in _rows(
        con,
        "staging.warehouse_files",
        "SELECT count(*) FILTER (WHERE status <> 'duplicate'), count(*) FILTER (WHERE status = 'quarantined') "
        "FROM staging.warehouse_files WHERE staged_at >= ?",
        (since,),
    ):
        counts[WAREHOUSE_FILES] = (int(files), int(quarantined))
    of = {WAREHOUSE_FILES: "files read"}
    return [
        _rate(
            "quarantine_rate",
            source(stream),
            counts.get(stream, (0, 0))[1],
            counts.get(stream, (0, 0))[0],
            "quarantined",
            of.get(stream, "records read"),
        )
        for stream in streams
    ]


def reconciliation_match_rates(con: duckdb.DuckDBPyConnection) -> list[Measure]:
    """Money (on payments/charges): orders whose every difference from the payment provider and its
    payouts is explained by a rule, of the orders reconciled. Stock (on warehouse/files): counts
    that agree with the ledger or whose difference a rule explains, of the counts taken."""
    measures = []
    for orders, explained in _rows(
        con,
        "core.payment_reconciliation",
        "SELECT count(*), count(*) FILTER (WHERE all_explained) FROM "
        "(SELECT order_id, bool_and(explained) AS all_explained FROM core.payment_reconciliation GROUP BY order_id)",
    ):
        measures.append(
            _rate(
                "reconciliation_match_rate",
                source("payments/charges"),
                int(explained),
                int(orders),
                "agree or explained",
                "orders reconciled",
            )
        )
    for counts, agreeing in _rows(
        con,
        "core.inventory_drift",
        "SELECT count(*), count(*) FILTER (WHERE delta = 0 OR cause IS NOT NULL) FROM core.inventory_drift",
    ):
        measures.append(
            _rate(
                "reconciliation_match_rate",
                source(WAREHOUSE_FILES),
                int(agreeing),
                int(counts),
                "agree or explained",
                "stock counts",
            )
        )
    return measures


def source_records_per_run(
    con: duckdb.DuckDBPyConnection, streams: list[str], since: datetime
) -> list[Measure]:
    """The most records one run read from the stream in the window (and the runs and mean)."""
    per_stream: dict[str, list[int]] = defaultdict(list)
    for stream, records in _rows(
        con,
        "staging.batches",
        "SELECT stream, sum(records_read) FROM staging.batches WHERE staged_at >= ? "
        "GROUP BY stream, staged_run_id",
        (since,),
    ):
        per_stream[stream].append(int(records))
    for (records,) in _rows(
        con,
        "staging.warehouse_files",
        "SELECT sum(rows) FROM staging.warehouse_files WHERE staged_at >= ? AND status = 'staged' GROUP BY run_id",
        (since,),
    ):
        per_stream[WAREHOUSE_FILES].append(int(records))
    return [
        _per_run("records_per_run", source(stream), per_stream.get(stream, []), "records read")
        for stream in streams
    ]


def _per_run(metric: str, scope: str, per_run: list[int], what: str) -> Measure:
    if not per_run:
        return Measure(metric, scope, None, "no run in the window")
    mean = sum(per_run) / len(per_run)
    return Measure(
        metric,
        scope,
        float(max(per_run)),
        f"{len(per_run)} run(s), at most {max(per_run)} and {mean:.1f} on average {what}",
    )


# --- targets ---------------------------------------------------------------------------------------


def target_latency(con: duckdb.DuckDBPyConnection, since: datetime) -> list[Measure]:
    """p95 minutes from the source change reaching the integration (its raw batch landing, named in
    the write's source reference) to the target's confirmation (sent_at), over the writes confirmed
    in the window. A write built from the golden record has no raw batch in its reference: it is
    timed from when it was enqueued (the golden record changed in that run)."""
    by_target: dict[str, list[float]] = defaultdict(list)
    from_enqueue: dict[str, int] = defaultdict(int)
    for system, sent_at, enqueued_at, source_ref in _rows(
        con,
        "ops.outbox",
        "SELECT target, sent_at, enqueued_at, source_ref FROM ops.outbox "
        "WHERE status = 'sent' AND sent_at >= ?",
        (since,),
    ):
        start = landed_at(source_ref)
        if start is None:
            start = enqueued_at
            from_enqueue[system] += 1
        by_target[system].append((sent_at - start).total_seconds() / 60)
    measures = []
    for system in TARGETS:
        minutes = by_target.get(system, [])
        if not minutes:
            measures.append(
                Measure(
                    "latency_p95_minutes", target(system), None, "no write confirmed in the window"
                )
            )
            continue
        p95 = round(percentile(minutes, 0.95), 2)
        measures.append(
            Measure(
                "latency_p95_minutes",
                target(system),
                p95,
                f"{len(minutes)} writes confirmed: p50 {percentile(minutes, 0.5):.1f} min, "
                f"p95 {p95:.1f} min, max {max(minutes):.1f} min"
                + (
                    f" ({from_enqueue[system]} timed from enqueue: no raw batch in their reference)"
                    if from_enqueue.get(system)
                    else ""
                ),
            )
        )
    return measures


def target_error_rates(con: duckdb.DuckDBPyConnection, since: datetime) -> list[Measure]:
    rates = _error_rates(con, "outbound", since)
    return [
        _error_rate(target(system), rates.get(system, (0, 0, 0)), f"write attempts to {system}")
        for system in TARGETS
    ]


def target_quarantine_rates(con: duckdb.DuckDBPyConnection, since: datetime) -> list[Measure]:
    """Writes the mapping cannot build now (ops.mapping_quarantine), of those plus the writes
    enqueued in the window."""
    not_built = dict(
        _rows(
            con,
            "ops.mapping_quarantine",
            "SELECT target, count(*) FROM ops.mapping_quarantine GROUP BY target",
        )
    )
    enqueued = dict(
        _rows(
            con,
            "ops.outbox",
            "SELECT target, count(*) FROM ops.outbox WHERE enqueued_at >= ? GROUP BY target",
            (since,),
        )
    )
    return [
        _rate(
            "quarantine_rate",
            target(system),
            int(not_built.get(system, 0)),
            int(not_built.get(system, 0)) + int(enqueued.get(system, 0)),
            "not built",
            "writes wanted",
        )
        for system in TARGETS
    ]


def dead_letters(con: duckdb.DuckDBPyConnection, now: datetime) -> list[Measure]:
    """Open dead letters per target, and how long the oldest has waited (0 when none)."""
    if not table_exists(con, "ops.outbox"):
        return [
            Measure(metric, target(system), None, "no outbox yet")
            for system in TARGETS
            for metric in ("dead_letters_open", "dead_letter_age_hours")
        ]
    found = {
        system: (int(n), oldest)
        for system, n, oldest in con.execute(
            "SELECT target, count(*), min(coalesce(dead_at, last_attempt_at, enqueued_at)) FROM ops.outbox "
            "WHERE status = 'dead' AND resolved_at IS NULL GROUP BY target"
        ).fetchall()
    }
    measures = []
    for system in TARGETS:
        count, oldest = found.get(system, (0, None))
        measures.append(
            Measure(
                "dead_letters_open", target(system), float(count), f"{count} open dead letter(s)"
            )
        )
        measures.append(
            Measure(
                "dead_letter_age_hours",
                target(system),
                0.0 if oldest is None else _hours(now - oldest),
                "none open"
                if oldest is None
                else f"the oldest dead since {oldest.isoformat(timespec='seconds')} UTC",
            )
        )
    return measures


def manual_interventions(con: duckdb.DuckDBPyConnection, since: datetime) -> list[Measure]:
    """A person's decisions on the target's writes in the window, by action."""
    if not (table_exists(con, "ops.operator_actions") and table_exists(con, "ops.outbox")):
        return [
            Measure("manual_interventions", target(system), None, "no outbox yet")
            for system in TARGETS
        ]
    by_target: dict[str, dict[str, int]] = defaultdict(dict)
    for system, action, n in con.execute(
        "SELECT o.target, a.action, count(*) FROM ops.operator_actions a "
        "JOIN ops.outbox o USING (idempotency_key) WHERE a.acted_at >= ? GROUP BY ALL ORDER BY ALL",
        [since],
    ).fetchall():
        by_target[system][action] = int(n)
    measures = []
    for system in TARGETS:
        actions = by_target.get(system, {})
        total = sum(actions.values())
        detail = ", ".join(f"{action} {n}" for action, n in actions.items()) or "none"
        measures.append(Measure("manual_interventions", target(system), float(total), detail))
    return measures


def target_records_per_run(con: duckdb.DuckDBPyConnection, since: datetime) -> list[Measure]:
    """The most writes one run confirmed at the target in the window."""
    per_target: dict[str, list[int]] = defaultdict(list)
    for system, n in _rows(
        con,
        "ops.outbox",
        "SELECT target, count(*) FROM ops.outbox WHERE status = 'sent' AND sent_at >= ? "
        "GROUP BY target, last_run_id",
        (since,),
    ):
        per_target[system].append(int(n))
    return [
        _per_run("records_per_run", target(system), per_target.get(system, []), "writes confirmed")
        for system in TARGETS
    ]
