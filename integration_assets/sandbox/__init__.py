"""Protocol-faithful local stand-ins for the shop's systems, driven by a scenario file.

The storefront speaks Shopify Admin REST (orders) closely enough that a real Shopify client works
against it unchanged; a YAML scenario decides which orders exist, how they evolve on a scenario
clock and which faults are injected. See docs/scenario-format.md.
"""

from integration_assets.sandbox.clock import ScenarioClock, parse_duration
from integration_assets.sandbox.generator import generate_stories
from integration_assets.sandbox.leaky_bucket import BucketDecision, LeakyBucket
from integration_assets.sandbox.payments_app import PaymentsApp
from integration_assets.sandbox.payments_ledger import PaymentsLedger, PaymentsSnapshot
from integration_assets.sandbox.scenario import (
    SCENARIOS_DIR,
    PaymentsConfig,
    Scenario,
    ScenarioError,
    load_scenario,
    load_scenario_with_ledger,
)
from integration_assets.sandbox.server import (
    RunningPayments,
    RunningSandbox,
    RunningSystems,
    serve_forever,
    start_sandbox_systems,
    start_storefront,
)
from integration_assets.sandbox.storefront_orders import OrderBook, ServedOrder

__all__ = [
    "SCENARIOS_DIR",
    "BucketDecision",
    "LeakyBucket",
    "OrderBook",
    "PaymentsApp",
    "PaymentsConfig",
    "PaymentsLedger",
    "PaymentsSnapshot",
    "RunningPayments",
    "RunningSandbox",
    "RunningSystems",
    "Scenario",
    "ScenarioClock",
    "ScenarioError",
    "ServedOrder",
    "generate_stories",
    "load_scenario",
    "load_scenario_with_ledger",
    "parse_duration",
    "serve_forever",
    "start_sandbox_systems",
    "start_storefront",
]
