"""Where alerts go: always a line in `alerts.log`, and a Slack-compatible webhook when one is set.

The log line is written before the webhook is tried, so an alert exists even if the webhook is
down, slow or refuses it; a delivery that fails for good adds a `delivery_failed` line naming the
error class. A webhook URL carries its secret in the path (Slack's do), so neither the log nor any
message ever holds the URL: only its host.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import PrivateAttr

from integration_assets.storage.resources import default_data_dir
from integration_assets.streams.alert_flood import Alert
from integration_assets.streams.alert_messages import slack_payload
from integration_assets.systems.http_client import RetryingHttpResource
from integration_assets.systems.http_retry import (
    RETRYABLE_STATUSES,
    backoff_seconds,
    retry_after_seconds,
)

WEBHOOK_URL_ENV = "ALERT_WEBHOOK_URL"
LOG_FILE_NAME = "alerts.log"
DELIVERY_WEBHOOK = "webhook"
DELIVERY_LOG_ONLY = "log_only"
EVENT_ALERT = "alert"
EVENT_DELIVERY_FAILED = "delivery_failed"
_LOG_LOCK = threading.Lock()  # sensors of one process post from several threads


class AlertSinkError(RuntimeError):
    """The sink is misconfigured (the message names the setting, never the webhook's secret)."""


@dataclass(frozen=True)
class AlertDelivery:
    """What became of one posted alert. `delivered` is None when no webhook is configured."""

    alert_id: str
    delivered: bool | None
    attempts: int = 0
    error_class: str | None = None
    http_status: int | None = None
    webhook_host: str | None = None


def webhook_host(url: str) -> str:
    """host[:port] only: no scheme, no user info, no path or query (where the secret lives)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "(no host)"
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def read_alert_log(path: Path) -> list[dict[str, Any]]:
    """Every line of an alerts.log, oldest first (an operator's `tail`, and the tests' witness)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class AlertSinkResource(RetryingHttpResource):
    """Posts alerts to `alerts.log` and, when set, to a Slack-compatible incoming webhook.

    `webhook_url` empty means `ALERT_WEBHOOK_URL` at run time, and no webhook when that is unset or
    empty too. `log_path` empty means `<data dir>/alerts.log`. Timeouts are short and retries few:
    an alert is posted from a sensor tick, which must not hang on a dead webhook (the log line is
    already written). `flood_window_minutes` is the flood-control window the alert sensors use.
    """

    webhook_url: str = ""
    log_path: str = ""
    flood_window_minutes: float = 15.0
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 5.0
    max_retries: int = 2
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 2.0

    # After one delivery failed for good, later alerts of this tick try the webhook once, without
    # retries, so a tick with many alerts and a dead webhook still finishes in time.
    _webhook_failing: bool = PrivateAttr(default=False)

    # --- RetryingHttpResource: an incoming webhook authenticates by its URL alone ---------------
    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        return AlertSinkError(f"the alert webhook refused the request ({status})")

    def _error(self, message: str) -> Exception:
        return AlertSinkError(message)

    # --- configuration, resolved at run time ----------------------------------------------------
    def log_file(self) -> Path:
        return Path(self.log_path) if self.log_path else default_data_dir() / LOG_FILE_NAME

    def _webhook(self) -> str:
        url = (self.webhook_url or os.environ.get(WEBHOOK_URL_ENV, "")).strip()
        if url and urlsplit(url).scheme not in ("http", "https"):
            # Never echo the value: it is a secret when it is right, and may be one when it is wrong.
            raise AlertSinkError(
                f"the alert webhook URL ({WEBHOOK_URL_ENV} or webhook_url) must start with "
                "http:// or https://"
            )
        return url

    # --- posting --------------------------------------------------------------------------------
    def post(self, alert: Alert) -> AlertDelivery:
        """Log the alert, then deliver it to the webhook if one is set; never raises for a dead webhook."""
        url = self._webhook()
        host = webhook_host(url) if url else None
        alert_id = uuid.uuid4().hex
        self._append(
            {
                "at": _now(),
                "event": EVENT_ALERT,
                "alert_id": alert_id,
                "key": alert.key,
                "severity": alert.severity,
                "title": alert.title,
                "text": alert.text,
                "owner": alert.owner,
                "suppressed": alert.suppressed,
                "fields": alert.fields,
                "delivery": DELIVERY_WEBHOOK if url else DELIVERY_LOG_ONLY,
                "webhook_host": host,
            }
        )
        if not url:
            return AlertDelivery(alert_id=alert_id, delivered=None)
        delivery = self._deliver(alert_id, url, slack_payload(alert))
        if not delivery.delivered:
            self._webhook_failing = True
            self._append(
                {
                    "at": _now(),
                    "event": EVENT_DELIVERY_FAILED,
                    "alert_id": alert_id,
                    "key": alert.key,
                    "webhook_host": host,
                    "error_class": delivery.error_class,
                    "http_status": delivery.http_status,
                    "attempts": delivery.attempts,
                }
            )
        else:
            self._webhook_failing = False
        return delivery

    def _deliver(self, alert_id: str, url: str, payload: dict[str, Any]) -> AlertDelivery:
        host = webhook_host(url)
        max_attempts = 1 if self._webhook_failing else self.max_retries + 1
        error_class, status, wait = "", None, 0.0
        for attempt in range(max_attempts):
            if attempt:
                self._sleep(wait)
            self.stats.requests += 1
            backoff = backoff_seconds(attempt, self.backoff_base_seconds, self.backoff_max_seconds)
            try:
                response = self._http().post(
                    url,
                    json=payload,
                    timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                # The class name only: requests puts the whole URL, secret and all, in str(error).
                error_class, status, wait = type(error).__name__, None, backoff
                self.stats.retries_network += attempt + 1 < max_attempts
                continue
            except requests.RequestException as error:
                return AlertDelivery(alert_id, False, attempt + 1, type(error).__name__, None, host)
            if response.status_code < 300:
                return AlertDelivery(alert_id, True, attempt + 1, None, response.status_code, host)
            error_class, status = "HTTPError", response.status_code
            if response.status_code not in RETRYABLE_STATUSES:
                # invalid_payload, no_service, action_prohibited...: the same request fails again.
                return AlertDelivery(alert_id, False, attempt + 1, error_class, status, host)
            self.stats.retries_server_error += attempt + 1 < max_attempts
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            wait = min(backoff if retry_after is None else retry_after, self.backoff_max_seconds)
        return AlertDelivery(alert_id, False, max_attempts, error_class, status, host)

    def _append(self, record: dict[str, Any]) -> None:
        """One JSON line per write, in append mode: concurrent writers never interleave inside a line."""
        path = self.log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n"
        with _LOG_LOCK, path.open("a", encoding="utf-8") as log:
            log.write(line)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
