"""A WSGI app served from a daemon thread on its own socket: the base of every sandbox system."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from integration_assets.sandbox.clock import ScenarioClock


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (a demo makes thousands); errors are still reported.

    HTTP/1.1 keeps connections alive, as a real client's session pool expects.
    """

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def standalone_clock(clock: ScenarioClock | None = None) -> ScenarioClock:
    """`clock`, or for a target sandbox started on its own, a clock frozen at now (whole seconds):
    it stamps what the system stores, and a test moves it explicitly instead of sleeping."""
    return clock or ScenarioClock(datetime.now(UTC).replace(microsecond=0))


class StopsOnExit:
    """A context manager whose exit calls `stop()`: a served system, or a group of them."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ServedApp(StopsOnExit):
    """A WSGI app served from a daemon thread on its own socket; a context manager."""

    system_name = "sandbox"

    def __init__(self, scenario: Any, server: BaseWSGIServer, app: Any) -> None:
        self.scenario = scenario
        self._server = server
        self.app = app
        self.clock: ScenarioClock = app.clock
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name=f"sandbox-{self.system_name}-{server.server_port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_port}"

    @property
    def port(self) -> int:
        return self._server.server_port

    def stats(self) -> dict[str, Any]:
        """Requests by route and status, API requests counted, faults fired."""
        return self.app.stats.snapshot()

    def _start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


Served = TypeVar("Served", bound=ServedApp)


def serve(
    running_class: type[Served],
    subject: Any,
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    wsgi: Any = None,
) -> Served:
    """Listen on host:port (0 = a free port) and serve from a daemon thread; returns once it listens.

    `subject` is what the app serves (a scenario, a system's config, or None) and becomes the
    running system's `scenario`; `wsgi` is what answers requests when it is not `app` itself
    (e.g. `app` wrapped by the WMS inbox), while stats and the clock still come from `app`.
    """
    server = make_server(
        host,
        port,
        app if wsgi is None else wsgi,
        threaded=True,
        request_handler=QuietRequestHandler,
    )
    return running_class(subject, server, app)._start()
