"""Run the sandbox storefront on a real socket: in-process for tests, or as a process for the demo.

`start_storefront` serves from a daemon thread and returns at once (port 0 picks a free port);
`serve_forever` is what `integration-assets sandbox serve` and `python -m integration_assets.sandbox`
run: it writes a ready file once it listens (so a parent process knows where, without parsing
output) and stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.scenario import Scenario, load_scenario
from integration_assets.sandbox.storefront_app import StorefrontApp


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (a demo makes thousands); errors are still reported.

    HTTP/1.1 keeps connections alive, as a real client's session pool expects.
    """

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class RunningSandbox:
    """A storefront listening on 127.0.0.1; use as a context manager or call `stop()`."""

    def __init__(self, scenario: Scenario, server: BaseWSGIServer, app: StorefrontApp) -> None:
        self.scenario = scenario
        self._server = server
        self.app = app
        self.clock: ScenarioClock = app.clock
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name=f"sandbox-storefront-{server.server_port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_port}"

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def access_token(self) -> str:
        return self.scenario.shop.access_token

    @property
    def api_version(self) -> str:
        return self.scenario.shop.api_version

    def api_url(self, resource: str, version: str | None = None) -> str:
        return f"{self.url}/admin/api/{version or self.api_version}/{resource}"

    def stats(self) -> dict[str, Any]:
        """Requests by route and status, API requests counted, faults fired."""
        return self.app.stats.snapshot()

    def systems(self) -> dict[str, dict[str, str]]:
        """What the ready file says: where each sandbox system listens and how to talk to it."""
        return {
            "storefront": {
                "url": self.url,
                "api_version": self.api_version,
                "access_token": self.access_token,
            }
        }

    def _start(self) -> RunningSandbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_storefront(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    clock_speed: float | None = None,
) -> RunningSandbox:
    """Serve `scenario` (a Scenario or a path to its YAML) on host:port from a daemon thread."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    speed = scenario.clock.speed if clock_speed is None else clock_speed
    clock = ScenarioClock(scenario.clock.start, speed)
    app = StorefrontApp(scenario, clock)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietRequestHandler)
    return RunningSandbox(scenario, server, app)._start()


def _write_atomically(path: Path, content: str) -> None:
    """Readers poll for this file; they must never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(content)
    temporary.replace(path)


def serve_forever(
    scenario_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    clock_speed: float | None = None,
    ready_file: str | Path | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; write `ready_file` (JSON) once listening."""
    scenario = load_scenario(scenario_path)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with start_storefront(scenario, host, port, clock_speed) as sandbox:
            print(
                f"storefront: {sandbox.url} (Shopify Admin REST {sandbox.api_version}, "
                f"scenario {scenario.name!r}, clock {sandbox.clock.now().isoformat()} "
                f"at {sandbox.clock.speed:g}x)",
                flush=True,
            )
            if ready_file is not None:
                _write_atomically(Path(ready_file), json.dumps(sandbox.systems(), indent=2))
            while not stop_requested.wait(0.5):
                pass
            print("storefront: stopping", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
