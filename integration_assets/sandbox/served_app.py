"""A WSGI app served from a daemon thread on its own socket: the base of every sandbox system."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from integration_assets.sandbox.clock import ScenarioClock


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (a demo makes thousands); errors are still reported.

    HTTP/1.1 keeps connections alive, as a real client's session pool expects.
    """

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class ServedApp:
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

    def _start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
