"""The sandbox payment provider as a WSGI app: the Stripe API's read side, as Stripe speaks it.

`GET /v1/{charges|refunds|balance_transactions|disputes|payouts|events}` (list) and `/v1/{...}/{id}`,
Bearer (or Basic) secret-key auth, Stripe's list envelope with `limit`/`starting_after`/
`ending_before` cursors (newest first), `created[gte|gt|lte|lt]` filters, Stripe's error shapes,
and a rate-limit fault. `/_sandbox/*` (clock and stats) needs no key. The data comes from
`PaymentsLedger` at the shared scenario clock's now.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import fnmatch
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.clock import ScenarioClock, parse_duration
from integration_assets.sandbox.payments_ledger import (
    OBJECT_NAMES,
    RESOURCES,
    STRIPE_API_VERSION,
    PaymentsLedger,
    PaymentsSnapshot,
)
from integration_assets.sandbox.scenario import Fault, Scenario
from integration_assets.sandbox.storefront_app import (
    BadRequest,
    RequestStats,
    json_response,
    parse_filter_time,
)

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
CREATED_OPERATORS = ("gt", "gte", "lt", "lte")
COMMON_PARAMS = {"limit", "starting_after", "ending_before", "created"} | {
    f"created[{op}]" for op in CREATED_OPERATORS
}
EXTRA_PARAMS = {
    "charges": set(),
    "refunds": {"charge"},
    "balance_transactions": {"payout", "type", "source", "currency"},
    "disputes": {"charge"},
    "payouts": {"status"},
    "events": {"type", "types[]"},
}
API_ENDPOINTS = {"list", "retrieve"}
CURSOR_PARAMS = ("limit", "starting_after", "ending_before")
SELECTION_CACHE_SIZE = 32  # (snapshot time, resource, filters) selections kept for the next pages
RATE_LIMIT_MESSAGE = "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."

URL_MAP = Map(
    [
        Rule("/v1/<resource>", endpoint="list", methods=["GET"]),
        Rule("/v1/<resource>/<object_id>", endpoint="retrieve", methods=["GET"]),
        Rule("/_sandbox/clock", endpoint="clock", methods=["GET", "POST"]),
        Rule("/_sandbox/stats", endpoint="stats", methods=["GET"]),
    ]
)


class StripeError(Exception):
    """An answer in Stripe's error shape: `{"error": {"type", "message", "code"?, "param"?}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def mask_key(key: str) -> str:
    """`sk_test_abc...1234` -> `sk_test_****1234`: what Stripe shows of a key it refuses."""
    parts = key.split("_")
    prefix = "_".join(parts[:2]) + "_" if len(parts) >= 3 else ""
    tail = key[-4:] if len(key) - len(prefix) > 8 else ""
    return f"{prefix}****{tail}"


def presented_key(request: Request) -> str | None:
    """The secret key from `Authorization: Bearer sk_...` or Basic (key as the user name)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[0]
    return None


@dataclass(frozen=True)
class Selection:
    """What one list filter matches in one snapshot: newest first, and the keys oldest first."""

    objects: list[dict[str, Any]]
    ascending_keys: list[tuple[int, str]]  # (created, id) of `objects`, reversed


def newest_first_page(
    ascending_keys: Sequence[tuple[int, str]],
    limit: int,
    starting_after: tuple[int, str] | None = None,
    ending_before: tuple[int, str] | None = None,
) -> tuple[int, int, bool]:
    """The page of a newest-first list (keys given oldest first, unique) that a Stripe cursor asks for.

    Returns `(start, stop, has_more)` as positions in the newest-first list: the `limit` objects
    just older than `starting_after`, else the `limit` just newer than `ending_before`, else the
    newest `limit`. Binary search, so a page deep into the list costs what the first one does.
    """
    total = len(ascending_keys)
    if starting_after is not None:
        older = bisect.bisect_left(ascending_keys, starting_after)
        start = total - older
        return start, start + min(limit, older), older > limit
    if ending_before is not None:
        newer = total - bisect.bisect_right(ascending_keys, ending_before)
        return max(0, newer - limit), newer, newer > limit
    return 0, min(total, limit), total > limit


def _is_api_route(route: str) -> bool:
    return route in RESOURCES or route.endswith("/{id}")


class PaymentsApp:
    """WSGI callable serving one scenario's Stripe account."""

    def __init__(
        self, scenario: Scenario, clock: ScenarioClock, ledger: PaymentsLedger | None = None
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.ledger = ledger or PaymentsLedger(scenario)
        self.stats = RequestStats(is_api_route=_is_api_route)
        self.request_faults: list[Fault] = list(scenario.payments.faults)
        self._request_ids = 0
        self._request_ids_lock = threading.Lock()
        # Walking a list is many requests with the same filters on the same snapshot: each page
        # reuses the selection the first one made.
        self._selections: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._selections_lock = threading.Lock()

    # ---- WSGI -------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        route = "unmatched"
        try:
            endpoint, arguments = URL_MAP.bind_to_environ(environ).match()
            if endpoint in API_ENDPOINTS:
                resource = arguments["resource"]
                route = resource if endpoint == "list" else f"{resource}/{{id}}"
                if resource not in RESOURCES:
                    route = "unmatched"
                response = self._api(request, endpoint, arguments)
            else:
                route = endpoint
                response = getattr(self, f"_control_{endpoint}")(request)
        except NotFound:
            response = self._unrecognized(request)
        except MethodNotAllowed:
            response = self._error(
                StripeError(
                    405,
                    f"Unrecognized request URL ({request.method}: {request.path}). "
                    "The payments sandbox is read-only.",
                )
            )
        except HTTPException as error:
            response = self._error(StripeError(error.code or 500, error.name, "api_error"))
        self.stats.record(route, response.status_code)
        return response(environ, start_response)

    def _next_request_id(self) -> str:
        with self._request_ids_lock:
            self._request_ids += 1
            return f"req_sandbox{self._request_ids:010d}"

    def _error(self, error: StripeError) -> Response:
        return json_response(error.body(), error.status)

    def _unrecognized(self, request: Request) -> Response:
        return self._error(
            StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        )

    # ---- the API ----------------------------------------------------------------------------
    def _api(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        headers = {
            "Request-Id": self._next_request_id(),
            "Stripe-Version": request.headers.get("Stripe-Version") or STRIPE_API_VERSION,
        }
        key = presented_key(request)
        if key is None:
            response = self._error(
                StripeError(
                    401,
                    "You did not provide an API key. You need to provide your API key in the "
                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                )
            )
            response.headers.update(headers)
            return response
        if key != self.ledger.secret_key:
            response = self._error(StripeError(401, f"Invalid API Key provided: {mask_key(key)}"))
            response.headers.update(headers)
            return response
        request_number = self.stats.next_api_request()
        for fault in self.request_faults:
            if fault.covers_request(request_number):
                self.stats.fault_fired(fault.kind)
                response = self._error(
                    StripeError(429, RATE_LIMIT_MESSAGE, "rate_limit_error", code="rate_limit")
                )
                response.headers.update(headers)
                return response
        resource = arguments["resource"]
        if resource not in RESOURCES:
            return self._unrecognized(request)
        snapshot = self.ledger.snapshot(self.clock.now())
        try:
            if endpoint == "list":
                response = json_response(self._list(request, resource, snapshot))
            else:
                response = json_response(self._retrieve(resource, arguments["object_id"], snapshot))
        except StripeError as error:
            response = self._error(error)
        response.headers.update(headers)
        return response

    def _retrieve(
        self, resource: str, object_id: str, snapshot: PaymentsSnapshot
    ) -> dict[str, Any]:
        found = snapshot.by_id[resource].get(object_id)
        if found is None:
            raise StripeError(
                404,
                f"No such {OBJECT_NAMES[resource]}: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return found

    def _list(self, request: Request, resource: str, snapshot: PaymentsSnapshot) -> dict[str, Any]:
        args = request.args
        allowed = COMMON_PARAMS | EXTRA_PARAMS[resource]
        for param in args:
            if param not in allowed:
                raise StripeError(400, f"Received unknown parameter: {param}", param=param)
        limit = _limit(args.get("limit"))
        starting_after = args.get("starting_after")
        ending_before = args.get("ending_before")
        if starting_after is not None and ending_before is not None:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="starting_after",
            )
        objects = snapshot.lists[resource]
        cursor_param = "starting_after" if starting_after is not None else "ending_before"
        cursor_id = starting_after if starting_after is not None else ending_before
        cursor_key = None
        if cursor_id is not None:
            cursor = snapshot.by_id[resource].get(cursor_id)
            if cursor is None:
                raise StripeError(
                    400,
                    f"No such {OBJECT_NAMES[resource]}: '{cursor_id}'",
                    code="resource_missing",
                    param=cursor_param,
                )
            cursor_key = (cursor["created"], cursor["id"])
        matching = self._selected(objects, args, resource, snapshot)
        start, stop, has_more = newest_first_page(
            matching.ascending_keys,
            limit,
            starting_after=cursor_key if starting_after is not None else None,
            ending_before=cursor_key if starting_after is None else None,
        )
        page = matching.objects[start:stop]
        return {"object": "list", "url": f"/v1/{resource}", "has_more": has_more, "data": page}

    def _selected(
        self,
        objects: list[dict[str, Any]],
        args: Any,
        resource: str,
        snapshot: PaymentsSnapshot,
    ) -> Selection:
        """The objects matching the request's filters, made once per (snapshot, filters) and reused."""
        filters = tuple(
            sorted((name, tuple(args.getlist(name))) for name in args if name not in CURSOR_PARAMS)
        )
        key = (snapshot.at, resource, filters)
        with self._selections_lock:
            cached = self._selections.get(key)
            if cached is not None:
                self._selections.move_to_end(key)
                return cached
        # `objects` is newest first: descending (created, id). A bad filter raises here, uncached.
        matching = [obj for obj in objects if self._matches(obj, args, resource, snapshot)]
        selection = Selection(matching, [(obj["created"], obj["id"]) for obj in reversed(matching)])
        with self._selections_lock:
            self._selections[key] = selection
            while len(self._selections) > SELECTION_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    def _matches(
        self, obj: dict[str, Any], args: Any, resource: str, snapshot: PaymentsSnapshot
    ) -> bool:
        created = obj["created"]
        if "created" in args and created != _integer("created", args["created"]):
            return False
        for op in CREATED_OPERATORS:
            name = f"created[{op}]"
            if name not in args:
                continue
            bound = _integer(name, args[name])
            if op == "gt" and not created > bound:
                return False
            if op == "gte" and not created >= bound:
                return False
            if op == "lt" and not created < bound:
                return False
            if op == "lte" and not created <= bound:
                return False
        if (
            resource in ("refunds", "disputes")
            and "charge" in args
            and obj["charge"] != args["charge"]
        ):
            return False
        if resource == "balance_transactions":
            if "payout" in args:
                payout = args["payout"]
                if payout not in snapshot.payout_members:
                    raise StripeError(
                        400,
                        f"No such payout: '{payout}'",
                        code="resource_missing",
                        param="payout",
                    )
                if obj["id"] not in snapshot.payout_members[payout]:
                    return False
            for name in ("type", "source", "currency"):
                if name in args and obj[name] != args[name]:
                    return False
        if resource == "events":
            return _event_type_matches(obj["type"], args)
        return not (resource == "payouts" and "status" in args and obj["status"] != args["status"])

    # ---- sandbox control ----------------------------------------------------------------------
    def _clock_payload(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "now": now.astimezone(self.scenario.shop.tz).isoformat(timespec="seconds"),
            "now_utc": now.isoformat(timespec="seconds"),
            "now_unix": int(now.timestamp()),
            "speed": self.clock.speed,
        }

    def _control_clock(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(self._clock_payload())
        try:
            payload = json.loads(request.get_data() or b"{}")
        except ValueError:
            return json_response({"errors": 'the body must be JSON like {"advance": "4h"}'}, 400)
        if not isinstance(payload, dict) or len({"advance", "set"} & payload.keys()) != 1:
            return json_response(
                {"errors": 'send exactly one of {"advance": "4h"} or {"set": iso}'}, 400
            )
        try:
            if "advance" in payload:
                self.clock.advance(parse_duration(payload["advance"]))
            else:
                self.clock.set(parse_filter_time("set", str(payload["set"]), self.scenario.shop.tz))
        except ValueError as error:
            return json_response({"errors": str(error)}, 400)
        except BadRequest as error:
            return json_response({"errors": error.message}, 400)
        return json_response(self._clock_payload())

    def _control_stats(self, request: Request) -> Response:
        return json_response(self.stats.snapshot())


def _event_type_matches(event_type: str, args: Any) -> bool:
    """Stripe's event filters: `type` (one name, or a group with `*`: `charge.*`) or `types[]`
    (several names); not both."""
    if "type" in args and "types[]" in args:
        raise StripeError(
            400, "You may only specify one of these parameters: type, types.", param="type"
        )
    if "type" in args:
        return fnmatch.fnmatchcase(event_type, args["type"])
    if "types[]" in args:
        return event_type in args.getlist("types[]")
    return True


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", param="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise StripeError(
            400,
            f"Invalid limit: must be between 1 and {MAX_LIMIT}, got {limit}",
            param="limit",
        )
    return limit


def _integer(param: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", param=param) from None
