"""The peak-day scenario, built from the default scenario's shop, catalog and customers.

Pure functions: a scenario mapping (written to YAML for the sandbox process) and the choice of the
hour whose changes make the incremental run.
"""

from __future__ import annotations

import math
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from integration_assets.local_stack import DEFAULT_SCENARIO
from integration_assets.sandbox.generator import generate_stories
from integration_assets.sandbox.scenario import Scenario

PEAK_DAY_START = "2026-12-14T00:00:00-05:00"  # the Monday before Christmas, shop time
# Heavier on the long lifecycles than the default day: more edits, refunds and partial shipments.
PEAK_MIX = {
    "fulfilled": 0.45,
    "partially_fulfilled": 0.1,
    "cancelled": 0.06,
    "refunded_partial": 0.1,
    "refunded_full": 0.07,
    "edited": 0.12,
    "address_updated": 0.08,
    "pending": 0.01,
}
# Real Shopify's REST limit (2 requests/s) would make extraction a measure of the limit, not of
# the software: the benchmark lifts it so the sandbox and the pipeline are what is measured.
# The same for the ERP (10 requests/s by default): delivery of a 2,000-order day at that limit did not
# finish in 7 minutes, all of it waiting for the bucket.
UNTHROTTLED = {"bucket_size": 1_000_000, "leak_per_second": 1_000_000, "retry_after": 0.1}
STOCK_PER_ORDER = 10  # opening stock per SKU and location, per generated order: never oversold
SCENARIO_SECTIONS = ("shop", "catalog", "customers", "erp", "crm")


def peak_day_scenario(
    orders: int, seed: int = 20261214, hours: int = 24, name: str = "peak_day"
) -> dict[str, Any]:
    """A scenario mapping: `orders` generated orders created over `hours`, payments, WMS files.

    No hand-written stories, fixtures or faults: only volume, so every figure scales with `orders`.
    """
    default = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    catalog = [item for item in default["catalog"] if item.get("in_volume", True)]
    customers = [person for person in default["customers"] if person.get("in_volume", True)]
    locations = ["WH-EAST", "WH-WEST"]
    scenario = {key: default[key] for key in SCENARIO_SECTIONS if key in default}
    scenario["erp"] = {**scenario.get("erp", {}), "rate_limit": dict(UNTHROTTLED)}
    scenario.update(
        name=name,
        description=f"Benchmark: {orders} generated orders over {hours} shop hours, no faults.",
        seed=seed,
        clock={"start": PEAK_DAY_START, "speed": 0},
        rate_limit=dict(UNTHROTTLED),
        catalog=catalog,
        customers=customers,
        volume={
            "orders": orders,
            "seed": seed,
            "start": "+0h",
            "end": f"+{hours}h",
            "mix": dict(PEAK_MIX),
        },
        payments={
            "secret_key": default["payments"]["secret_key"],
            "payouts": {"every": "1d", "at_hour_utc": 0, "delay_days": 2},
        },
        warehouse={
            "locations": locations,
            "initial_stock": [
                {"sku": item["sku"], "location": location, "quantity": STOCK_PER_ORDER * orders}
                for item in catalog
                for location in locations
            ],
            "shipments": {"every": "1h"},
            "stock_counts": {"opening": True, "every": "1d", "at_hour_utc": 23},
            "return_receipts": {"return_delay": "4h", "condition": "sellable"},
        },
    )
    return scenario


def write_scenario(scenario: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def event_times(scenario: Scenario) -> list[list[datetime]]:
    """Each generated order's event times, exactly as the sandbox will generate them (same seed)."""
    if scenario.volume is None:
        return []
    stories = generate_stories(scenario.volume, scenario.catalog, scenario.customers)
    return [[event.at for event in story.events] for story in stories]


def scenario_timing(scenario_path: Path, target_changed: int) -> tuple[int, int, float]:
    """(incremental hour H, orders changed in the hour after it, events per order) of a scenario
    file: replays the generator once. Run it in a child process (`timing_in_child`): the replay
    holds every generated story, and the memory would stay with the process that measures RSS."""
    from integration_assets.sandbox.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    times = event_times(scenario)
    hour, changed = incremental_hour(times, scenario.clock.start, target_changed)
    return hour, changed, round(sum(len(t) for t in times) / max(1, len(times)), 2)


def timing_in_child(scenario_path: Path, target_changed: int) -> tuple[int, int, float]:
    """`scenario_timing` in a fresh process, so the harness's RSS is the pipeline's alone."""
    # An executor, not a Pool: leaving a Pool terminates its worker with SIGTERM, which a process
    # started with SIGTERM ignored (as under some CI runners) never receives; the executor's
    # worker exits on its own when told there is no more work.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as executor:
        return executor.submit(scenario_timing, scenario_path, target_changed).result()


def changes_per_hour(orders: list[list[datetime]], clock_start: datetime) -> Counter[int]:
    """Hour H (from the clock start) -> how many orders have at least one event in (H, H + 1]."""
    counts: Counter[int] = Counter()
    for times in orders:
        hours = {math.ceil((moment - clock_start).total_seconds() / 3600) - 1 for moment in times}
        counts.update(hours)
    return counts


def incremental_hour(
    orders: list[list[datetime]], clock_start: datetime, target_changed: int, day_hours: int = 24
) -> tuple[int, int]:
    """The whole hour H >= `day_hours` whose next hour changes the number of orders closest to
    `target_changed` (the earliest on a tie). Returns (H, orders changed in that hour).

    The full-history run sees the clock at H, the incremental run at H + 1.
    """
    counts = changes_per_hour(orders, clock_start)
    last_hour = max([day_hours, *counts])
    candidates = [
        (abs(counts.get(hour, 0) - target_changed), hour)
        for hour in range(day_hours, last_hour + 1)
    ]
    hour = min(candidates)[1]
    return hour, counts.get(hour, 0)
