"""Storefront client: the Shopify Admin REST API, as Shopify speaks it.

Versioned paths, `X-Shopify-Access-Token`, `status=any`, `updated_at_min`, Link-header `page_info`
cursor pagination (follow the `next` URL exactly as given), the leaky bucket (429 + Retry-After),
retries with jittered backoff for 429/5xx/timeouts, and a fast, clear failure for 401/403 with no
retries. The access token is a secret: it is sent in a header and appears in no URL, log or error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import requests
from pydantic import PrivateAttr
from requests.adapters import HTTPAdapter

from integration_assets.systems.http_retry import (
    RETRYABLE_STATUSES,
    RequestStats,
    backoff_seconds,
    retry_after_seconds,
)

LINK_RE = re.compile(r'<([^<>]+)>;\s*rel="([^"]+)"')


class StorefrontError(RuntimeError):
    """A storefront request failed for good; the message says why and what to do."""


class StorefrontAuthError(StorefrontError):
    """401/403: the token is wrong, revoked or lacks a scope. Retrying cannot help."""


def parse_link_header(header: str | None) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="previous"` -> {"next": url, "previous": url}."""
    return {rel: url for url, rel in LINK_RE.findall(header or "")}


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint with what we need for provenance."""

    url: str
    params: dict[str, str]
    page_number: int
    http_status: int
    records: list[dict[str, Any]]
    fetched_at: datetime
    api_version: str | None
    call_limit: str | None
    next_url: str | None = field(default=None)


class StorefrontClient(dg.ConfigurableResource):
    """Shopify Admin REST client. Point `shop_url` at https://<shop>.myshopify.com for the real thing."""

    shop_url: str
    access_token: str
    api_version: str = "2025-07"
    page_limit: int = 250
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retries: int = 8
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    _session: requests.Session | None = PrivateAttr(default=None)
    _stats: RequestStats = PrivateAttr(default_factory=RequestStats)

    @property
    def stats(self) -> RequestStats:
        return self._stats

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=8))
            session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=8))
            session.headers.update(
                {"Accept": "application/json", "User-Agent": "integration-assets/0.1"}
            )
            self._session = session
        return self._session

    def api_url(self, resource: str) -> str:
        return f"{self.shop_url.rstrip('/')}/admin/api/{self.api_version}/{resource}"

    def get(self, url: str, params: dict[str, str] | None = None) -> requests.Response:
        """GET with retries for transient faults; raises StorefrontError with a clear message otherwise."""
        path = urlsplit(url).path
        attempt = 0
        while True:
            self._stats.requests += 1
            try:
                response = self._http().get(
                    url,
                    params=params,
                    headers={"X-Shopify-Access-Token": self.access_token},
                    timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt >= self.max_retries:
                    raise StorefrontError(
                        f"GET {path}: no answer after {attempt + 1} attempts ({type(error).__name__}); "
                        f"is the storefront at {urlsplit(url).netloc} reachable?"
                    ) from None
                self._stats.retries_network += 1
                self._sleep(
                    backoff_seconds(attempt, self.backoff_base_seconds, self.backoff_max_seconds)
                )
                attempt += 1
                continue
            if response.status_code in (401, 403):
                raise StorefrontAuthError(
                    f"GET {path} answered {response.status_code}: the storefront refused the access token "
                    "(wrong, revoked, or missing a scope). Check STOREFRONT_ACCESS_TOKEN; not retrying."
                )
            if response.status_code in RETRYABLE_STATUSES:
                if attempt >= self.max_retries:
                    raise StorefrontError(
                        f"GET {path} still answered {response.status_code} after {attempt + 1} attempts; giving up"
                    )
                if response.status_code == 429:
                    self._stats.retries_rate_limited += 1
                else:
                    self._stats.retries_server_error += 1
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    wait = backoff_seconds(
                        attempt, self.backoff_base_seconds, self.backoff_max_seconds
                    )
                self._sleep(wait)
                attempt += 1
                continue
            if response.status_code >= 400:
                raise StorefrontError(
                    f"GET {path} answered {response.status_code}: {response.text[:300]}"
                )
            return response

    def _sleep(self, seconds: float) -> None:
        self._stats.waited_seconds += seconds
        time.sleep(seconds)

    def iter_order_pages(
        self, updated_at_min: datetime, updated_at_max: datetime | None = None
    ) -> Iterator[Page]:
        """Every order updated at or after `updated_at_min`, any status, page by page."""
        return self._iter_pages("orders", {"status": "any"}, updated_at_min, updated_at_max)

    def iter_product_pages(
        self, updated_at_min: datetime, updated_at_max: datetime | None = None
    ) -> Iterator[Page]:
        """Every product (with its variants) updated at or after `updated_at_min`, page by page.

        `products.json` returns every status (active, archived, draft) when none is asked for.
        """
        return self._iter_pages("products", {}, updated_at_min, updated_at_max)

    def _iter_pages(
        self,
        resource: str,
        filters: dict[str, str],
        updated_at_min: datetime,
        updated_at_max: datetime | None = None,
    ) -> Iterator[Page]:
        """Follow a list endpoint's Link-header pages; `resource` is also the response's envelope key."""
        params = {
            **filters,
            "limit": str(self.page_limit),
            "updated_at_min": updated_at_min.astimezone(UTC).isoformat(timespec="seconds"),
        }
        if updated_at_max is not None:
            params["updated_at_max"] = updated_at_max.astimezone(UTC).isoformat(timespec="seconds")
        url: str | None = self.api_url(f"{resource}.json")
        request_params: dict[str, str] | None = params
        page_number = 0
        while url:
            response = self.get(url, request_params)
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get(resource), list):
                raise StorefrontError(
                    f"GET {urlsplit(url).path}: expected {{'{resource}': [...]}}, got {str(body)[:200]}"
                )
            next_url = parse_link_header(response.headers.get("Link")).get("next")
            shown_params = request_params or {
                k: v[0] for k, v in parse_qs(urlsplit(url).query).items()
            }
            yield Page(
                url=urlsplit(url)._replace(query="").geturl(),
                params=dict(shown_params),
                page_number=page_number,
                http_status=response.status_code,
                records=body[resource],
                fetched_at=datetime.now(UTC),
                api_version=response.headers.get("X-Shopify-API-Version"),
                call_limit=response.headers.get("X-Shopify-Shop-Api-Call-Limit"),
                next_url=next_url,
            )
            # A page_info URL carries the original filters; it must be followed exactly as given.
            url, request_params = next_url, None
            page_number += 1
