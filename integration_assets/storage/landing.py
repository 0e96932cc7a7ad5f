"""Land pages of a source's list endpoint in the raw log: one immutable batch, provenance per record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import dagster as dg

from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.streams.balances import Balance
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.timestamps import to_iso_utc

# What a client's `stats.as_metadata()` adds to the details: requests sent and retries by cause.
HTTP_STATS_KEYS = (
    "http_requests",
    "retries_rate_limited",
    "retries_server_error",
    "retries_network",
    "retries_invalid_body",
    "cursor_restarts",
)


class PageLike(Protocol):
    url: str
    params: dict[str, str]
    page_number: int
    http_status: int
    records: list[dict[str, Any]]
    fetched_at: datetime


def land_pages(
    log: RawLog,
    source: str,
    stream: str,
    run_id: str,
    pages: Iterable[PageLike],
    position_of: Callable[[Any], Any | None],
    cursor_before: Any,
    render: Callable[[Any], Any],
    details: dict[str, Any],
    late_details: Callable[[], dict[str, Any]] = dict,
    records_per_batch: int | None = None,
) -> tuple[BatchManifest, dict[str, Any]]:
    """Stream every record of every page into one batch; commit it whole or not at all.

    `position_of(payload)` gives the record's cursor position (an `updated_at`, a `created`), or None
    when it has none we can read (the record still lands; staging will say what is wrong with it).
    The batch's manifest records `cursor_before` and `cursor_after` (the newest position seen, never
    behind `cursor_before`), rendered by `render`: the raw log itself says how far we have read.
    `late_details()` is read after the last page (request counts, retries).

    With `records_per_batch`, a poll bigger than that lands as several batches, cut at page
    boundaries once a batch holds that many records, so that staging and promotion (one transaction
    per batch) hold a part of a peak poll at a time, not all of it. Only the poll's last batch moves
    the cursor: if a page fails, the parts already committed stay (their records come back on the
    retry as exact duplicates, which staging counts and drops) and the next poll asks for the same
    window again. The returned details describe the whole poll (`batch_ids`, every page, every record).
    """
    started = time.monotonic()
    newest = None
    unreadable = unreadable_part = 0
    all_pages: list[dict[str, Any]] = []
    part_pages: list[dict[str, Any]] = []
    committed: list[BatchManifest] = []

    def batch_details(cursor_after: Any, part: int | None) -> dict[str, Any]:
        """The manifest details of the batch being committed (its own pages and records)."""
        return {
            **details,
            "run_id": run_id,
            **({"part": part} if part is not None else {}),
            "pages": part_pages,
            "records_from_pages": sum(p["records"] for p in part_pages),
            "unreadable_positions": unreadable_part,
            "cursor_before": render(cursor_before),
            "cursor_after": render(cursor_after),
            "extracted_at": to_iso_utc(datetime.now(UTC)),
        }

    writer = log.open_batch(source, stream)
    try:
        for page in pages:
            if records_per_batch and writer.records >= records_per_batch:
                # A part never moves the cursor: the poll's last batch does.
                committed.append(writer.commit(batch_details(cursor_before, len(committed) + 1)))
                writer = log.open_batch(source, stream)
                part_pages, unreadable_part = [], 0
            summary = {
                "page": page.page_number,
                "http_status": page.http_status,
                "records": len(page.records),
                **{
                    key: getattr(page, key)
                    for key in ("api_version", "call_limit", "has_more")
                    if hasattr(page, key)
                },
            }
            part_pages.append(summary)
            all_pages.append(summary)
            fetched_at = to_iso_utc(page.fetched_at)  # once per page, not per record
            for payload in page.records:
                writer.append(
                    {
                        "batch_id": writer.batch_id,
                        "record_index": writer.records,
                        "source_system": source,
                        "endpoint": page.url,
                        "request_params": page.params,
                        "page": page.page_number,
                        "fetched_at": fetched_at,
                        "http_status": page.http_status,
                        "payload_hash": payload_hash(payload),
                        "run_id": run_id,
                        "payload": payload,
                    }
                )
                position = position_of(payload)  # None: staged later as a quarantined record
                if position is None:
                    unreadable += 1
                    unreadable_part += 1
                elif newest is None or position > newest:
                    newest = position
        late = late_details()
        final = {
            **batch_details(
                cursor_before if newest is None or newest < cursor_before else newest,
                len(committed) + 1 if committed else None,
            ),
            "seconds": round(time.monotonic() - started, 3),
            **late,
        }
        manifest = writer.commit(final)
    except BaseException:
        writer.abort()
        raise
    committed.append(manifest)
    return manifest, {
        **final,
        "batch_ids": [batch.batch_id for batch in committed],
        "pages": all_pages,
        "records_from_pages": sum(p["records"] for p in all_pages),
        "records_landed": sum(batch.records for batch in committed),
        "unreadable_positions": unreadable,
    }


def landed_batch_metadata(
    manifest: BatchManifest, details: dict[str, Any], detail_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """What an extract asset reports about the batch it landed, so the UI shows every poll's books:
    where the batch is, how many records it holds, how far the cursor moved (and from which window
    start, for polls that have one), and the balance of records on the pages against records
    landed. `detail_keys` names the further `land_pages` details this asset reports as they are.
    """
    landed = details.get("records_landed", manifest.records)  # every batch of the poll
    balance = Balance(
        "records_landed",
        {"records_from_pages": details["records_from_pages"]},
        {"records_landed": landed},
    )
    window = {"window_start": details["window_start"]} if "window_start" in details else {}
    batch_ids = details.get("batch_ids", [manifest.batch_id])
    return {
        "batch_id": manifest.batch_id,
        "raw_file": dg.MetadataValue.path(str(manifest.path)),
        "records_landed": landed,
        **(
            {"batches_landed": len(batch_ids), "batch_ids": ", ".join(batch_ids)}
            if len(batch_ids) > 1
            else {}
        ),
        "pages": len(details["pages"]),
        **window,
        "cursor_before": details["cursor_before"],
        "cursor_after": details["cursor_after"],
        "balance": balance.as_text(),
        "balance_holds": balance.holds,
        **{key: details[key] for key in detail_keys},
    }


# --- streams polled by `updated_at` (Shopify orders, products): the cursor lives in the raw log ---

DEFAULT_START = "2000-01-01T00:00:00Z"


def updated_at_of(payload: object) -> datetime | None:
    """A record's `updated_at` in UTC, or None when it has none we can read."""
    from integration_assets.streams.timestamps import TimestampFormatError, parse_utc

    try:
        return parse_utc(payload.get("updated_at") if isinstance(payload, dict) else None)
    except TimestampFormatError:
        return None


def updated_at_cursor(
    log: RawLog, source: str, stream: str, initial: str = DEFAULT_START
) -> datetime:
    """Where the next poll starts: the newest `updated_at` the last committed batch saw, else `initial`."""
    from integration_assets.streams.timestamps import parse_utc

    latest = log.latest(source, stream)
    return parse_utc(latest.details["cursor_after"] if latest is not None else initial)
