"""What every HTTP client resource shares: a pooled session, timeouts, and one retry loop.

Retryable faults (429, 5xx, timeouts, connection errors) back off with full jitter, honouring
`Retry-After`; 401/403 fail at once (retrying cannot fix a credential); any other 4xx fails with the
system's own message. Subclasses say how to authenticate and how to word their errors; the secret
itself never reaches a message.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

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


class RetryingHttpResource(dg.ConfigurableResource):
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retries: int = 8
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    _session: requests.Session | None = PrivateAttr(default=None)
    _stats: RequestStats = PrivateAttr(default_factory=RequestStats)

    # --- what a subclass provides -------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _auth_error(self, path: str, status: int) -> Exception:
        """The exception for a refused credential; names the environment variable, never the secret."""
        raise NotImplementedError

    def _error(self, message: str) -> Exception:
        raise NotImplementedError

    def _error_detail(self, response: requests.Response) -> str:
        return response.text[:300]

    # --- shared ---------------------------------------------------------------------------------
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

    def _sleep(self, seconds: float) -> None:
        self._stats.waited_seconds += seconds
        time.sleep(seconds)

    def get(self, url: str, params: dict[str, str] | None = None) -> requests.Response:
        """GET with retries for transient faults; raises the subclass's error with a clear message otherwise."""
        path, host = urlsplit(url).path, urlsplit(url).netloc
        attempt = 0
        while True:
            self._stats.requests += 1
            try:
                response = self._http().get(
                    url,
                    params=params,
                    headers=self._auth_headers(),
                    timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt >= self.max_retries:
                    raise self._error(
                        f"GET {path}: no answer after {attempt + 1} attempts ({type(error).__name__}); "
                        f"is {host} reachable?"
                    ) from None
                self._stats.retries_network += 1
                self._sleep(
                    backoff_seconds(attempt, self.backoff_base_seconds, self.backoff_max_seconds)
                )
                attempt += 1
                continue
            if response.status_code in (401, 403):
                raise self._auth_error(path, response.status_code)
            if response.status_code in RETRYABLE_STATUSES:
                if attempt >= self.max_retries:
                    raise self._error(
                        f"GET {path} still answered {response.status_code} after {attempt + 1} attempts "
                        f"({self._error_detail(response)}); giving up"
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
                raise self._error(
                    f"GET {path} answered {response.status_code}: {self._error_detail(response)}"
                )
            return response
