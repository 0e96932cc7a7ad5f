"""Run the sandbox systems on real sockets: in-process for tests, or as a process for the demo.

`start_storefront` serves the storefront alone from a daemon thread and returns at once (port 0
picks a free port); `start_sandbox_systems` serves every system (storefront and payments), each on
its own port, all sharing ONE scenario clock; `serve_forever` is what `integration-assets sandbox serve` and `python -m integration_assets.sandbox`
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
from integration_assets.sandbox.payments_app import PaymentsApp
from integration_assets.sandbox.payments_ledger import PaymentsLedger
from integration_assets.sandbox.scenario import Scenario, load_scenario
from integration_assets.sandbox.storefront_app import StorefrontApp
from integration_assets.sandbox.warehouse_files import WarehouseInbox


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (a demo makes thousands); errors are still reported.

    HTTP/1.1 keeps connections alive, as a real client's session pool expects.
    """

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _ServedApp:
    """A WSGI app served from a daemon thread on its own socket; a context manager."""

    system_name = "sandbox"

    def __init__(self, scenario: Scenario, server: BaseWSGIServer, app: Any) -> None:
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


class RunningSandbox(_ServedApp):
    """A storefront listening on 127.0.0.1; use as a context manager or call `stop()`."""

    system_name = "storefront"

    def __init__(self, scenario: Scenario, server: BaseWSGIServer, app: StorefrontApp) -> None:
        super().__init__(scenario, server, app)
        self.warehouse: WarehouseInbox | None = None  # the WMS inbox, when one was given

    @property
    def access_token(self) -> str:
        return self.scenario.shop.access_token

    @property
    def api_version(self) -> str:
        return self.scenario.shop.api_version

    def api_url(self, resource: str, version: str | None = None) -> str:
        return f"{self.url}/admin/api/{version or self.api_version}/{resource}"

    def systems(self) -> dict[str, dict[str, str]]:
        """What the ready file says: where each sandbox system listens and how to talk to it."""
        systems = {
            "storefront": {
                "url": self.url,
                "api_version": self.api_version,
                "access_token": self.access_token,
            }
        }
        if self.warehouse is not None:
            systems["warehouse"] = {"inbox": str(self.warehouse.inbox)}
        return systems

    def stop(self) -> None:
        stopping = not self._stopped
        super().stop()
        if stopping and self.warehouse is not None:
            self.warehouse.close()


def start_storefront(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    clock_speed: float | None = None,
    warehouse_inbox: Path | None = None,
) -> RunningSandbox:
    """Serve `scenario` (a Scenario or a path to its YAML) on host:port from a daemon thread.

    With `warehouse_inbox`, the sandbox WMS writes the scenario's CSV files there as the clock moves.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    speed = scenario.clock.speed if clock_speed is None else clock_speed
    clock = ScenarioClock(scenario.clock.start, speed)
    app = StorefrontApp(scenario, clock)
    wms = None if warehouse_inbox is None else WarehouseInbox(scenario, clock, warehouse_inbox)
    wsgi = app if wms is None else wms.wrap(app)
    server = make_server(host, port, wsgi, threaded=True, request_handler=_QuietRequestHandler)
    sandbox = RunningSandbox(scenario, server, app)
    sandbox.warehouse = wms
    return sandbox._start()


class RunningPayments(_ServedApp):
    """The Stripe-compatible payments sandbox listening on a socket (see `start_sandbox_systems`)."""

    system_name = "payments"

    @property
    def secret_key(self) -> str:
        return self.scenario.payments.secret_key

    @property
    def ledger(self) -> PaymentsLedger:
        return self.app.ledger

    def system(self) -> dict[str, str]:
        return {"url": self.url, "secret_key": self.secret_key}


class RunningSystems:
    """Every sandbox system of one scenario, sharing one clock; a context manager."""

    def __init__(
        self,
        scenario: Scenario,
        clock: ScenarioClock,
        storefront: RunningSandbox,
        payments: RunningPayments,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.storefront = storefront
        self.payments = payments

    def systems(self) -> dict[str, dict[str, str]]:
        """What the ready file says: where each sandbox system listens and how to talk to it."""
        return {**self.storefront.systems(), "payments": self.payments.system()}

    def stop(self) -> None:
        self.payments.stop()
        self.storefront.stop()

    def __enter__(self) -> RunningSystems:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox_systems(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    clock_speed: float | None = None,
    storefront_port: int = 0,
    payments_port: int = 0,
    warehouse_inbox: Path | None = None,
) -> RunningSystems:
    """Serve the storefront and the payments sandbox, each on its own port, on ONE scenario clock.

    Moving the clock anywhere (`RunningSystems.clock`, or `POST /_sandbox/clock` on either server)
    moves it for every system.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    speed = scenario.clock.speed if clock_speed is None else clock_speed
    clock = ScenarioClock(scenario.clock.start, speed)
    ledger = PaymentsLedger(scenario)  # its replay is the storefront's order book too
    storefront_app = StorefrontApp(scenario, clock, order_book=ledger.order_book)
    payments_app = PaymentsApp(scenario, clock, ledger)
    wms = None if warehouse_inbox is None else WarehouseInbox(scenario, clock, warehouse_inbox)
    storefront_server = make_server(
        host,
        storefront_port,
        storefront_app if wms is None else wms.wrap(storefront_app),
        threaded=True,
        request_handler=_QuietRequestHandler,
    )
    try:
        payments_server = make_server(
            host,
            payments_port,
            payments_app if wms is None else wms.wrap(payments_app),
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
    except OSError:
        storefront_server.server_close()
        raise
    storefront = RunningSandbox(scenario, storefront_server, storefront_app)
    storefront.warehouse = wms
    storefront._start()
    payments = RunningPayments(scenario, payments_server, payments_app)._start()
    return RunningSystems(scenario, clock, storefront, payments)


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
    payments_port: int = 0,
    warehouse_inbox: Path | None = None,
) -> None:
    """Serve every system until SIGTERM/SIGINT; write `ready_file` (JSON) once all listen.

    `port` is the storefront's; the payments sandbox listens on `payments_port` (0 = a free one).
    """
    scenario = load_scenario(scenario_path)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with start_sandbox_systems(
            scenario,
            host,
            clock_speed,
            storefront_port=port,
            payments_port=payments_port,
            warehouse_inbox=warehouse_inbox,
        ) as systems:
            sandbox = systems.storefront
            print(
                f"storefront: {sandbox.url} (Shopify Admin REST {sandbox.api_version}, "
                f"scenario {scenario.name!r}, clock {sandbox.clock.now().isoformat()} "
                f"at {sandbox.clock.speed:g}x)",
                flush=True,
            )
            print(f"payments: {systems.payments.url} (Stripe API, shared clock)", flush=True)
            if sandbox.warehouse is not None:
                print(f"warehouse: {sandbox.warehouse.inbox} (WMS CSV file drops)", flush=True)
            if ready_file is not None:
                _write_atomically(Path(ready_file), json.dumps(systems.systems(), indent=2))
            while not stop_requested.wait(0.5):
                pass
            print("storefront: stopping", flush=True)
            print("payments: stopping", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
