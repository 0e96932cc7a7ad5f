"""ops.source_signals: the source-change signals, read from and written to the warehouse.

The evidence comes from ops.audit_log (each endpoint's latest answer and notices over the lookback,
and the credentials' own expiry) and ops.schema_drift; the rules are `streams/source_signals.py`.
A signal is one row per key: first and last seen, cleared when its condition went, alerted when its
alert was posted. `open_source_signals` is the reader for summaries and the owners view.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import duckdb
import orjson

from integration_assets.storage.warehouse import table_exists
from integration_assets.streams.source_signals import (
    CredentialExpiry,
    DriftSeen,
    PathHistory,
    Signal,
    StoredSignal,
)

# Audit lines the watch itself writes (one per raised or cleared signal): not evidence.
SIGNAL_DIRECTION = "signal"

_PATHS_SQL = f"""
WITH answered AS (
    -- Record ids folded here already (external ids, numeric ids) so a day of per-record writes is
    -- a few rows, not one per record; normalise_path, which the rules apply, has the last word.
    SELECT audit_id, occurred_at, system, method,
           regexp_replace(
               regexp_replace(split_part(endpoint, '?', 1), '/eid:[^/]*', '/eid:{{id}}', 'g'),
               '/[0-9]+(\\.json)?(/|$)', '/{{id}}\\1\\2', 'g'
           ) AS url, status,
           response_short, notices, regexp_full_match(status, '2[0-9][0-9]') AS success
    FROM ops.audit_log
    WHERE occurred_at >= ? AND direction <> '{SIGNAL_DIRECTION}'
),
paths AS (
    SELECT system, method, url,
           arg_max(status, occurred_at) AS last_status,
           max(occurred_at) AS last_at,
           arg_max(audit_id, occurred_at) AS last_audit_id,
           arg_max(notices, occurred_at) AS last_notices,
           arg_max(response_short, occurred_at) AS last_response,
           max(occurred_at) FILTER (WHERE success) AS last_success_at,
           arg_max(audit_id, occurred_at) FILTER (WHERE success) AS last_success_audit_id
    FROM answered GROUP BY ALL
),
streaks AS (
    SELECT a.system, a.method, a.url, min(a.occurred_at) AS streak_since
    FROM answered a JOIN paths p USING (system, method, url)
    WHERE a.status = p.last_status AND (p.last_success_at IS NULL OR a.occurred_at > p.last_success_at)
    GROUP BY ALL
)
SELECT p.system, p.method, p.url, p.last_status, p.last_at, p.last_audit_id, p.last_notices,
       p.last_response, p.last_success_at, p.last_success_audit_id, s.streak_since
FROM paths p LEFT JOIN streaks s USING (system, method, url)
ORDER BY ALL
"""

# The credential's own expiry as the latest run that called the system saw it: a credential
# rotated to one without an expiry leaves no notice in the next run, and the old one stops counting.
_TOKEN_EXPIRY_SQL = f"""
WITH latest_run AS (
    SELECT system, arg_max(run_id, occurred_at) AS run_id FROM ops.audit_log
    WHERE occurred_at >= ? AND direction <> '{SIGNAL_DIRECTION}' GROUP BY system
)
SELECT a.system, json_extract_string(a.notices, '$.credential') AS credential,
       min(json_extract_string(a.notices, '$.credential_expires_at')) AS expires_at,
       arg_max(a.audit_id, a.occurred_at) AS audit_id
FROM ops.audit_log a JOIN latest_run l
  ON a.system = l.system AND a.run_id IS NOT DISTINCT FROM l.run_id
WHERE a.occurred_at >= ? AND json_extract_string(a.notices, '$.credential_expires_at') IS NOT NULL
GROUP BY ALL ORDER BY ALL
"""

_DRIFT_SQL = """
SELECT stream, contract, contract_version, kind, field, bool_or(breaking), any_value(owner),
       arg_min(detail, batch_id), count(*), min(detected_at), max(detected_at), min(notified_at)
FROM ops.schema_drift
GROUP BY stream, contract, contract_version, kind, field
ORDER BY stream, contract_version, kind, field
"""


def _aware(moment: datetime | None) -> datetime | None:
    # The warehouse keeps TIMESTAMP (no zone) in UTC.
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return orjson.loads(value)


def read_path_histories(con: duckdb.DuckDBPyConnection, since: datetime) -> list[PathHistory]:
    """Each (system, method, path) answered since `since`: its latest answer and success."""
    rows = con.execute(_PATHS_SQL, [_naive(since)]).fetchall()
    return [
        PathHistory(
            system=system,
            method=method,
            path=urlsplit(url).path or url,
            last_status=status,
            last_at=_aware(last_at),
            last_audit_id=audit_id,
            last_notices=_json(notices),
            last_response=response,
            last_success_at=_aware(success_at),
            last_success_audit_id=success_id,
            streak_since=_aware(streak),
        )
        for system, method, url, status, last_at, audit_id, notices, response, success_at, success_id, streak in rows
    ]


def read_token_expiries(con: duckdb.DuckDBPyConnection, since: datetime) -> list[CredentialExpiry]:
    """The credentials' own expiry (a JWT's exp), as the latest run that called each system saw it."""
    rows = con.execute(_TOKEN_EXPIRY_SQL, [_naive(since), _naive(since)]).fetchall()
    return [
        CredentialExpiry(
            system=system,
            credential=credential or "its credential",
            expires_at=_aware(datetime.fromisoformat(expires_at)),
            source="the token's own expiry (its exp claim)",
            evidence=(audit_id,),
        )
        for system, credential, expires_at, audit_id in rows
    ]


def read_drift(con: duckdb.DuckDBPyConnection) -> list[DriftSeen]:
    return [
        DriftSeen(
            stream=stream,
            contract=contract,
            contract_version=int(version),
            kind=kind,
            field=field_name,
            breaking=bool(breaking),
            owner=owner,
            detail=detail,
            batches=int(batches),
            first_seen_at=_aware(first),
            last_seen_at=_aware(last),
            notified_at=_aware(notified),
        )
        for stream, contract, version, kind, field_name, breaking, owner, detail, batches, first, last, notified in con.execute(
            _DRIFT_SQL
        ).fetchall()
    ]


def stored_signals(con: duckdb.DuckDBPyConnection) -> dict[str, StoredSignal]:
    return {
        key: StoredSignal(key, _aware(first), _aware(cleared), _aware(alerted))
        for key, first, cleared, alerted in con.execute(
            "SELECT signal_key, first_seen_at, cleared_at, alerted_at FROM ops.source_signals"
        ).fetchall()
    }


def save_signals(
    con: duckdb.DuckDBPyConnection,
    signals: Iterable[Signal],
    cleared: Iterable[str],
    posting: Iterable[str],
    now: datetime,
    run_id: str,
) -> None:
    """Upsert the detected signals (open: cleared_at NULL) and mark the cleared keys. The keys in
    `posting` are claimed for their alert (alerted_at = now: post after the commit); the others keep
    the alert time they had, or the one another poster recorded (the drift sensor's notified_at)."""
    claimed = set(posting)
    rows = [
        [
            signal.key,
            signal.kind,
            signal.system,
            signal.subject,
            signal.detail,
            signal.owner,
            signal.severity,
            orjson.dumps(list(signal.evidence)).decode(),
            _naive(signal.first_seen_at),
            _naive(max(signal.last_seen_at, signal.first_seen_at)),
            _naive(now if signal.key in claimed else signal.alerted_at),
            run_id,
        ]
        for signal in signals
    ]
    if rows:
        con.executemany(
            """
            INSERT INTO ops.source_signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)
            ON CONFLICT (signal_key) DO UPDATE SET
                detail = excluded.detail, owner = excluded.owner, severity = excluded.severity,
                evidence = excluded.evidence, first_seen_at = excluded.first_seen_at,
                last_seen_at = excluded.last_seen_at, cleared_at = NULL,
                alerted_at = COALESCE(excluded.alerted_at, ops.source_signals.alerted_at),
                run_id = excluded.run_id
            """,
            rows,
        )
    keys = list(cleared)
    if keys:
        con.execute(
            "UPDATE ops.source_signals SET cleared_at = ?, run_id = ? "
            "WHERE list_contains(?, signal_key) AND cleared_at IS NULL",
            [_naive(now), run_id, keys],
        )


def signal_rows(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> list[dict[str, Any]]:
    keys = list(keys)
    if not keys:
        return []
    cursor = con.execute(
        "SELECT signal_key, kind, system, subject, detail, owner FROM ops.source_signals "
        "WHERE list_contains(?, signal_key) ORDER BY signal_key",
        [keys],
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def open_source_signals(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every open source-change signal, errors first, then oldest first: key, kind, system,
    subject, detail, owner (an email; None when nobody is registered), severity, first_seen_at,
    last_seen_at (naive UTC) and alerted_at. Empty when the table does not exist yet."""
    if not table_exists(con, "ops.source_signals"):
        return []
    cursor = con.execute(
        "SELECT signal_key AS key, kind, system, subject, detail, owner, severity, first_seen_at, "
        "last_seen_at, alerted_at FROM ops.source_signals WHERE cleared_at IS NULL "
        "ORDER BY severity = 'warning', first_seen_at, signal_key"
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
