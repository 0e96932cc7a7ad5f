"""WMS client: the warehouse's reservations REST API (`X-Api-Key`).

`PUT /api/v1/reservations/{id}` is idempotent on the WMS side (the same body again is a 200 with
the same version), so a retried delivery never reserves twice; the outbox's idempotency key goes
with it for the audit trail. Answers become `WriteOutcome`s: delivered (201 created, 200 updated or
unchanged; backorders are named in the message, they are not an error), rejected (400, the fields
the WMS named), conflict (409: the reservation id belongs to another order), unavailable (retries
ran out on 429/5xx/timeouts). `put_reservations` sends up to `batch_size` reservations in one
`POST /api/v1/reservations/batch` and reads each one's answer as its own PUT's. A refused key fails
the run naming WMS_API_KEY, never the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from integration_assets.systems.bulk import (
    MAX_BULK_RECORDS,
    RecordWrite,
    answer_text,
    send_bulk,
)
from integration_assets.systems.http_client import RetryingHttpResource, json_or_none
from integration_assets.systems.write_outcome import TargetAuthError, TargetError, WriteOutcome

API_KEY_ENV_VAR = "WMS_API_KEY"


def wms_fields_message(fields: list[dict[str, Any]]) -> str:
    """`lines[0].sku: unknown sku X; status: must be one of reserved, released`."""
    return "; ".join(
        f"{entry.get('field') or '<body>'}: {entry.get('message') or 'invalid'}" for entry in fields
    )


class WmsClient(RetryingHttpResource):
    """The WMS reservations API: put (upsert) and read one reservation."""

    system_name: ClassVar[str] = "wms"

    base_url: str
    api_key: str
    # Reservations per bulk write through the batch endpoint (at most 100); 1 sends one PUT each.
    batch_size: int = MAX_BULK_RECORDS

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        return TargetAuthError(
            f"{path} answered {status}: the WMS refused the API key. Check {API_KEY_ENV_VAR}; "
            "not retrying."
        )

    def _error(self, message: str) -> Exception:
        return TargetError(message)

    def _static_credential(self) -> tuple[str, str] | None:
        return API_KEY_ENV_VAR, self.api_key

    def _error_detail(self, response: requests.Response) -> str:
        return self._detail(json_or_none(response), response.text)

    def _detail(self, body: Any, text: str) -> str:
        """The WMS's own words: its field list, else its message, else the start of the answer."""
        if isinstance(body, dict):
            if isinstance(body.get("fields"), list):
                return wms_fields_message([e for e in body["fields"] if isinstance(e, dict)])
            for key in ("message", "error"):
                if isinstance(body.get(key), str):
                    return body[key][:300]
        text = text[:300]
        # A WMS that echoes the key back must not put it in a message.
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def reservation_url(self, reservation_id: str) -> str:
        if not reservation_id:
            raise ValueError("a WMS reservation needs a non-empty id")
        return f"{self.base_url.rstrip('/')}/api/v1/reservations/{quote(reservation_id, safe='')}"

    def put_reservation(
        self, reservation_id: str, body: dict[str, Any], idempotency_key: str
    ) -> WriteOutcome:
        """Create or replace one reservation (`{"order_id", "status", "lines": [{sku, quantity}]}`).

        Raises `TargetAuthError` when the key is refused and `TargetError` for answers no write
        outcome describes (a wrong URL).
        """
        url = self.reservation_url(reservation_id)
        return self.write(
            "PUT",
            url,
            json_body=body,
            idempotency_key=idempotency_key,
            read_answer=lambda response, answer: self._reservation_outcome(
                reservation_id,
                f"PUT {urlsplit(url).path}",
                response.status_code,
                answer,
                self._error_detail(response),
            ),
            unknown_answer_hint="check the WMS base URL",
        )

    def put_reservations(self, writes: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Create or replace up to `batch_size` reservations in one request, one outcome each
        (`external_id` is the reservation id). Raises like `put_reservation`."""
        for write in writes:
            self.reservation_url(write.external_id)  # the same checks as a single write
        return send_bulk(
            self,
            f"{self.base_url.rstrip('/')}/api/v1/reservations/batch",
            writes,
            lambda write, request, status, answer: self._reservation_outcome(
                write.external_id,
                request,
                status,
                answer,
                self._detail(answer, answer_text(answer)),
            ),
            "WMS",
        )

    def _reservation_outcome(
        self, reservation_id: str, request: str, status: int, answer: Any, detail: str
    ) -> WriteOutcome | None:
        """What one reservation's answer means (a PUT's, or its entry in a batch's)."""
        if status in (200, 201):
            if not isinstance(answer, dict) or "version" not in answer:
                raise TargetError(f"{request} answered {status} without a version")
            created = status == 201
            message = (
                f"{'created' if created else 'stored'} reservation version {answer['version']}"
            )
            backordered = [e for e in answer.get("backordered") or [] if isinstance(e, dict)]
            if backordered:
                message += "; backordered " + ", ".join(
                    f"{entry.get('sku')} x{entry.get('quantity')}" for entry in backordered
                )
            target_record_id = str(answer.get("reservation_id") or reservation_id)
            return WriteOutcome.delivered(status, message, target_record_id, created)
        if status == 409:
            return WriteOutcome.refused("conflict", status, detail)
        if status in (400, 422):
            return WriteOutcome.refused("rejected", status, detail)
        return None

    def get_reservation(self, reservation_id: str) -> dict[str, Any] | None:
        """The reservation as the WMS holds it (with `version` and `backordered`), or None."""
        url = self.reservation_url(reservation_id)
        response = self.send("GET", url)
        if response.status_code == 404:
            return None
        return self.json_object(url, response)
