"""`landed_batch_metadata`: the books every extract asset shows for the batch it landed."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest

from integration_assets.storage.landing import (
    HTTP_STATS_KEYS,
    land_pages,
    landed_batch_metadata,
    updated_at_of,
)
from integration_assets.storage.raw_log import RawLog
from integration_assets.streams.timestamps import to_iso_utc

FETCHED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
BEFORE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STATS = {
    "http_requests": 3,
    "retries_rate_limited": 1,
    "retries_server_error": 0,
    "retries_network": 0,
    "retries_invalid_body": 2,
    "cursor_restarts": 1,
    "retry_wait_seconds": 0.5,
}


@dataclass
class Page:
    page_number: int
    records: list[dict[str, Any]]
    url: str = "http://127.0.0.1/records"
    params: dict[str, str] = field(default_factory=dict)
    http_status: int = 200
    fetched_at: datetime = FETCHED


def land(tmp_path, details):
    pages = [
        Page(1, [{"id": 1, "updated_at": "2026-11-20T13:00:00Z"}, {"id": 2}]),
        Page(2, [{"id": 3, "updated_at": "2026-11-20T13:30:00Z"}]),
    ]
    return land_pages(
        RawLog(tmp_path),
        "erp",
        "customers",
        "run-1",
        pages,
        position_of=updated_at_of,
        cursor_before=BEFORE,
        render=to_iso_utc,
        details=details,
        late_details=lambda: dict(STATS),
    )


def test_the_batch_its_cursor_and_its_balance_with_the_details_asked_for(tmp_path):
    manifest, details = land(tmp_path, {"window_start": "2026-11-20T11:50:00Z"})

    metadata = landed_batch_metadata(manifest, details, ("unreadable_positions", *HTTP_STATS_KEYS))

    assert metadata == {
        "batch_id": manifest.batch_id,
        "raw_file": dg.MetadataValue.path(str(manifest.path)),
        "records_landed": 3,
        "pages": 2,
        "window_start": "2026-11-20T11:50:00Z",
        "cursor_before": "2026-11-20T12:00:00Z",
        "cursor_after": "2026-11-20T13:30:00Z",
        "balance": "records_from_pages (3) = records_landed (3): holds",
        "balance_holds": True,
        "unreadable_positions": 1,
        "http_requests": 3,
        "retries_rate_limited": 1,
        "retries_server_error": 0,
        "retries_network": 0,
        "retries_invalid_body": 2,
        "cursor_restarts": 1,
    }


def test_a_poll_without_a_window_reports_none_and_a_short_batch_does_not_balance(tmp_path):
    manifest, details = land(tmp_path, {"created_gte": 0})
    short = {**details, "records_from_pages": details["records_from_pages"] + 1}

    metadata = landed_batch_metadata(manifest, short)

    assert "window_start" not in metadata and "http_requests" not in metadata
    assert metadata["balance_holds"] is False
    assert metadata["balance"].endswith("DOES NOT HOLD (off by 1)")


def pages_of(sizes: list[int]) -> list[Page]:
    """Pages of the given sizes; record n is updated n minutes after 13:00."""
    pages, n = [], 0
    for number, size in enumerate(sizes, start=1):
        records = []
        for _ in range(size):
            records.append({"id": n, "updated_at": to_iso_utc(BEFORE.replace(hour=13, minute=n))})
            n += 1
        pages.append(Page(number, records))
    return pages


def land_split(log: RawLog, pages, per_batch: int):
    return land_pages(
        log,
        "storefront",
        "orders",
        "run-1",
        pages,
        position_of=updated_at_of,
        cursor_before=BEFORE,
        render=to_iso_utc,
        details={},
        late_details=lambda: {"orders_at_source": 9},
        records_per_batch=per_batch,
    )


def test_a_peak_poll_lands_as_batches_cut_at_pages_and_only_the_last_moves_the_cursor(tmp_path):
    log = RawLog(tmp_path)
    manifest, details = land_split(log, pages_of([2, 2, 3, 1, 1]), per_batch=4)
    batches = log.batches("storefront", "orders")
    assert [b.records for b in batches] == [4, 4, 1]  # cut once a batch holds 4, at a page's end
    assert [b.batch_id for b in batches] == details["batch_ids"] and batches[-1] == manifest
    assert [b.details["cursor_after"] for b in batches] == [
        to_iso_utc(BEFORE),
        to_iso_utc(BEFORE),
        "2026-11-20T13:08:00Z",
    ]
    assert (
        "orders_at_source" in batches[-1].details and "orders_at_source" not in batches[0].details
    )
    ids = [r["payload"]["id"] for b in batches for r in log.read_records(b)]
    assert ids == list(range(9))  # every record once, in page order
    metadata = landed_batch_metadata(manifest, details)
    assert (metadata["records_landed"], metadata["batches_landed"], metadata["pages"]) == (9, 3, 5)
    assert metadata["balance_holds"]


def test_a_failed_page_keeps_the_parts_already_landed_and_the_cursor_where_it_was(tmp_path):
    log = RawLog(tmp_path)

    def failing():
        yield from pages_of([3, 3])
        raise ConnectionError("the storefront went away")

    with pytest.raises(ConnectionError):
        land_split(log, failing(), per_batch=3)
    (part,) = log.batches("storefront", "orders")  # the open batch was discarded
    assert part.records == 3 and part.details["cursor_after"] == to_iso_utc(BEFORE)
    assert not list((tmp_path / "storefront" / "orders").glob(".*.tmp"))
