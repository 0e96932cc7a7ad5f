"""raw/crm/accounts and raw/erp/customers: poll what changed and land every page in the raw log."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from integration_assets.defs.customers.names import (
    CRM_SOURCE,
    CRM_STREAM_NAME,
    ERP_SOURCE,
    ERP_STREAM_NAME,
    GROUP,
    OWNER,
    RAW_CRM_ACCOUNTS,
    RAW_ERP_CUSTOMERS,
)
from integration_assets.storage.landing import (
    DEFAULT_START,
    land_pages,
    updated_at_cursor,
    updated_at_of,
)
from integration_assets.storage.raw_log import BatchManifest
from integration_assets.storage.resources import RawLogResource
from integration_assets.streams.balances import Balance
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc, to_iso_utc
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient

RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
FRESHNESS_POLICY = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
)


class CustomerExtractConfig(dg.Config):
    """How far back each poll re-reads before the newest change seen, and where the first poll starts."""

    lookback_minutes: int = 10
    initial_modified_after: str = DEFAULT_START


@dataclass(frozen=True)
class FetchedPage:
    """One page a client returned, with what the raw log keeps as its provenance."""

    url: str
    params: dict[str, str]
    page_number: int
    http_status: int
    records: list[dict[str, Any]]
    fetched_at: datetime


def as_pages(
    record_pages: Iterable[list[dict[str, Any]]],
    url: str,
    params: dict[str, str],
    offset_param: str | None = None,
) -> Iterator[FetchedPage]:
    """Wrap a client's pages of rows for `land_pages`.

    The clients raise on any answer but 200, so every page that arrives was a 200. With
    `offset_param`, each page's params say at which offset it was read (the ERP pages by offset).
    """
    offset = 0
    for number, records in enumerate(record_pages, start=1):
        page_params = {**params, offset_param: str(offset)} if offset_param else dict(params)
        yield FetchedPage(url, page_params, number, 200, records, datetime.now(UTC))
        offset += len(records)


def last_modified_of(payload: object) -> datetime | None:
    """A CRM row's `LastModifiedDate` in UTC, or None when it has none we can read."""
    try:
        return parse_utc(payload.get("LastModifiedDate") if isinstance(payload, dict) else None)
    except TimestampFormatError:
        return None


def window_start(cursor: datetime, lookback_minutes: int) -> datetime:
    # A change committed just before the last poll can carry an older timestamp than one it already
    # saw (clock skew, long transactions): re-reading a few minutes costs only duplicates, which
    # staging counts and drops.
    return cursor - timedelta(minutes=lookback_minutes)


def _result(manifest: BatchManifest, details: dict[str, Any]) -> dg.MaterializeResult:
    balance = Balance(
        "records_landed",
        {"records_from_pages": details["records_from_pages"]},
        {"records_landed": manifest.records},
    )
    return dg.MaterializeResult(
        metadata={
            "batch_id": manifest.batch_id,
            "raw_file": dg.MetadataValue.path(str(manifest.path)),
            "records_landed": manifest.records,
            "pages": len(details["pages"]),
            "window_start": details["window_start"],
            "cursor_before": details["cursor_before"],
            "cursor_after": details["cursor_after"],
            "unreadable_positions": details["unreadable_positions"],
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
            **{
                key: details[key]
                for key in (
                    "http_requests",
                    "retries_rate_limited",
                    "retries_server_error",
                    "retries_network",
                    "token_fetches",
                )
                if key in details
            },
        }
    )


@dg.asset(
    key=RAW_CRM_ACCOUNTS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "crm", "pii": "true"},
    freshness_policy=FRESHNESS_POLICY,
    retry_policy=RETRY_POLICY,
)
def raw_crm_accounts(
    context: dg.AssetExecutionContext,
    config: CustomerExtractConfig,
    crm: CrmClient,
    raw_log: RawLogResource,
) -> dg.MaterializeResult:
    """CRM Accounts exactly as the CRM's query returned them (`SELECT ... FROM Account WHERE
    LastModifiedDate > ...`): address, phone, segment and account manager, keyed by `External_Id__c`.

    Each poll asks from the newest `LastModifiedDate` seen (kept in the raw log's manifest) minus a
    lookback, and is one immutable batch with every record's provenance; the re-read accounts come
    back as exact duplicates that staging counts and drops.
    If this fails, re-materialize it: nothing was landed and the cursor did not move.
    """
    log = raw_log.log()
    cursor = updated_at_cursor(log, CRM_SOURCE, CRM_STREAM_NAME, config.initial_modified_after)
    since = window_start(cursor, config.lookback_minutes)
    url = crm.data_url("query")  # the first call fetches a session and learns the instance
    params = {"sobject": "Account", "LastModifiedDate_after": to_iso_utc(since)}
    manifest, details = land_pages(
        log,
        CRM_SOURCE,
        CRM_STREAM_NAME,
        context.run_id,
        as_pages(crm.iter_accounts(modified_after=since), url, params),
        position_of=last_modified_of,
        cursor_before=cursor,
        render=to_iso_utc,
        details={"endpoint": url, "window_start": to_iso_utc(since)},
        late_details=lambda: {**crm.stats.as_metadata(), "token_fetches": crm.token_fetches},
    )
    return _result(manifest, details)


@dg.asset(
    key=RAW_ERP_CUSTOMERS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "erp", "pii": "true"},
    freshness_policy=FRESHNESS_POLICY,
    retry_policy=RETRY_POLICY,
)
def raw_erp_customers(
    context: dg.AssetExecutionContext,
    config: CustomerExtractConfig,
    erp: ErpClient,
    raw_log: RawLogResource,
) -> dg.MaterializeResult:
    """ERP customer records exactly as the ERP listed them (`GET /api/v1/records/customer?updated_since=...`):
    credit limit and payment terms (the ERP owns both), billing address, email.

    Each poll asks from the newest `updated_at` seen (kept in the raw log's manifest) minus a
    lookback, and is one immutable batch with every record's provenance; the re-read records come
    back as exact duplicates that staging counts and drops.
    If this fails, re-materialize it: nothing was landed and the cursor did not move.
    """
    log = raw_log.log()
    cursor = updated_at_cursor(log, ERP_SOURCE, ERP_STREAM_NAME, config.initial_modified_after)
    since = window_start(cursor, config.lookback_minutes)
    url = erp.record_url("customer")
    params = {"updated_since": to_iso_utc(since), "limit": str(erp.page_limit)}
    manifest, details = land_pages(
        log,
        ERP_SOURCE,
        ERP_STREAM_NAME,
        context.run_id,
        as_pages(erp.iter_records("customer", updated_since=since), url, params, "offset"),
        position_of=updated_at_of,
        cursor_before=cursor,
        render=to_iso_utc,
        details={"endpoint": url, "window_start": to_iso_utc(since)},
        late_details=lambda: {**erp.stats.as_metadata(), "token_fetches": erp.token_fetches},
    )
    return _result(manifest, details)
