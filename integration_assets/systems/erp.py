"""ERP client: the ERP's REST record API, upsert by external id, with OAuth client credentials.

`PUT /api/v1/records/{type}/eid:{external_id}` with an `Idempotency-Key` per intended write (the
outbox's key: external id plus content hash), so a retry never makes a second document. Each answer
becomes a `WriteOutcome` the outbox can act on: delivered, rejected (400/422, with the fields the
ERP named), conflict (409), missing_reference (the parent is not there yet: retry later), or
unavailable (retries ran out on 429/5xx/timeouts). `upsert_many` sends up to `batch_size` records of
one type in one `POST /api/v1/records/{type}/batch`, each with its own idempotency key, and reads
one outcome per record exactly as for the single PUT. Credentials the ERP refuses fail the run
(`TargetAuthError`), naming ERP_CLIENT_ID/ERP_CLIENT_SECRET and never the secret. Point `base_url`
at the real ERP (and `token_url` at its token endpoint when it is not `{base_url}/oauth/token`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from integration_assets.systems.bulk import (
    MAX_BULK_RECORDS,
    RecordWrite,
    answer_text,
    send_bulk,
)
from integration_assets.systems.http_client import json_or_none
from integration_assets.systems.oauth import (
    OAuthClientCredentialsResource,
    error_detail,
    target_error_detail,
)
from integration_assets.systems.write_outcome import TargetError, WriteOutcome

RECORD_TYPES = ("customer", "sales_order", "invoice", "credit_note", "payment_applied")
REFERENCE_NOT_FOUND = "reference_not_found"


def field_errors_message(fields: list[dict[str, Any]]) -> str:
    """`email: invalid (must be a valid email address); billing_address.country: required`."""
    parts = []
    for entry in fields:
        name = str(entry.get("field") or "<record>")
        code = str(entry.get("code") or "invalid")
        message = str(entry.get("message") or "")
        parts.append(f"{name}: {code}" if message in ("", code) else f"{name}: {code} ({message})")
    return "; ".join(parts)


class ErpClient(OAuthClientCredentialsResource):
    """The ERP's record API: upsert, read one, read changes since a time."""

    system_name: ClassVar[str] = "erp"
    client_id_env_var: ClassVar[str] = "ERP_CLIENT_ID"
    client_secret_env_var: ClassVar[str] = "ERP_CLIENT_SECRET"

    base_url: str
    page_limit: int = 100
    # Records per bulk write through the batch endpoint (at most 100); 1 sends one PUT per record,
    # for an ERP that offers no batch endpoint.
    batch_size: int = MAX_BULK_RECORDS

    def _token_endpoint(self) -> str:
        return self.token_url or f"{self.base_url.rstrip('/')}/oauth/token"

    def record_url(self, record_type: str, external_id: str | None = None) -> str:
        if record_type not in RECORD_TYPES:
            raise ValueError(
                f"unknown ERP record type {record_type!r} (expected one of {', '.join(RECORD_TYPES)})"
            )
        url = f"{self.base_url.rstrip('/')}/api/v1/records/{record_type}"
        if external_id is None:
            return url
        if not external_id:
            raise ValueError("an ERP upsert needs a non-empty external id")
        return f"{url}/eid:{quote(external_id, safe='')}"

    def upsert(
        self,
        record_type: str,
        external_id: str,
        payload: dict[str, Any],
        idempotency_key: str,
    ) -> WriteOutcome:
        """Write one record by external id; the outcome says what the ERP made of it.

        Raises `TargetAuthError` when the ERP refuses the credentials (every write would fail),
        and `TargetError` when the ERP answers something no write outcome describes (a wrong URL).
        """
        url = self.record_url(record_type, external_id)
        return self.write(
            "PUT",
            url,
            json_body=payload,
            idempotency_key=idempotency_key,
            read_answer=lambda response, body: self._upsert_outcome(
                record_type,
                f"PUT {urlsplit(url).path}",
                response.status_code,
                body,
                self._error_detail(response),
            ),
            unknown_answer_hint="check the ERP base URL",
        )

    def upsert_many(self, record_type: str, writes: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Write up to `batch_size` records of one type in one request; one outcome per record.

        Raises like `upsert`: `TargetAuthError` for refused credentials, `TargetError` for an
        answer that is not one result per record (a wrong URL, an ERP without the batch endpoint).
        """
        url = f"{self.record_url(record_type)}/batch"
        for write in writes:
            self.record_url(record_type, write.external_id)  # the same checks as a single write
        return send_bulk(
            self,
            url,
            writes,
            lambda _write, request, status, answer: self._upsert_outcome(
                record_type,
                request,
                status,
                answer,
                self._scrub(error_detail(answer, answer_text(answer))),
            ),
            "ERP",
        )

    def _upsert_outcome(
        self, record_type: str, request: str, status: int, body: Any, detail: str
    ) -> WriteOutcome | None:
        """What one record's answer means (a PUT's, or its entry in a batch's)."""
        if status in (200, 201):
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise TargetError(f"{request} answered {status} without a record id")
            created = bool(body.get("created", status == 201))
            version = body.get("version")
            message = f"{'created' if created else 'updated'} {record_type} version {version}"
            return WriteOutcome.delivered(status, message, body["id"], created)
        if status == 409:
            return WriteOutcome.refused("conflict", status, detail)
        if status in (400, 422):
            fields = body.get("fields") if isinstance(body, dict) else None
            fields = [entry for entry in fields or [] if isinstance(entry, dict)]
            only_missing_references = bool(fields) and all(
                entry.get("code") == REFERENCE_NOT_FOUND for entry in fields
            )
            return WriteOutcome.refused(
                "missing_reference" if only_missing_references else "rejected",
                status,
                field_errors_message(fields) if fields else detail,
            )
        return None

    def get(self, record_type: str, external_id: str) -> dict[str, Any] | None:  # type: ignore[override]
        """One record (`{"id", "external_id", "type", "version", "record"}`), or None if absent."""
        url = self.record_url(record_type, external_id)
        response = self._read(url, None)
        if response.status_code == 404:
            return None
        return self._json_object(url, response)

    def iter_records(
        self, record_type: str, updated_since: datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record changed at or after `updated_since` (all when None), a page at a time."""
        url = self.record_url(record_type)
        params = {"limit": str(self.page_limit)}
        if updated_since is not None:
            if updated_since.tzinfo is None:
                raise ValueError("updated_since must be timezone-aware")
            params["updated_since"] = updated_since.astimezone(UTC).isoformat(timespec="seconds")
        offset = 0
        while True:
            body = self._json_object(url, self._read(url, {**params, "offset": str(offset)}))
            records = body.get("records")
            total = body.get("total")
            if not isinstance(records, list) or not isinstance(total, int):
                raise TargetError(
                    f"GET {urlsplit(url).path}: expected {{'records': [...], 'total': n}}, "
                    f"got {str(body)[:200]}"
                )
            if records:
                yield records
            offset += len(records)
            if not records or offset >= total:
                return

    # ---- reading ------------------------------------------------------------------------------
    def _read(self, url: str, params: dict[str, str] | None) -> requests.Response:
        """A GET whose 200/404 the caller reads; any other answer is an error with the ERP's words."""
        response = self.send("GET", url, params=params)
        if response.status_code not in (200, 404):
            raise TargetError(
                f"GET {urlsplit(url).path} answered {response.status_code}: "
                f"{self._error_detail(response)}"
            )
        return response

    def _json_object(self, url: str, response: requests.Response) -> dict[str, Any]:
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise TargetError(
                f"GET {urlsplit(url).path} answered {response.status_code} with a body that is "
                f"not a JSON object: {target_error_detail(response)[:200]}"
            )
        return body
