"""Storefront client: the Shopify Admin REST API, as Shopify speaks it.

Versioned paths, `X-Shopify-Access-Token`, `status=any`, `updated_at_min`, Link-header `page_info`
cursor pagination (follow the `next` URL exactly as given), the leaky bucket (429 + Retry-After),
retries with jittered backoff for 429/5xx/timeouts, and a fast, clear failure for 401/403 with no
retries. The access token is a secret: it is sent in a header and appears in no URL, log or error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from integration_assets.systems.http_client import RetryingHttpResource
from integration_assets.systems.read_ahead import read_ahead

LINK_RE = re.compile(r'<([^<>]+)>;\s*rel="([^"]+)"')
# How often one listing starts again from its first page after Shopify refused a `page_info` cursor.
CURSOR_RESTARTS = 2


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


class StorefrontClient(RetryingHttpResource):
    """Shopify Admin REST client. Point `shop_url` at https://<shop>.myshopify.com for the real thing."""

    system_name: ClassVar[str] = "storefront"
    served_version_header: ClassVar[str | None] = "X-Shopify-API-Version"
    shop_url: str
    access_token: str
    api_version: str = "2025-07"
    page_limit: int = 250

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.access_token}

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        return StorefrontAuthError(
            f"GET {path} answered {status}: the storefront refused the access token "
            "(wrong, revoked, or missing a scope). Check STOREFRONT_ACCESS_TOKEN; not retrying."
        )

    def _error(self, message: str) -> Exception:
        return StorefrontError(message)

    def _pinned_version(self) -> str | None:
        return self.api_version

    def _static_credential(self) -> tuple[str, str] | None:
        return "STOREFRONT_ACCESS_TOKEN", self.access_token

    def api_url(self, resource: str) -> str:
        return f"{self.shop_url.rstrip('/')}/admin/api/{self.api_version}/{resource}"

    def count_orders(self) -> int:
        """How many orders the shop has, any status (`orders/count.json?status=any`): the completeness yardstick."""
        body = self.get(self.api_url("orders/count.json"), {"status": "any"}).json()
        if not isinstance(body, dict) or not isinstance(body.get("count"), int):
            raise StorefrontError(
                f"GET orders/count.json: expected {{'count': n}}, got {str(body)[:200]}"
            )
        return body["count"]

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
        """Follow a list endpoint's Link-header pages; `resource` is also the response's envelope key.

        The next page is requested while the caller lands this one (`read_ahead`)."""
        return read_ahead(self._read_pages(resource, filters, updated_at_min, updated_at_max))

    def _read_pages(
        self,
        resource: str,
        filters: dict[str, str],
        updated_at_min: datetime,
        updated_at_max: datetime | None = None,
    ) -> Iterator[Page]:
        params = {
            **filters,
            "limit": str(self.page_limit),
            "updated_at_min": updated_at_min.astimezone(UTC).isoformat(timespec="seconds"),
        }
        if updated_at_max is not None:
            params["updated_at_max"] = updated_at_max.astimezone(UTC).isoformat(timespec="seconds")
        first_url = self.api_url(f"{resource}.json")
        url: str | None = first_url
        request_params: dict[str, str] | None = params
        page_number = 0
        restarts = 0
        while url:
            response, body = self.get_json(url, request_params, answered=(400,))
            if response.status_code == 400:
                if not _refused_cursor(body) or restarts >= CURSOR_RESTARTS:
                    raise StorefrontError(
                        f"GET {urlsplit(url).path} answered 400: {self._error_detail(response)}"
                        + (f" (after {restarts} restarts of the listing)" if restarts else "")
                    )
                # The cursor expired (or the shop no longer knows it): list again from the first
                # page with the same filters. What was read already comes back; staging counts it
                # as duplicates, so nothing is lost and nothing doubled.
                restarts += 1
                self._stats.cursor_restarts += 1
                url, request_params = first_url, params
                continue
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


def _refused_cursor(body: Any) -> bool:
    """Shopify's 400 for a `page_info` it does not accept: `{"errors": {"page_info": ...}}`."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("errors"), dict)
        and "page_info" in body["errors"]
    )
