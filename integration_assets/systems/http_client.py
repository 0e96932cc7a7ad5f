"""What every HTTP client resource shares: a pooled session, timeouts, one retry loop, the audit trail.

`send` is the one loop. Retryable faults (429, 5xx, timeouts, connection errors) back off with full
jitter, honouring `Retry-After`, until `max_retries` runs out (`TargetUnavailableError`). A 401 gets
one second chance when the subclass can refresh its credential (an OAuth token that expired); a
second 401, or a 403, fails at once with the subclass's auth error (retrying cannot fix a
credential). Every other answer (2xx, 400, 404, 409, 422...) is returned for the caller to classify.
`get` keeps the readers' contract on top of it: any other 4xx fails with the system's own message.

Every attempt, answered or not, is one line of the audit trail (`systems/audit.py`), tagged with
the system, the attempt number and the Dagster run id; a bulk write (`write_many`) is one line per
record it carries. A line also keeps what the source said about itself (`systems/source_notices.py`:
deprecation and sunset headers, the version served when not the one pinned, the redirects a read
followed, the credential's own expiry), the evidence `ops/source_signals` watches. A read follows
redirects; a write never does (requests would turn a POST into a GET): it fails naming the new
location. The secret never reaches a message or a line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import dagster as dg
import orjson
import requests
from pydantic import PrivateAttr
from requests.adapters import HTTPAdapter

from integration_assets.systems.audit import append_audit_lines, audit_line, redact_url
from integration_assets.systems.http_retry import (
    RETRYABLE_STATUSES,
    RequestStats,
    backoff_seconds,
    retry_after_seconds,
)
from integration_assets.systems.source_notices import jwt_expiry, response_notices
from integration_assets.systems.write_outcome import TargetUnavailableError, WriteOutcome

# A system's reading of a write's answer (the response and its JSON body, None when it has none):
# the outcome, or None when no write outcome describes the answer.
WriteAnswerReader = Callable[[requests.Response, Any], WriteOutcome | None]
# A system's reading of a bulk write's answer: one outcome per record, in the request's order, or
# None when the answer is not a bulk answer it knows.
BulkAnswerReader = Callable[[requests.Response, Any], list[WriteOutcome] | None]
# A bulk answer's part for each record, for the audit trail: (status, answer text) per record in the
# request's order, or None when the answer cannot be split.
BulkAnswerSplitter = Callable[[Any], list[tuple[int, str]] | None]


@dataclass(frozen=True)
class BulkEntry:
    """One record of a bulk write, as the audit trail keeps it: its key and its own body."""

    idempotency_key: str
    body: Any  # the record's JSON body, hashed (redacted) into its audit lines


class RetryingHttpResource(dg.ConfigurableResource):
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retries: int = 8
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    # The system's name in the audit trail: "storefront", "payments", "erp", "crm", "wms".
    system_name: ClassVar[str] = ""
    # The answer header naming the API version the system served (Shopify's X-Shopify-API-Version),
    # compared with `_pinned_version()`; None for a system that names none.
    served_version_header: ClassVar[str | None] = None

    _session: requests.Session | None = PrivateAttr(default=None)
    _environment: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)
    _stats: RequestStats = PrivateAttr(default_factory=RequestStats)
    _run_id: str | None = PrivateAttr(default=None)
    _credential_noted: bool = PrivateAttr(default=False)

    # --- what a subclass provides -------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        """The exception for a refused credential; names the environment variable, never the secret.

        `response_text` is the target's answer, for systems whose 401/403 can mean something else
        (Salesforce answers a spent daily API allowance with 403)."""
        raise NotImplementedError

    def _error(self, message: str) -> Exception:
        raise NotImplementedError

    def _error_detail(self, response: requests.Response) -> str:
        return response.text[:300]

    def _refresh_credentials(self) -> bool:
        """Get a fresh credential after a 401; True when there is one to retry with."""
        return False

    def _pinned_version(self) -> str | None:
        """The API version this client asks for, when the system versions its API by request."""
        return None

    def _static_credential(self) -> tuple[str, str] | None:
        """(environment variable, value) of the long-lived credential, so its own expiry (a JWT's
        `exp`) reaches the audit trail; the value itself never does."""
        return None

    # --- shared ---------------------------------------------------------------------------------
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The run id ties each audit line to the Dagster run that made the request.
        self._run_id = context.run_id

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

    def _environment_settings(self, url: str) -> dict[str, Any]:
        """Proxies and CA bundle from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...)
        for `url`'s host, read once per host: requests reads them on every request otherwise (about
        3 ms a write). The session then stops reading the environment itself."""
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}"
        if host not in self._environment:
            session = self._http()
            session.trust_env = True
            settings = session.merge_environment_settings(host, {}, None, None, None)
            session.trust_env = False
            self._environment[host] = {
                "proxies": settings["proxies"],
                "verify": settings["verify"],
                "cert": settings["cert"],
            }
        return self._environment[host]

    def _sleep(self, seconds: float) -> None:
        self._stats.waited_seconds += seconds
        time.sleep(seconds)

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
    ) -> requests.Response:
        """One authenticated request with retries; returns every answer that is not a fault.

        Raises `TargetUnavailableError` when 429/5xx/timeouts/connection errors outlast the
        retries, and the subclass's auth error on a 403 or a 401 that a refresh cannot cure.
        """
        return self._request(
            method,
            url,
            direction="inbound" if method.upper() == "GET" else "outbound",
            authenticate=True,
            json_body=json_body,
            form=form,
            params=params,
            headers=headers,
            idempotency_key=idempotency_key,
            max_retries=self.max_retries if max_retries is None else max_retries,
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        direction: str,
        authenticate: bool,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        max_retries: int,
        bulk: tuple[Sequence[BulkEntry], BulkAnswerSplitter] | None = None,
    ) -> requests.Response:
        """The retry loop. `authenticate=False` (a token request) sends no credential header and
        returns 401/403 like any other answer: the caller knows what a refusal there means."""
        method = method.upper()
        parts = urlsplit(url)
        path, host = parts.path, parts.netloc
        body = _encode_body(json_body, form)
        audited_url = f"{url}{'&' if parts.query else '?'}{urlencode(params)}" if params else url
        retries = 0
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            self._stats.requests += 1
            request_headers = dict(self._auth_headers()) if authenticate else {}
            if body is not None:
                request_headers["Content-Type"] = body[0]
            if idempotency_key is not None:
                request_headers["Idempotency-Key"] = idempotency_key
            request_headers.update(headers or {})
            started = time.monotonic()
            try:
                response = self._http().request(
                    method,
                    url,
                    **self._environment_settings(url),
                    params=params,
                    data=None if body is None else body[1],
                    headers=request_headers,
                    timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                    # requests turns a redirected POST into a GET and follows a PUT's 307 with
                    # the body: a write goes nowhere its caller did not name.
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                self._audit(
                    direction,
                    method,
                    audited_url,
                    type(error).__name__,
                    started,
                    attempt,
                    idempotency_key,
                    body,
                    None,
                    bulk,
                )
                if retries >= max_retries:
                    raise TargetUnavailableError(
                        f"{method} {path}: no answer after {attempt} attempts "
                        f"({type(error).__name__}); is {host} reachable?",
                        error_class="timeout"
                        if isinstance(error, requests.Timeout)
                        else "connection",
                    ) from None
                self._stats.retries_network += 1
                self._sleep(
                    backoff_seconds(retries, self.backoff_base_seconds, self.backoff_max_seconds)
                )
                retries += 1
                continue
            status = response.status_code
            self._audit(
                direction,
                method,
                audited_url,
                status,
                started,
                attempt,
                idempotency_key,
                body,
                response.text,
                bulk,
                response,
                self._notices(response),
            )
            if 300 <= status < 400 and status != 304:
                # Only a write gets here (a read follows redirects, and its hops are notices).
                location = response.headers.get("Location")
                raise self._error(
                    f"{method} {path} answered {status}: the endpoint moved to "
                    f"{redact_url(location) if location else '(no Location given)'}. A write is "
                    "not sent on to another address unasked: update the system's URL; not retrying."
                )
            if authenticate and status == 401 and not refreshed and self._refresh_credentials():
                # One second chance: the token expired or was revoked, and we now hold a new one.
                refreshed = True
                continue
            if authenticate and status in (401, 403):
                raise self._auth_error(path, status, response.text)
            if status in RETRYABLE_STATUSES:
                if retries >= max_retries:
                    raise TargetUnavailableError(
                        f"{method} {path} still answered {status} after {attempt} attempts "
                        f"({self._error_detail(response)}); giving up",
                        error_class="rate_limited" if status == 429 else "server_error",
                        http_status=status,
                    )
                if status == 429:
                    self._stats.retries_rate_limited += 1
                else:
                    self._stats.retries_server_error += 1
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    wait = backoff_seconds(
                        retries, self.backoff_base_seconds, self.backoff_max_seconds
                    )
                self._sleep(wait)
                retries += 1
                continue
            return response

    def _audit(
        self,
        direction: str,
        method: str,
        url: str,
        status: int | str,
        started: float,
        attempt: int,
        idempotency_key: str | None,
        body: tuple[str, bytes] | None,
        response_text: str | None,
        bulk: tuple[Sequence[BulkEntry], BulkAnswerSplitter] | None = None,
        response: requests.Response | None = None,
        notices: dict[str, Any] | None = None,
    ) -> None:
        exchange = {
            "system": self.system_name or type(self).__name__,
            "direction": direction,
            "method": method,
            "url": url,
            "duration_ms": (time.monotonic() - started) * 1000,
            "attempt": attempt,
            "run_id": self._run_id,
        }
        if bulk is None:
            line = audit_line(
                **exchange,
                status=status,
                idempotency_key=idempotency_key,
                request_body=None if body is None else body[1],
                response_text=response_text,
                notices=notices,
            )
            append_audit_lines(self._run_id, [line])
            return
        entries, split = bulk
        # Each record's own status and answer when the target answered the batch; the request's
        # status and answer otherwise (a 429, a 503, a timeout happened to every record in it).
        parts = split(json_or_none(response)) if response is not None and status == 200 else None
        if parts is None or len(parts) != len(entries):
            parts = [(status, response_text)] * len(entries)
        append_audit_lines(
            self._run_id,
            [
                audit_line(
                    **exchange,
                    status=part_status,
                    idempotency_key=entry.idempotency_key,
                    request_body=orjson.dumps(entry.body),
                    response_text=part_text,
                    notices=notices,
                )
                for entry, (part_status, part_text) in zip(entries, parts, strict=True)
            ],
        )

    def _notices(self, response: requests.Response) -> dict[str, Any] | None:
        """What the source said about itself on this answer (systems/source_notices.py), and, on
        the first answer of this resource, the long-lived credential's own expiry when it has one."""
        header = self.served_version_header
        notices = response_notices(
            response.headers,
            [(hop.status_code, hop.headers.get("Location")) for hop in response.history],
            pinned_version=self._pinned_version(),
            served_version=response.headers.get(header) if header else None,
        )
        if not self._credential_noted:
            self._credential_noted = True
            credential = self._static_credential()
            expiry = jwt_expiry(credential[1]) if credential else None
            if credential and expiry is not None:
                notices = {
                    **(notices or {}),
                    "credential": credential[0],
                    "credential_expires_at": expiry.isoformat(timespec="seconds"),
                }
        return notices

    def write(
        self,
        method: str,
        url: str,
        *,
        json_body: Any,
        idempotency_key: str,
        read_answer: WriteAnswerReader,
        unknown_answer_hint: str,
    ) -> WriteOutcome:
        """One write to a working system, its answer turned into a `WriteOutcome`.

        Retries that run out are `unavailable`; every other answer is the system's to read
        (`read_answer`), since each words success and refusal its own way. An answer it cannot
        read (e.g. a 404 from a wrong URL) raises the subclass's error with `unknown_answer_hint`,
        because no outcome the outbox acts on would be true.
        """
        try:
            response = self.send(method, url, json_body=json_body, idempotency_key=idempotency_key)
        except TargetUnavailableError as error:
            return WriteOutcome.unavailable(error)
        outcome = read_answer(response, json_or_none(response))
        if outcome is not None:
            return outcome
        raise self._error(
            f"{method} {urlsplit(url).path} answered {response.status_code} "
            f"({self._error_detail(response)}); {unknown_answer_hint}"
        )

    def write_many(
        self,
        method: str,
        url: str,
        *,
        json_body: Any,
        entries: Sequence[BulkEntry],
        read_answer: BulkAnswerReader,
        split_answer: BulkAnswerSplitter,
        unknown_answer_hint: str,
    ) -> list[WriteOutcome]:
        """One bulk write of `entries` (in `json_body`), one outcome per entry in their order.

        Retries that run out are `unavailable` for every entry; an answer the system's reader
        cannot turn into one outcome per entry raises the subclass's error, as in `write`.
        """
        try:
            response = self._request(
                method,
                url,
                direction="outbound",
                authenticate=True,
                json_body=json_body,
                max_retries=self.max_retries,
                bulk=(entries, split_answer),
            )
        except TargetUnavailableError as error:
            return [WriteOutcome.unavailable(error)] * len(entries)
        outcomes = read_answer(response, json_or_none(response))
        if outcomes is not None and len(outcomes) == len(entries):
            return outcomes
        raise self._error(
            f"{method} {urlsplit(url).path} answered {response.status_code} "
            f"({self._error_detail(response)}) for a bulk write of {len(entries)} records; "
            f"{unknown_answer_hint}"
        )

    def json_object(self, url: str, response: requests.Response) -> dict[str, Any]:
        """The JSON object a GET of `url` was answered with; anything but a 200 with an object
        raises the subclass's error with the target's own words."""
        body = json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise self._error(
                f"GET {urlsplit(url).path} answered {response.status_code}: "
                f"{self._error_detail(response)}"
            )
        return body

    def get(
        self, url: str, params: dict[str, str] | None = None, answered: Collection[int] = ()
    ) -> requests.Response:
        """GET with retries for transient faults; raises the subclass's error with a clear message
        otherwise. A status in `answered` is returned for the caller to read (a refused cursor)."""
        try:
            response = self.send("GET", url, params=params)
        except TargetUnavailableError as error:
            raise self._error(str(error)) from None
        if response.status_code >= 400 and response.status_code not in answered:
            raise self._error(
                f"GET {urlsplit(url).path} answered {response.status_code}: "
                f"{self._error_detail(response)}"
            )
        return response

    def get_json(
        self, url: str, params: dict[str, str] | None = None, answered: Collection[int] = ()
    ) -> tuple[requests.Response, Any]:
        """`get` and its JSON body. A success whose body is not JSON (cut short by a dropped
        connection or a proxy, or a proxy's HTML error page served as 200) is asked again like a
        5xx, with backoff, up to `max_retries`; then the system's error says what came back. An
        `answered` error status without a JSON body is returned with the body None, not asked again."""
        retries = 0
        while True:
            response = self.get(url, params, answered)
            try:
                return response, response_json(response)
            except ValueError:
                if response.status_code >= 400:
                    return response, None
                if retries >= self.max_retries:
                    raise self._error(
                        f"GET {urlsplit(url).path} answered {response.status_code} with a body that is "
                        f"not JSON {retries + 1} times ({len(response.content)} bytes, starting "
                        f"{response.text[:80]!r}); giving up"
                    ) from None
                self._stats.retries_invalid_body += 1
                self._sleep(
                    backoff_seconds(retries, self.backoff_base_seconds, self.backoff_max_seconds)
                )
                retries += 1


def _encode_body(json_body: Any, form: Mapping[str, str] | None) -> tuple[str, bytes] | None:
    """(content type, bytes) of a request body; encoded once so every attempt sends the same bytes."""
    if json_body is not None and form is not None:
        raise ValueError("send either json_body or form, not both")
    if json_body is not None:
        return "application/json", orjson.dumps(json_body)
    if form is not None:
        return "application/x-www-form-urlencoded", urlencode(dict(form)).encode()
    return None


def response_json(response: requests.Response) -> Any:
    """The answer's JSON body, parsed from its bytes by orjson (a list page is megabytes: the
    standard library's parser costs several times more); raises ValueError if it is not JSON.

    What orjson refuses but JSON parsers commonly accept (NaN, a non-UTF-8 body) is parsed the
    standard way, so the answers read are the same as `response.json()`'s.
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def json_or_none(response: requests.Response) -> Any:
    """The answer's JSON body, or None when it has none (an HTML error page, an empty body)."""
    try:
        return response_json(response)
    except ValueError:
        return None
