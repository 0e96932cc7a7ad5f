"""The sandbox ERP as a WSGI app: a REST record API with OAuth client credentials, as an ERP speaks it.

`POST /oauth/token` issues bearer tokens (`TokenIssuer`, lifetime from the config);
`PUT /api/v1/records/{type}/eid:{external_id}` upserts a customer, sales order, invoice, credit note
or payment applied by external id (201 created, 200 updated with version + 1, 200 with the same
version when nothing changed); `GET` the same path reads one; `GET /api/v1/records/{type}` lists by
`updated_since` with `limit`/`offset`. `POST /api/v1/records/{type}/batch` upserts up to 100
records of a type in one request (the envelope in `bulk_writes.py`), each answered as the PUT of that
record with that `Idempotency-Key` would have been. A batch is one API request for the rate limit
and for the faults. Field problems are a 400 naming every field, a reference to
a record that does not exist yet is `reference_not_found` on that field, contradictions are 409s.
A per-client leaky bucket answers 429 with `Retry-After`, and the config's faults inject 5xx,
slow answers, token expiry and outages, numbered by API request (token requests are not numbered).
`/_sandbox/erp/stats` (requests, documents per type, writes) needs no token and stays up when the
ERP is "down", so a test can always see what happened.

`ErpConfig` is the `erp:` section of a scenario file, read with the
scenario's strict reader; `start_erp` serves it on a socket from a daemon thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.bulk_writes import (
    MALFORMED,
    EnvelopeProblem,
    bulk_answer,
    bulk_entries,
    json_or_none,
)
from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.erp_records import (
    ERP_OWNED_CUSTOMER_FIELDS,
    PAYMENT_TERMS,
    RECORD_TYPES,
    FieldError,
    is_credit_terms_write,
    validate_credit_terms,
    validate_record,
)
from integration_assets.sandbox.erp_store import (
    ErpStore,
    IdempotencyKeyReused,
    RecordConflict,
    ReferencesMissing,
)
from integration_assets.sandbox.leaky_bucket import LeakyBuckets
from integration_assets.sandbox.oauth_server import TokenIssuer
from integration_assets.sandbox.request_faults import parse_request_faults
from integration_assets.sandbox.routing import answer_routed
from integration_assets.sandbox.scenario import Fault, _Reader
from integration_assets.sandbox.served_app import ServedApp, serve, standalone_clock
from integration_assets.sandbox.storefront_app import RequestStats, json_response

FAULT_KINDS = {
    "server_error": ({"after_requests"}, {"count", "status"}),
    "slow": ({"after_requests", "delay_seconds"}, {"count"}),
    "expire_tokens": ({"after_requests"}, set()),
    "down": ({"after_requests"}, {"count"}),
}
SEED_CUSTOMER_KEYS = {
    "external_id",
    "name",
    "email",
    "credit_limit",
    "payment_terms",
    "billing_address",
}
API_ROUTES = ("put_record", "batch_records", "get_record", "list_records")
WRITE_ROUTES = ("put_record", "batch_records")
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
SERVER_ERROR_MESSAGES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
TOKEN_INVALID = "The access token is invalid"
TOKEN_EXPIRED = "The access token expired"
WRITES_FORBIDDEN = "This client may not write records (its role has no write permission)"

URL_MAP = Map(
    [
        Rule("/oauth/token", endpoint="token", methods=["POST"]),
        Rule(
            "/api/v1/records/<record_type>/eid:<path:external_id>",
            endpoint="put_record",
            methods=["PUT"],
        ),
        Rule(
            "/api/v1/records/<record_type>/eid:<path:external_id>",
            endpoint="get_record",
            methods=["GET"],
        ),
        Rule("/api/v1/records/<record_type>", endpoint="list_records", methods=["GET"]),
        Rule("/api/v1/records/<record_type>/batch", endpoint="batch_records", methods=["POST"]),
        Rule("/_sandbox/erp/stats", endpoint="stats", methods=["GET"]),
    ]
)


# ---- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ErpRateLimit:
    bucket_size: int = 40
    leak_per_second: float = 10.0
    retry_after: float = 1.0


@dataclass(frozen=True)
class ErpSeedCustomer:
    """A customer the ERP already holds, with the credit terms it owns."""

    external_id: str
    name: str
    email: str
    credit_limit: Decimal | None = None
    payment_terms: str | None = None
    billing_address: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "email": self.email}
        if self.billing_address is not None:
            record["billing_address"] = dict(self.billing_address)
        if self.credit_limit is not None:
            record["credit_limit"] = f"{self.credit_limit:.2f}"
        if self.payment_terms is not None:
            record["payment_terms"] = self.payment_terms
        return record


@dataclass(frozen=True)
class ErpConfig:
    client_id: str = "erp_sandbox_client"
    client_secret: str = "erp_sandbox_secret_not_a_real_one"
    token_ttl_seconds: float = 3600.0
    rate_limit: ErpRateLimit = ErpRateLimit()
    customers: tuple[ErpSeedCustomer, ...] = ()
    faults: tuple[Fault, ...] = ()


def parse_erp(reader: _Reader, raw: Any) -> ErpConfig:
    """The scenario's `erp:` mapping -> ErpConfig; unknown keys and bad values fail with `erp.<path>`."""
    data = reader.mapping(
        raw or {},
        "erp",
        {"client_id", "client_secret", "token_ttl_seconds", "rate_limit", "customers", "faults"},
    )
    defaults = ErpConfig()
    ttl = reader.number(
        data.get("token_ttl_seconds", defaults.token_ttl_seconds), "erp.token_ttl_seconds", 0
    )
    if ttl <= 0:
        raise reader.fail("erp.token_ttl_seconds", "must be > 0")
    customers = tuple(
        _parse_seed_customer(reader, entry, f"erp.customers[{index}]")
        for index, entry in enumerate(reader.listing(data.get("customers"), "erp.customers"))
    )
    seen: dict[str, int] = {}
    for index, customer in enumerate(customers):
        if customer.external_id in seen:
            raise reader.fail(
                f"erp.customers[{index}].external_id",
                f"{customer.external_id!r} is already used by erp.customers[{seen[customer.external_id]}]",
            )
        seen[customer.external_id] = index
    return ErpConfig(
        client_id=reader.string(data.get("client_id", defaults.client_id), "erp.client_id"),
        client_secret=reader.string(
            data.get("client_secret", defaults.client_secret), "erp.client_secret"
        ),
        token_ttl_seconds=ttl,
        rate_limit=_parse_rate_limit(reader, data.get("rate_limit") or {}),
        customers=customers,
        faults=parse_request_faults(reader, data.get("faults"), "erp.faults", FAULT_KINDS),
    )


def _parse_rate_limit(reader: _Reader, raw: Any) -> ErpRateLimit:
    data = reader.mapping(raw, "erp.rate_limit", {"bucket_size", "leak_per_second", "retry_after"})
    defaults = ErpRateLimit()
    return ErpRateLimit(
        bucket_size=reader.integer(
            data.get("bucket_size", defaults.bucket_size), "erp.rate_limit.bucket_size", 1
        ),
        leak_per_second=reader.number(
            data.get("leak_per_second", defaults.leak_per_second),
            "erp.rate_limit.leak_per_second",
            0,
        ),
        retry_after=reader.number(
            data.get("retry_after", defaults.retry_after), "erp.rate_limit.retry_after", 0
        ),
    )


def _parse_seed_customer(reader: _Reader, raw: Any, path: str) -> ErpSeedCustomer:
    data = reader.mapping(raw, path, SEED_CUSTOMER_KEYS)
    for key in ("external_id", "name", "email"):
        if key not in data:
            raise reader.fail(f"{path}.{key}", "required")
    terms = data.get("payment_terms")
    if terms is not None and terms not in PAYMENT_TERMS:
        raise reader.fail(f"{path}.payment_terms", f"expected one of {', '.join(PAYMENT_TERMS)}")
    address = data.get("billing_address")
    customer = ErpSeedCustomer(
        external_id=reader.string(data["external_id"], f"{path}.external_id"),
        name=reader.string(data["name"], f"{path}.name"),
        email=reader.string(data["email"], f"{path}.email"),
        credit_limit=None
        if data.get("credit_limit") is None
        else reader.money(data["credit_limit"], f"{path}.credit_limit"),
        payment_terms=terms,
        billing_address=None
        if address is None
        else dict(reader.mapping(address, f"{path}.billing_address")),
    )
    # The same rules the API applies, so a seed the ERP would refuse fails at load, with its path.
    full = {
        key: value
        for key, value in customer.record().items()
        if key not in ERP_OWNED_CUSTOMER_FIELDS
    }
    for error in validate_record("customer", full):
        raise reader.fail(f"{path}.{error.field}", error.message)
    return customer


# ---- the app ---------------------------------------------------------------------------------
class ErpApp:
    """WSGI callable serving one sandbox ERP."""

    def __init__(
        self,
        config: ErpConfig,
        clock: ScenarioClock | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        # The scenario clock stamps `updated_at`; a standalone ERP gets a frozen one at "now".
        self.clock = standalone_clock(clock)
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.tokens = TokenIssuer(
            config.client_id, config.client_secret, config.token_ttl_seconds, wall_clock
        )
        self.buckets = LeakyBuckets(
            config.rate_limit.bucket_size, config.rate_limit.leak_per_second
        )
        self.stats = RequestStats(is_api_route=lambda route: route in API_ROUTES)
        self.store = ErpStore()
        self.faults: tuple[Fault, ...] = config.faults
        self._down = False
        self._writes_forbidden = False
        # Requests being answered right now: `wait_idle` lets a test await a slow answer's end.
        self._in_flight = 0
        self._idle = threading.Condition()
        now = self.clock.now()
        for customer in config.customers:
            self.store.seed("customer", customer.external_id, customer.record(), now)

    # ---- Python access for tests and the demo -----------------------------------------------
    def set_down(self, down: bool) -> None:
        """Simulate an outage: 503 to every request but `/_sandbox/*` until set back."""
        self._down = bool(down)

    @property
    def down(self) -> bool:
        return self._down

    def set_writes_forbidden(self, forbidden: bool) -> None:
        """Simulate a revoked write permission: 403 to every write (tokens and reads still answered)
        until set back, as an ERP answers a client whose role lost its write scope."""
        self._writes_forbidden = bool(forbidden)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no request is being answered (False if that takes longer than `timeout`)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def documents(self, record_type: str) -> list[dict[str, Any]]:
        """Every stored record of a type as the list endpoint shows it (with `created_at`)."""
        _known_type(record_type)
        return [
            {
                **stored.as_json(with_updated_at=True),
                "created_at": stored.created_at.isoformat(timespec="seconds"),
            }
            for stored in self.store.records(record_type)
        ]

    def snapshot(self) -> dict[str, Any]:
        """Requests by route and status, faults fired, documents per type, writes by kind."""
        return {
            **self.stats.snapshot(),
            "documents": self.store.counts(),
            "writes": self.store.writes.as_json(),
            "tokens_issued": self.tokens.issued,
            "down": self._down,
            "writes_forbidden": self._writes_forbidden,
        }

    # ---- WSGI -------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with self._idle:
            self._in_flight += 1
        try:
            return answer_routed(
                Request(environ), start_response, URL_MAP, self.stats, self._dispatch, self._refusal
            )
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _refusal(self, request: Request, error: HTTPException) -> Response:
        if isinstance(error, NotFound):
            return self._unavailable() if self._down else _error(404, "not_found", "Not Found")
        if isinstance(error, MethodNotAllowed):
            return _error(405, "method_not_allowed", "Method Not Allowed")
        return _error(error.code or 500, "http_error", error.name)

    def _dispatch(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if endpoint == "stats":
            return json_response(self.snapshot())
        if self._down:
            return self._unavailable()
        if endpoint == "token":
            status, body = self.tokens.issue(request.form)
            headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            return json_response(body, status, headers)
        return self._api(request, endpoint, arguments)

    def _api(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        request_number = self.stats.next_api_request()
        for fault in self.faults:
            if not fault.covers_request(request_number):
                continue
            self.stats.fault_fired(fault.kind)
            if fault.kind == "expire_tokens":
                self.tokens.expire_all()
            elif fault.kind == "slow":
                self.sleep(fault.delay_seconds)
            elif fault.kind == "down":
                return self._unavailable()
            else:
                return _error(
                    fault.status,
                    "server_error",
                    SERVER_ERROR_MESSAGES.get(fault.status, "Server Error"),
                )
        check = self.tokens.check(request.headers.get("Authorization"))
        if check != "ok":
            return _error(
                401,
                "invalid_token",
                TOKEN_EXPIRED if check == "expired" else TOKEN_INVALID,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                message_key="error_description",
            )
        if self._writes_forbidden and endpoint in WRITE_ROUTES:
            return _error(403, "insufficient_scope", WRITES_FORBIDDEN)
        # One client per credential pair: the bucket is the client's, whichever token it holds.
        decision = self.buckets.try_acquire(self.config.client_id, self.wall_clock())
        if not decision.allowed:
            return _error(
                429,
                "rate_limited",
                "Too many requests; slow down",
                {"Retry-After": f"{self.config.rate_limit.retry_after:g}"},
            )
        record_type = arguments["record_type"]
        if record_type not in RECORD_TYPES:
            return _error(
                404,
                "not_found",
                f"unknown record type {record_type!r} (expected one of {', '.join(RECORD_TYPES)})",
            )
        if endpoint == "put_record":
            status, body, replayed = self._upsert(
                record_type,
                arguments["external_id"],
                json_or_none(request.get_data()),
                request.headers.get("Idempotency-Key"),
            )
            headers = {"Idempotent-Replayed": "true"} if replayed else None
            return json_response(body, status, headers)
        if endpoint == "batch_records":
            return self._batch(request, record_type)
        if endpoint == "get_record":
            stored = self.store.get(record_type, arguments["external_id"])
            if stored is None:
                return _error(404, "not_found", f"no {record_type} with this external id")
            return json_response(stored.as_json())
        return self._list(request, record_type)

    def _upsert(
        self, record_type: str, external_id: str, body: Any, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any], bool]:
        """One record's upsert: (status, answer body, replayed), the same for a PUT or a batch entry."""
        if not isinstance(body, dict):
            return _validation_error([FieldError("", "invalid", "the body must be a JSON object")])
        credit_terms_only = is_credit_terms_write(record_type, body)
        errors = (
            validate_credit_terms(body) if credit_terms_only else validate_record(record_type, body)
        )
        if errors:
            return _validation_error(errors)
        try:
            result = self.store.upsert(
                record_type,
                external_id,
                body,
                self.clock.now(),
                idempotency_key,
                credit_terms_only=credit_terms_only,
            )
        except ReferencesMissing as missing:
            return _validation_error(missing.errors, "a referenced record does not exist")
        except RecordConflict as conflict:
            return 409, {"error": "conflict", "message": str(conflict)}, False
        except IdempotencyKeyReused as reused:
            return 422, {"error": "idempotency_key_reused", "message": str(reused)}, False
        return result.status, result.body, result.replayed

    def _batch(self, request: Request, record_type: str) -> Response:
        """Upsert each entry in turn; a malformed envelope is refused whole, before any write."""
        entries = bulk_entries(json_or_none(request.get_data()))
        if isinstance(entries, EnvelopeProblem):
            return _validation_failed([FieldError(*entries)], MALFORMED)
        return json_response(
            bulk_answer(
                entries,
                lambda external_id, body, key: self._upsert(record_type, external_id, body, key),
            )
        )

    def _list(self, request: Request, record_type: str) -> Response:
        errors: list[FieldError] = []
        since = None
        if request.args.get("updated_since"):
            try:
                since = datetime.fromisoformat(request.args["updated_since"].replace(" ", "+"))
                if since.tzinfo is None:
                    since = since.replace(tzinfo=UTC)
            except ValueError:
                errors.append(
                    FieldError("updated_since", "invalid", "must be an ISO-8601 timestamp")
                )
        limit = _bounded_int(request.args.get("limit"), DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT)
        offset = _bounded_int(request.args.get("offset"), 0, 0, None)
        if limit is None:
            errors.append(
                FieldError("limit", "invalid", f"must be an integer from 1 to {MAX_LIST_LIMIT}")
            )
        if offset is None:
            errors.append(FieldError("offset", "invalid", "must be an integer >= 0"))
        if errors or limit is None or offset is None:
            return _validation_failed(errors)
        page, total = self.store.page(record_type, since, offset, limit)
        return json_response(
            {"records": [stored.as_json(with_updated_at=True) for stored in page], "total": total}
        )

    def _unavailable(self) -> Response:
        return _error(503, "service_unavailable", "The ERP is temporarily unavailable")


def _known_type(record_type: str) -> None:
    if record_type not in RECORD_TYPES:
        raise ValueError(
            f"unknown record type {record_type!r} (expected one of {', '.join(RECORD_TYPES)})"
        )


def _bounded_int(value: str | None, default: int, minimum: int, maximum: int | None) -> int | None:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return None
    if number < minimum or (maximum is not None and number > maximum):
        return None
    return number


def _error(
    status: int,
    error: str,
    message: str,
    headers: dict[str, str] | None = None,
    message_key: str = "message",
) -> Response:
    return json_response({"error": error, message_key: message}, status, headers)


def _validation_error(
    errors: list[FieldError], message: str = "the record failed validation"
) -> tuple[int, dict[str, Any], bool]:
    body = {
        "error": "validation_failed",
        "message": message,
        "fields": [error.as_json() for error in errors],
    }
    return 400, body, False


def _validation_failed(
    errors: list[FieldError], message: str = "the record failed validation"
) -> Response:
    status, body, _ = _validation_error(errors, message)
    return json_response(body, status)


# ---- serving ---------------------------------------------------------------------------------
class RunningErp(ServedApp):
    """The sandbox ERP listening on a socket; a context manager (see `start_erp`)."""

    system_name = "erp"

    def __init__(self, config: ErpConfig, server: Any, app: ErpApp) -> None:
        super().__init__(None, server, app)  # type: ignore[arg-type]  # no storefront scenario
        self.config = config

    @property
    def erp(self) -> ErpApp:
        return self.app

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    def stats(self) -> dict[str, Any]:
        """Requests by route and status, faults fired, documents per type, writes."""
        return self.app.snapshot()

    def system(self) -> dict[str, str]:
        """What the ready file says about the ERP: where it listens and how to authenticate."""
        return {
            "url": self.url,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


def start_erp(
    config: ErpConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: ScenarioClock | None = None,
) -> RunningErp:
    """Serve the ERP on host:port (0: a free port) from a daemon thread; returns once it listens."""
    return serve(RunningErp, config, ErpApp(config, clock), host, port)
