"""A local stand-in for a Slack incoming webhook: the default alert sink for the demo and the tests.

`POST /hooks/alerts` (or `/hooks/alerts/<token>` when the receiver is given a token, as Slack's
URLs carry one) takes JSON with a non-empty `text`, answers 200 `ok` in text/plain as Slack does,
and appends the payload as one JSON line to a file. A body that is not such JSON gets 400
`invalid_payload`; a wrong token gets 404 `no_service`, again in Slack's words. Faults (the
scenario's `Fault`: `server_error` with a status, `slow_response` with a delay) let tests see what
the sink does when the webhook misbehaves.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.request_faults import answering_fault
from integration_assets.sandbox.routing import answer_routed
from integration_assets.sandbox.scenario import Fault
from integration_assets.sandbox.served_app import ServedApp, serve
from integration_assets.sandbox.storefront_app import RequestStats

HOOK_PATH = "/hooks/alerts"
MAX_BODY_BYTES = 1_000_000  # Slack refuses large payloads too; a receiver must not buffer anything
FAULT_KINDS = ("server_error", "slow_response")

URL_MAP = Map(
    [
        Rule(HOOK_PATH, endpoint="hook", methods=["POST"]),
        Rule(f"{HOOK_PATH}/<path:token>", endpoint="hook", methods=["POST"]),
        Rule("/_sandbox/stats", endpoint="stats", methods=["GET"]),
    ]
)


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, content_type="text/plain; charset=utf-8")


def _refusal(request: Request, error: HTTPException) -> Response:
    if isinstance(error, NotFound):
        return _text("no_service", 404)
    if isinstance(error, MethodNotAllowed):
        return _text("invalid_method", 405)
    return _text(error.name.lower().replace(" ", "_"), error.code or 400)  # e.g. a body too large


class AlertReceiverApp:
    """WSGI callable: receives Slack-compatible webhook posts and keeps them, one JSON line each."""

    clock = None  # `ServedApp` reads a scenario clock; a receiver lives outside scenario time

    def __init__(
        self,
        log_path: Path,
        token: str | None = None,
        faults: Sequence[Fault] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = sorted({fault.kind for fault in faults} - set(FAULT_KINDS))
        if unknown:
            raise ValueError(
                f"alert receiver faults: unknown kind {unknown[0]!r} (allowed: {', '.join(FAULT_KINDS)})"
            )
        self.log_path = Path(log_path)
        self.token = token
        self.faults = tuple(faults)
        self.sleep = sleep
        self.stats = RequestStats(is_api_route=lambda route: route == "hook")
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        return answer_routed(request, start_response, URL_MAP, self.stats, self._route, _refusal)

    def _route(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if endpoint == "stats":
            return Response(json.dumps(self.stats.snapshot()), content_type="application/json")
        return self._hook(request, arguments.get("token"))

    def _hook(self, request: Request, token: str | None) -> Response:
        if token != self.token:
            return _text("no_service", 404)
        fault = answering_fault(self.stats, self.faults, self.sleep)
        if fault is not None:
            return _text("server_error", fault.status)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _text("request_too_large", 413)
        try:
            payload = json.loads(request.get_data(cache=False))
        except ValueError:
            return _text("invalid_payload", 400)
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("text"), str)
            or not payload["text"].strip()
        ):
            return _text("invalid_payload", 400)
        line = json.dumps(
            {"received_at": datetime.now(UTC).isoformat(), "payload": payload}, ensure_ascii=False
        )
        with self._lock:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as received:
                received.write(line + "\n")
        return _text("ok", 200)

    def received(self) -> list[dict[str, Any]]:
        """Every payload received so far, oldest first."""
        with self._lock:
            if not self.log_path.exists():
                return []
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["payload"] for line in lines if line]


class RunningAlertReceiver(ServedApp):
    """The receiver listening on a socket; a context manager. Post alerts to `hook_url`."""

    system_name = "alert-receiver"

    @property
    def hook_url(self) -> str:
        token = self.app.token
        return f"{self.url}{HOOK_PATH}" + (f"/{token}" if token else "")

    def received(self) -> list[dict[str, Any]]:
        return self.app.received()


def start_alert_receiver(
    log_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    faults: Sequence[Fault] = (),
) -> RunningAlertReceiver:
    """Serve the receiver on host:port (0 = a free port) from a daemon thread; returns at once.

    With `token`, only `/hooks/alerts/<token>` is accepted, as a Slack webhook URL carries its secret.
    """
    app = AlertReceiverApp(Path(log_path), token=token, faults=faults)
    # No scenario: the receiver serves whatever is posted to it.
    return serve(RunningAlertReceiver, None, app, host, port)
