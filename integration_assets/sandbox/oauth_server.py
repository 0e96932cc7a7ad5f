"""The sandbox side of OAuth 2.0 client credentials: issue bearer tokens and judge the ones presented.

Shared by the target sandboxes (ERP, CRM): each wraps `issue` in its own token route and answer
shape, and calls `check` on every API request. Tokens are random, live `ttl_seconds` on `clock`
(None: until `expire_all`), and `expire_all` is the "token expiry mid-run" fault: every token issued
so far is refused as expired from then on, while a token fetched afterwards works.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

TokenCheck = Literal["ok", "missing", "invalid", "expired"]


class TokenIssuer:
    """Issues and checks bearer tokens for one client id/secret; thread-safe."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        ttl_seconds: float | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        refused_status: int = 401,
        refused_description: str = "Client authentication failed",
    ) -> None:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError(f"token ttl must be > 0 seconds or None, got {ttl_seconds}")
        self.client_id = client_id
        self._client_secret = client_secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._refused = (refused_status, refused_description)
        self._lock = threading.Lock()
        # token -> expiry on `clock` (None: no expiry of its own)
        self._tokens: dict[str, float | None] = {}
        self._expired: set[str] = set()
        self.issued = 0

    def issue(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a token request's form fields."""
        if form.get("grant_type") != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be client_credentials",
            }
        # compare_digest: the time to refuse says nothing about how much of the secret matched.
        id_ok = hmac.compare_digest(str(form.get("client_id", "")), self.client_id)
        secret_ok = hmac.compare_digest(str(form.get("client_secret", "")), self._client_secret)
        if not (id_ok and secret_ok):
            status, description = self._refused
            return status, {"error": "invalid_client", "error_description": description}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (
                None if self.ttl_seconds is None else self._clock() + self.ttl_seconds
            )
            self.issued += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.ttl_seconds is not None:
            # Whole seconds as OAuth servers send them; a sub-second test lifetime stays exact.
            ttl = self.ttl_seconds
            body["expires_in"] = int(ttl) if float(ttl).is_integer() else ttl
        return 200, body

    def check(self, authorization_header: str | None) -> TokenCheck:
        """Judge an `Authorization` header: a live token of ours, none, unknown, or expired."""
        scheme, _, token = (authorization_header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "missing"
        with self._lock:
            if token not in self._tokens:
                return "invalid"
            expires_at = self._tokens[token]
            if token in self._expired or (expires_at is not None and self._clock() >= expires_at):
                return "expired"
            return "ok"

    def issued_tokens(self) -> tuple[str, ...]:
        """Every token issued so far (a sandbox may show them: tests grep logs for them)."""
        with self._lock:
            return tuple(self._tokens)

    def expire_all(self) -> int:
        """Expire every token issued so far; returns how many were live."""
        with self._lock:
            live = [token for token in self._tokens if token not in self._expired]
            self._expired.update(live)
            return len(live)
