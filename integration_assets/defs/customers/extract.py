"""raw/crm/accounts and raw/erp/customers: poll what changed and land every page in the raw log."""

from collections.abc import Callable, Iterable, Iterator
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
    HTTP_STATS_KEYS,
    land_pages,
    landed_batch_metadata,
    updated_at_cursor,
    updated_at_of,
)
from integration_assets.storage.resources import RawLogResource
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc, to_iso_utc
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient
from integration_assets.systems.pools import CRM_API_POOL, ERP_API_POOL

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


def land_changes(
    context: dg.AssetExecutionContext,
    config: CustomerExtractConfig,
    raw_log: RawLogResource,
    client: CrmClient | ErpClient,
    source: str,
    stream: str,
    url: str,
    changed_pages: Callable[[datetime], Iterator[FetchedPage]],
    position_of: Callable[[Any], datetime | None],
) -> dg.MaterializeResult:
    """Land what changed since the newest change seen (minus the lookback) as one batch.

    `changed_pages(since)` reads the client's pages from `since` on; the cursor lives in the raw
    log's manifests, so a failed poll lands nothing and asks for the same window again.
    """
    log = raw_log.log()
    cursor = updated_at_cursor(log, source, stream, config.initial_modified_after)
    since = window_start(cursor, config.lookback_minutes)
    manifest, details = land_pages(
        log,
        source,
        stream,
        context.run_id,
        changed_pages(since),
        position_of=position_of,
        cursor_before=cursor,
        render=to_iso_utc,
        details={"endpoint": url, "window_start": to_iso_utc(since)},
        late_details=lambda: {**client.stats.as_metadata(), "token_fetches": client.token_fetches},
    )
    detail_keys = ("unreadable_positions", *HTTP_STATS_KEYS, "token_fetches")
    return dg.MaterializeResult(metadata=landed_batch_metadata(manifest, details, detail_keys))


@dg.asset(
    key=RAW_CRM_ACCOUNTS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "crm", "pii": "true"},
    pool=CRM_API_POOL,
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
    url = crm.data_url("query")  # the first call fetches a session and learns the instance
    return land_changes(
        context,
        config,
        raw_log,
        crm,
        CRM_SOURCE,
        CRM_STREAM_NAME,
        url,
        lambda since: as_pages(
            crm.iter_accounts(modified_after=since),
            url,
            {"sobject": "Account", "LastModifiedDate_after": to_iso_utc(since)},
        ),
        position_of=last_modified_of,
    )


@dg.asset(
    key=RAW_ERP_CUSTOMERS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "erp", "pii": "true"},
    pool=ERP_API_POOL,
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
    url = erp.record_url("customer")
    return land_changes(
        context,
        config,
        raw_log,
        erp,
        ERP_SOURCE,
        ERP_STREAM_NAME,
        url,
        lambda since: as_pages(
            erp.iter_records("customer", updated_since=since),
            url,
            {"updated_since": to_iso_utc(since), "limit": str(erp.page_limit)},
            "offset",
        ),
        position_of=updated_at_of,
    )
