"""The sandbox CRM as a WSGI app: the slice of Salesforce's REST API that the CRM delivery uses.

- `POST /services/oauth2/token` (client credentials): `{access_token, instance_url, id, token_type,
  issued_at, signature}` and no `expires_in`, as Salesforce answers; a wrong client is a 400
  `invalid_client`. Sessions die after `session_ttl_seconds` on the scenario clock (when set) or when
  the `expire_sessions` fault fires; then every call is a 401 `INVALID_SESSION_ID`.
- `PATCH /services/data/v60.0/sobjects/{Account|Contact}/External_Id__c/{id}`: upsert (201 created,
  200 updated), validated as `crm_records.py` describes.
- `GET /services/data/v60.0/sobjects/{Account|Contact}/describe`: fields, picklists, record types.
- `GET /services/data/v60.0/query?q=...`: the owner lookup by email and the incremental Account read
  (`crm_soql.py`), paged with `nextRecordsUrl` (2000 rows a page, or `Sforce-Query-Options:
  batchSize=N` between 200 and 2000).
- Faults by API request number: `server_error` and `rate_limit_burst` (503 SERVER_UNAVAILABLE,
  retryable), `daily_limit` (403 REQUEST_LIMIT_EXCEEDED, not retryable), `expire_sessions`,
  `slow_response`. Other API versions are 404 NOT_FOUND.
`/_sandbox/crm/stats` (requests, faults, documents per sObject, writes) needs no session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.crm_config import CrmConfig, CrmUser, parse_crm
from integration_assets.sandbox.crm_records import CrmRecords, CrmRejected, StoredRecord, sf_error
from integration_assets.sandbox.crm_schema import API_VERSION, ORG_ID, SOBJECTS, describe
from integration_assets.sandbox.crm_soql import (
    ACCOUNT_QUERY_FIELDS,
    AccountsModifiedAfter,
    MalformedQuery,
    parse_query,
)
from integration_assets.sandbox.oauth_server import TokenIssuer
from integration_assets.sandbox.request_faults import answering_fault
from integration_assets.sandbox.routing import answer_routed
from integration_assets.sandbox.served_app import ServedApp, serve, standalone_clock
from integration_assets.sandbox.storefront_app import RequestStats, json_response

__all__ = ["CrmApp", "CrmConfig", "RunningCrm", "parse_crm", "start_crm"]

API_ENDPOINTS = {"upsert", "describe", "query", "query_more"}
QUERY_BATCH_SIZE = 2000
MIN_QUERY_BATCH_SIZE = 200
NOT_FOUND = [sf_error("NOT_FOUND", "The requested resource does not exist")]
INVALID_SESSION = [sf_error("INVALID_SESSION_ID", "Session expired or invalid")]
SERVER_UNAVAILABLE = [
    sf_error("SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later")
]
UNKNOWN_EXCEPTION = [
    sf_error(
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-123456789)",
    )
]
REQUEST_LIMIT_EXCEEDED = [sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")]

URL_MAP = Map(
    [
        Rule("/services/oauth2/token", endpoint="token", methods=["POST"]),
        Rule(
            "/services/data/<version>/sobjects/<sobject>/External_Id__c/<external_id>",
            endpoint="upsert",
            methods=["PATCH"],
        ),
        Rule(
            "/services/data/<version>/sobjects/<sobject>/describe",
            endpoint="describe",
            methods=["GET"],
        ),
        Rule("/services/data/<version>/query", endpoint="query", methods=["GET"]),
        Rule("/services/data/<version>/query/<locator>", endpoint="query_more", methods=["GET"]),
        Rule("/_sandbox/crm/stats", endpoint="stats", methods=["GET"]),
    ]
)


class CrmApp:
    """WSGI callable serving one CRM config on a scenario clock."""

    def __init__(
        self,
        config: CrmConfig,
        clock: ScenarioClock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.book = CrmRecords(config, clock.now())
        self.stats = RequestStats(is_api_route=lambda route: route in API_ENDPOINTS)
        # Sessions live on the scenario clock, so a test moves time instead of sleeping.
        self.issuer = TokenIssuer(
            config.client_id,
            config.client_secret,
            config.session_ttl_seconds,
            clock=lambda: clock.now().timestamp(),
            refused_status=400,
            refused_description="invalid client credentials",
        )
        self.query_batch_size = QUERY_BATCH_SIZE
        self._expiries_fired: set[int] = set()
        self._expiry_lock = threading.Lock()
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._cursor_lock = threading.Lock()

    # ---- Python access (tests, the demo) ------------------------------------------------------
    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of `sobject` ("Account", "Contact") as the REST API shows it."""
        return self.book.records(sobject)

    def stats_payload(self) -> dict[str, Any]:
        return {
            **self.stats.snapshot(),
            "documents": {sobject: self.book.count(sobject) for sobject in SOBJECTS},
            "writes": self.book.write_counts(),
            "sessions_issued": self.issuer.issued,
        }

    # ---- WSGI -------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        return answer_routed(
            Request(environ), start_response, URL_MAP, self.stats, self._route, _refusal
        )

    def _route(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if endpoint == "token":
            return self._token(request)
        if endpoint == "stats":
            return json_response(self.stats_payload())
        return self._api(request, endpoint, arguments)

    # ---- OAuth ------------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        status, body = self.issuer.issue(request.form)
        if status != 200:
            return json_response(body, status)
        instance_url = request.host_url.rstrip("/")
        identity = f"{instance_url}/id/{ORG_ID}/{self.config.default_owner}"
        issued_at = str(int(self.clock.now().timestamp() * 1000))
        # Salesforce signs id + issued_at with the client secret so a client can verify the answer.
        signature = base64.b64encode(
            hmac.new(
                self.config.client_secret.encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        return json_response(
            {
                "access_token": body["access_token"],
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
            }
        )

    # ---- the data API -----------------------------------------------------------------------
    def _api(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if arguments.pop("version") != API_VERSION:
            return json_response(NOT_FOUND, 404)
        self._fire_session_expiry()
        if self.issuer.check(request.headers.get("Authorization")) != "ok":
            return json_response(INVALID_SESSION, 401, {"WWW-Authenticate": "Token"})
        fault = answering_fault(
            self.stats, self.config.faults, self.sleep, passive_kinds={"expire_sessions"}
        )
        if fault is not None:
            if fault.kind == "daily_limit":
                return json_response(REQUEST_LIMIT_EXCEEDED, 403)
            if fault.kind == "server_error" and fault.status != 503:
                return json_response(UNKNOWN_EXCEPTION, fault.status)
            return json_response(SERVER_UNAVAILABLE, 503)
        if endpoint in ("upsert", "describe") and arguments["sobject"] not in SOBJECTS:
            return json_response(NOT_FOUND, 404)
        return getattr(self, f"_{endpoint}")(request, **arguments)

    def _fire_session_expiry(self) -> None:
        """An `expire_sessions` fault kills every session just before API request N + 1 (once).

        It fires on the request that would get that number, before the session check, so that
        request itself is the first to meet the 401 (and, refused, it does not use up the number).
        """
        upcoming = self.stats.api_requests + 1
        with self._expiry_lock:
            for index, fault in enumerate(self.config.faults):
                if fault.kind != "expire_sessions" or index in self._expiries_fired:
                    continue
                if upcoming > fault.after_requests:
                    self._expiries_fired.add(index)
                    self.stats.fault_fired(fault.kind)
                    self.issuer.expire_all()

    def _upsert(self, request: Request, sobject: str, external_id: str) -> Response:
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return json_response(
                [sf_error("JSON_PARSER_ERROR", "The request body is not valid JSON")], 400
            )
        try:
            result = self.book.upsert(sobject, external_id, body, self.clock.now())
        except CrmRejected as error:
            return json_response(error.errors, error.status)
        return json_response(
            {"id": result.id, "success": True, "errors": [], "created": result.created},
            201 if result.created else 200,
        )

    def _describe(self, request: Request, sobject: str) -> Response:
        return json_response(describe(sobject, self.config.picklists))

    def _query(self, request: Request) -> Response:
        text = request.args.get("q")
        if not text:
            return json_response(
                [sf_error("MALFORMED_QUERY", "A query string has to be specified")], 400
            )
        try:
            query = parse_query(text)
        except MalformedQuery as error:
            return json_response([sf_error("MALFORMED_QUERY", str(error))], 400)
        if isinstance(query, AccountsModifiedAfter):
            rows = [
                self._account_row(record)
                for record in self.book.accounts_modified_after(query.moment)
            ]
        else:
            rows = [_user_row(user) for user in self.book.users_by_email(query.email)]
        return self._page(rows, 0, self._batch_size(request), None)

    def _query_more(self, request: Request, locator: str) -> Response:
        cursor, _, offset = locator.rpartition("-")
        with self._cursor_lock:
            rows = self._cursors.get(cursor)
        if rows is None or not offset.isdigit() or int(offset) > len(rows):
            return json_response([sf_error("INVALID_QUERY_LOCATOR", "invalid query locator")], 400)
        return self._page(rows, int(offset), self._batch_size(request), cursor)

    def _page(
        self, rows: list[dict[str, Any]], offset: int, batch: int, cursor: str | None
    ) -> Response:
        """One batch of a result; a cursor keeps the rest, as Salesforce's query locator does."""
        page = rows[offset : offset + batch]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + batch >= len(rows)}
        if not body["done"]:
            if cursor is None:
                with self._cursor_lock:
                    cursor = f"01gSb{len(self._cursors) + 1:010d}AAA"
                    self._cursors[cursor] = rows
            next_offset = offset + batch
            body["nextRecordsUrl"] = f"/services/data/{API_VERSION}/query/{cursor}-{next_offset}"
        body["records"] = page
        return json_response(body)

    def _batch_size(self, request: Request) -> int:
        """`Sforce-Query-Options: batchSize=N` (200..2000); Salesforce ignores what it cannot use."""
        header = request.headers.get("Sforce-Query-Options", "")
        for option in header.split(","):
            name, _, value = option.strip().partition("=")
            if name.strip() == "batchSize" and value.strip().isdigit():
                return min(max(int(value), MIN_QUERY_BATCH_SIZE), QUERY_BATCH_SIZE)
        return self.query_batch_size

    def _account_row(self, record: StoredRecord) -> dict[str, Any]:
        shown = record.as_sobject()
        row: dict[str, Any] = {"attributes": shown["attributes"]}
        for name in ACCOUNT_QUERY_FIELDS:
            if name == "Owner.Email":
                owner = self.book.user(shown["OwnerId"])
                row["Owner"] = {
                    "attributes": _user_attributes(shown["OwnerId"]),
                    "Email": None if owner is None else owner.email,
                }
            else:
                row[name] = shown[name]
        return row


def _refusal(request: Request, error: HTTPException) -> Response:
    if isinstance(error, NotFound):
        return json_response(NOT_FOUND, 404)
    if isinstance(error, MethodNotAllowed):
        allowed = ",".join(sorted(error.valid_methods or ()))
        return json_response(
            [
                sf_error(
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
                )
            ],
            405,
        )
    return json_response([sf_error("UNKNOWN_EXCEPTION", error.name)], error.code or 500)


def _user_attributes(user_id: str) -> dict[str, str]:
    return {"type": "User", "url": f"/services/data/{API_VERSION}/sobjects/User/{user_id}"}


def _user_row(user: CrmUser) -> dict[str, Any]:
    return {
        "attributes": _user_attributes(user.id),
        "Id": user.id,
        "Name": user.name,
        "Email": user.email,
        "IsActive": user.active,
    }


class RunningCrm(ServedApp):
    """The CRM sandbox listening on a socket; `app` is the CrmApp."""

    system_name = "crm"

    @property
    def config(self) -> CrmConfig:
        return self.app.config

    def records(self, sobject: str) -> list[dict[str, Any]]:
        return self.app.records(sobject)

    def stats(self) -> dict[str, Any]:
        return self.app.stats_payload()

    def system(self) -> dict[str, str]:
        return {
            "url": self.url,
            "api_version": API_VERSION,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }


def start_crm(
    config: CrmConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: ScenarioClock | None = None,
) -> RunningCrm:
    """Serve the CRM from a daemon thread (port 0 picks a free one); returns once it listens."""
    return serve(RunningCrm, config, CrmApp(config, standalone_clock(clock)), host, port)
