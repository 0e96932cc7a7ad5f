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
from types import FrameType

from werkzeug.serving import BaseWSGIServer

from integration_assets.sandbox.alert_receiver import RunningAlertReceiver, start_alert_receiver
from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.crm_app import RunningCrm, start_crm
from integration_assets.sandbox.erp_app import RunningErp, start_erp
from integration_assets.sandbox.payments_app import PaymentsApp
from integration_assets.sandbox.payments_ledger import PaymentsLedger
from integration_assets.sandbox.scenario import Scenario, load_scenario_with_ledger
from integration_assets.sandbox.served_app import ServedApp, StopsOnExit, serve
from integration_assets.sandbox.storefront_app import StorefrontApp
from integration_assets.sandbox.warehouse_files import WarehouseInbox
from integration_assets.sandbox.wms_api import RunningWmsApi, start_wms_api


class RunningSandbox(ServedApp):
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
    order_book = None
    if not isinstance(scenario, Scenario):
        scenario, ledger = load_scenario_with_ledger(scenario)
        order_book = ledger.order_book  # the dry run's replay: served, not replayed again
    speed = scenario.clock.speed if clock_speed is None else clock_speed
    clock = ScenarioClock(scenario.clock.start, speed)
    app = StorefrontApp(scenario, clock, order_book=order_book)
    wms = None if warehouse_inbox is None else WarehouseInbox(scenario, clock, warehouse_inbox)
    wsgi = app if wms is None else wms.wrap(app)
    sandbox = serve(RunningSandbox, scenario, app, host, port, wsgi=wsgi)
    sandbox.warehouse = wms
    return sandbox


class RunningPayments(ServedApp):
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


class RunningSystems(StopsOnExit):
    """Every sandbox system of one scenario, sharing one clock; a context manager.

    The storefront and payment provider are the sources; the ERP, CRM and WMS reservations API are
    the working systems the pipeline writes into; the alert receiver takes Slack-compatible posts.
    """

    def __init__(
        self,
        scenario: Scenario,
        clock: ScenarioClock,
        storefront: RunningSandbox,
        payments: RunningPayments,
        erp: RunningErp,
        crm: RunningCrm,
        wms: RunningWmsApi,
        alerts: RunningAlertReceiver | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.storefront = storefront
        self.payments = payments
        self.erp = erp
        self.crm = crm
        self.wms = wms
        self.alerts = alerts

    def systems(self) -> dict[str, dict[str, str]]:
        """What the ready file says: where each sandbox system listens and how to talk to it."""
        systems = {
            **self.storefront.systems(),
            "payments": self.payments.system(),
            "erp": self.erp.system(),
            "crm": {
                **self.crm.system(),
                "default_owner_id": self.scenario.crm_config().default_owner,
            },
            "wms": self.wms.system(),
        }
        if self.alerts is not None:
            systems["alerts"] = {"hook_url": self.alerts.hook_url}
        return systems

    def _served(self) -> list[ServedApp]:
        return [
            system
            for system in (
                self.alerts,
                self.wms,
                self.crm,
                self.erp,
                self.payments,
                self.storefront,
            )
            if system is not None
        ]

    def stop(self) -> None:
        for system in self._served():
            system.stop()


def start_sandbox_systems(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    clock_speed: float | None = None,
    storefront_port: int = 0,
    payments_port: int = 0,
    warehouse_inbox: Path | None = None,
    erp_port: int = 0,
    crm_port: int = 0,
    wms_port: int = 0,
    alerts_log: Path | None = None,
    ledger: PaymentsLedger | None = None,
) -> RunningSystems:
    """Serve every system (storefront, payments, ERP, CRM, WMS API), each on its own port, on ONE clock.

    With `alerts_log`, a Slack-compatible alert receiver appends what it is sent to that file.
    `ledger` is the scenario's already-built ledger (`load_scenario_with_ledger`), if there is one:
    building it replays every story, the bulk of a big scenario's start-up.

    Moving the clock anywhere (`RunningSystems.clock`, or `POST /_sandbox/clock` on either server)
    moves it for every system.
    """
    if not isinstance(scenario, Scenario):
        if ledger is not None:
            raise ValueError("pass a ledger with the Scenario it was built from, not with a path")
        scenario, ledger = load_scenario_with_ledger(scenario)
    if ledger is None:
        ledger = PaymentsLedger(scenario)
    elif ledger.scenario is not scenario:
        raise ValueError("the ledger was built from another scenario")
    speed = scenario.clock.speed if clock_speed is None else clock_speed
    clock = ScenarioClock(scenario.clock.start, speed)
    # The ledger's replay is the storefront's order book too.
    storefront_app = StorefrontApp(scenario, clock, order_book=ledger.order_book)
    payments_app = PaymentsApp(scenario, clock, ledger)
    wms = None if warehouse_inbox is None else WarehouseInbox(scenario, clock, warehouse_inbox)
    storefront = serve(
        RunningSandbox,
        scenario,
        storefront_app,
        host,
        storefront_port,
        wsgi=storefront_app if wms is None else wms.wrap(storefront_app),
    )
    storefront.warehouse = wms
    started: list[ServedApp] = [storefront]
    try:
        payments = serve(
            RunningPayments,
            scenario,
            payments_app,
            host,
            payments_port,
            wsgi=payments_app if wms is None else wms.wrap(payments_app),
        )
        started.append(payments)
        erp = start_erp(scenario.erp_config(), host, erp_port, clock)
        started.append(erp)
        crm = start_crm(scenario.crm_config(), host, crm_port, clock)
        started.append(crm)
        wms_api = start_wms_api(scenario.wms_api_config(), host, wms_port, clock)
        started.append(wms_api)
        alerts = None if alerts_log is None else start_alert_receiver(alerts_log, host)
    except BaseException:
        for system in started:
            system.stop()
        raise
    return RunningSystems(scenario, clock, storefront, payments, erp, crm, wms_api, alerts)


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
    alerts_log: Path | None = None,
) -> None:
    """Serve every system until SIGTERM/SIGINT; write `ready_file` (JSON) once all listen.

    `port` is the storefront's; the payments sandbox listens on `payments_port` (0 = a free one).
    """
    scenario, ledger = load_scenario_with_ledger(scenario_path)
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
            alerts_log=alerts_log,
            ledger=ledger,
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
            print(f"erp: {systems.erp.url} (REST records, OAuth client credentials)", flush=True)
            print(f"crm: {systems.crm.url} (Salesforce REST)", flush=True)
            print(f"wms: {systems.wms.url} (reservations REST)", flush=True)
            if systems.alerts is not None:
                print(f"alerts: {systems.alerts.url} -> {alerts_log}", flush=True)
            if ready_file is not None:
                _write_atomically(Path(ready_file), json.dumps(systems.systems(), indent=2))
            while not stop_requested.wait(0.5):
                pass
            print("sandbox systems: stopping", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
