"""The request path every target sandbox shares: match a route, answer, count the answer.

Each system words its errors its own way (Salesforce's error list, the ERP's `{"error": ...}`, the
alert receiver's plain text), so each passes its own `refuse`; what must not differ is that every
answer, refused or not, is counted in the system's `RequestStats` under the route it took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.storefront_app import RequestStats

# (request, endpoint, route arguments) -> the answer
Handler = Callable[[Request, str, dict[str, Any]], Response]
# (request, the werkzeug error: NotFound, MethodNotAllowed, a body over the limit...) -> the answer
Refusal = Callable[[Request, HTTPException], Response]


def answer_routed(
    request: Request,
    start_response: Callable[..., Any],
    url_map: Map,
    stats: RequestStats,
    handle: Handler,
    refuse: Refusal,
) -> Iterable[bytes]:
    """Answer `request` by the endpoint `url_map` matches; a request no route takes, or one that
    werkzeug refuses while it is handled, is answered by `refuse` and counted as `unmatched` or
    under its route."""
    route = "unmatched"
    try:
        endpoint, arguments = url_map.bind_to_environ(request.environ).match()
        route = endpoint
        response = handle(request, endpoint, arguments)
    except HTTPException as error:
        response = refuse(request, error)
    stats.record(route, response.status_code)
    return response(request.environ, start_response)
