"""OAuth 2.0 client credentials (RFC 6749 §4.4) for the target clients (ERP, CRM).

The resource fetches a token from `token_url` with its client id and secret, keeps it until a
little before `expires_in` runs out (when the server says), and sends it as a Bearer header. A 401
on an API call means the token expired or was revoked early: `send` asks for a fresh one once and
retries; a 401 right after a refresh is a credential problem and fails the run. A token endpoint
that refuses the client fails at once (`TargetAuthError`), naming the environment variables to
check. The secret and the token are sent only in a form body and a header; they reach no message,
metadata or audit line (the audit redacts `client_secret=` and `access_token` values).
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import requests
from pydantic import PrivateAttr

from integration_assets.systems.audit import REDACTED, redact_url
from integration_assets.systems.http_client import RetryingHttpResource
from integration_assets.systems.write_outcome import TargetAuthError, TargetError

# Refresh this long before the server's expiry, so a request never leaves with a token that
# expires on the way (capped at half the lifetime for very short-lived tokens).
TOKEN_REFRESH_MARGIN_SECONDS = 30.0


def target_error_detail(response: requests.Response) -> str:
    """The target's own words from an error body: `message`, `error_description` or `error`."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return error_detail(body, response.text)


def error_detail(body: Any, text: str) -> str:
    """The target's own words in a parsed error body, else the start of the answer's `text`."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # Salesforce answers a list of errors
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "errorCode"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:300]
    return text[:300]


class OAuthClientCredentialsResource(RetryingHttpResource):
    """A client resource that authenticates with an OAuth client-credentials token."""

    token_url: str = ""
    client_id: str
    client_secret: str

    # The environment variables the deployment binds `client_id` / `client_secret` to: what an
    # operator must check when the target refuses them.
    client_id_env_var: ClassVar[str] = "CLIENT_ID"
    client_secret_env_var: ClassVar[str] = "CLIENT_SECRET"

    _token: str | None = PrivateAttr(default=None)
    _token_expires_at: float | None = PrivateAttr(default=None)
    _token_fetches: int = PrivateAttr(default=0)
    _token_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # --- subclass hooks -------------------------------------------------------------------------
    def _token_endpoint(self) -> str:
        """Where to ask for a token; a subclass may derive it from its base URL."""
        if not self.token_url:
            raise TargetError(f"{type(self).__name__}: no token_url configured")
        return self.token_url

    def _token_request_form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def _parse_token_response(self, body: Any) -> tuple[str, float | None]:
        """(access token, seconds it lives or None when the server does not say)."""
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise TargetError(
                f"{self.system_name} token endpoint answered 200 without an access_token"
            )
        expires_in = body.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | None):
            raise TargetError(
                f"{self.system_name} token endpoint answered an expires_in that is not a number"
            )
        return body["access_token"], None if expires_in is None else float(expires_in)

    # --- what the retry loop needs --------------------------------------------------------------
    @property
    def token_fetches(self) -> int:
        """How many tokens this resource fetched (for run metadata: more than one means refreshes)."""
        return self._token_fetches

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._current_token()}"}

    def _refresh_credentials(self) -> bool:
        with self._token_lock:
            self._token = None
            self._token_expires_at = None
            self._fetch_token_locked()
        return True

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        return TargetAuthError(
            f"{path} answered {status} with a freshly issued token: the {self.system_name} "
            f"refuses this client (revoked, or missing a permission). Check "
            f"{self.client_id_env_var} and {self.client_secret_env_var}; not retrying."
        )

    def _error(self, message: str) -> Exception:
        return TargetError(message)

    def _static_credential(self) -> tuple[str, str] | None:
        # The client secret lives long; the tokens it buys are short-lived and refreshed by design.
        return self.client_secret_env_var, self.client_secret

    def _error_detail(self, response: requests.Response) -> str:
        return self._scrub(target_error_detail(response))

    def _scrub(self, text: str) -> str:
        """Belt and braces: a target that echoes our secret or token back must not put it in a message."""
        for secret in (self.client_secret, self._token):
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    # --- the token ------------------------------------------------------------------------------
    def _current_token(self) -> str:
        with self._token_lock:
            expired = self._token_expires_at is not None and time.monotonic() >= (
                self._token_expires_at
            )
            if self._token is None or expired:
                self._fetch_token_locked()
            assert self._token is not None
            return self._token

    def _fetch_token_locked(self) -> None:
        url = self._token_endpoint()
        response = self._request(
            "POST",
            url,
            direction="auth",
            authenticate=False,
            form=self._token_request_form(),
            max_retries=self.max_retries,
        )
        self._token_fetches += 1
        status = response.status_code
        if status in (400, 401, 403):
            raise TargetAuthError(
                f"the {self.system_name} token endpoint refused the client ({status}: "
                f"{self._error_detail(response)}). Check {self.client_id_env_var} and "
                f"{self.client_secret_env_var}; not retrying."
            )
        if status != 200:
            raise TargetError(
                f"the {self.system_name} token endpoint answered {status} "
                f"({self._error_detail(response)}); check its URL ({redact_url(url)})"
            )
        try:
            body = response.json()
        except ValueError:
            raise TargetError(
                f"the {self.system_name} token endpoint answered 200 with a body that is not JSON"
            ) from None
        token, expires_in = self._parse_token_response(body)
        self._token = token
        if expires_in is None:
            self._token_expires_at = None
        else:
            margin = min(TOKEN_REFRESH_MARGIN_SECONDS, expires_in / 2)
            self._token_expires_at = time.monotonic() + expires_in - margin
