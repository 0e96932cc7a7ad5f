"""Payments client: the Stripe API, as Stripe speaks it.

`Authorization: Bearer <secret key>`, list endpoints paged with `limit` + `starting_after` while
`has_more` is true (newest first), `created[gte]` for incremental reads, integer minor units.
429, 5xx, timeouts and connection errors are retried with jittered exponential backoff (honouring
`Retry-After` if an answer ever carries one; Stripe's 429s do not); 401/403 fail at once, naming the
environment variable to check and never the key; any other 4xx fails with Stripe's `error.message`.
Point `base_url` at https://api.stripe.com for the real thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from integration_assets.systems.http_client import RetryingHttpResource
from integration_assets.systems.read_ahead import read_ahead

SECRET_KEY_ENV_VAR = "PAYMENTS_SECRET_KEY"
LIST_RESOURCES = ("charges", "refunds", "balance_transactions", "disputes", "payouts")


class PaymentsError(RuntimeError):
    """A payments request failed for good; the message says why (Stripe's own words when given)."""


class PaymentsAuthError(PaymentsError):
    """401/403: the secret key is wrong, revoked, of the other mode, or restricted. No retries."""


@dataclass(frozen=True)
class PaymentsPage:
    """One page of a Stripe list endpoint with what raw provenance needs."""

    url: str  # without query
    params: dict[str, str]
    page_number: int
    http_status: int
    records: list[dict[str, Any]]
    fetched_at: datetime
    has_more: bool


def _stripe_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or error.get("type") or "unknown error")
        if error.get("param"):
            message += f" (param: {error['param']})"
        return message
    return str(body)[:300]


class PaymentsClient(RetryingHttpResource):
    """Stripe API client for the list endpoints the financial stream reads."""

    system_name: ClassVar[str] = "payments"
    base_url: str = "https://api.stripe.com"
    secret_key: str
    page_limit: int = 100

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        return PaymentsAuthError(
            f"GET {path} answered {status}: the payments API refused the secret key (wrong, revoked, "
            f"of the other mode, or restricted). Check {SECRET_KEY_ENV_VAR}; not retrying."
        )

    def _error(self, message: str) -> Exception:
        return PaymentsError(message)

    def _static_credential(self) -> tuple[str, str] | None:
        return SECRET_KEY_ENV_VAR, self.secret_key

    def _error_detail(self, response: requests.Response) -> str:
        return _stripe_message(response)

    def api_url(self, resource: str) -> str:
        return f"{self.base_url.rstrip('/')}/v1/{resource.strip('/')}"

    def iter_pages(
        self,
        resource: str,
        created_gte: int | None = None,
        extra_params: dict | None = None,
    ) -> Iterator[PaymentsPage]:
        """Every object of a list endpoint (newest first), page by page, following `starting_after`.

        The next page is requested while the caller lands this one (`read_ahead`)."""
        return read_ahead(self._read_pages(resource, created_gte, extra_params))

    def _read_pages(
        self,
        resource: str,
        created_gte: int | None = None,
        extra_params: dict | None = None,
    ) -> Iterator[PaymentsPage]:
        url = self.api_url(resource)
        base: dict[str, str | list[str]] = {"limit": str(self.page_limit)}
        if created_gte is not None:
            base["created[gte]"] = str(int(created_gte))
        for key, value in (extra_params or {}).items():
            # A list is a repeated parameter (`types[]=a&types[]=b`).
            base[str(key)] = (
                [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
            )
        starting_after: str | None = None
        page_number = 0
        while True:
            params = dict(base)
            if starting_after is not None:
                params["starting_after"] = starting_after
            response, body = self.get_json(url, params)
            if (
                not isinstance(body, dict)
                or body.get("object") != "list"
                or not isinstance(body.get("data"), list)
            ):
                raise PaymentsError(
                    f"GET /v1/{resource}: expected a Stripe list object, got {str(body)[:200]}"
                )
            records = body["data"]
            has_more = bool(body.get("has_more"))
            yield PaymentsPage(
                url=url,
                params=params,
                page_number=page_number,
                http_status=response.status_code,
                records=records,
                fetched_at=datetime.now(UTC),
                has_more=has_more,
            )
            if not has_more or not records:
                return
            last_id = records[-1].get("id") if isinstance(records[-1], dict) else None
            if not isinstance(last_id, str) or last_id == starting_after:
                raise PaymentsError(
                    f"GET /v1/{resource}: has_more is true but the page gives no new cursor"
                )
            starting_after = last_id
            page_number += 1
