"""Sales channels: a story's `channel` becomes the order's Shopify `source_name`; a catalog item kept
out of the generated volume is sold only by the stories."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from integration_assets.sandbox.generator import generate_stories
from integration_assets.sandbox.scenario import (
    CHANNEL_SOURCE_NAMES,
    SCENARIOS_DIR,
    ScenarioError,
    load_scenario,
)
from integration_assets.sandbox.storefront_orders import OrderBook

TINY = SCENARIOS_DIR / "tiny.yaml"


def _scenario(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(TINY.read_text())
    mutate(data)
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _channels(data: dict) -> None:
    # happy_path stays unset (web); the next two are sold in the store and through a marketplace app
    data["stories"][1]["events"][0]["channel"] = "pos"
    data["stories"][2]["events"][0]["channel"] = "marketplace"


def test_each_channel_is_served_as_its_source_name(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, _channels))
    book = OrderBook(scenario)
    later = scenario.clock.start + timedelta(days=2)
    served = {
        label: book.order_at(order_id, later) for label, order_id in book.ids_by_label.items()
    }
    third = scenario.stories[2].label
    assert served["happy_path"].body["source_name"] == "web"  # the default
    assert served["edited"].body["source_name"] == "pos"
    marketplace = served[third].body["source_name"]
    assert marketplace == CHANNEL_SOURCE_NAMES["marketplace"]
    assert isinstance(marketplace, str) and marketplace.isdigit()  # an app id, as Shopify sends it
    for order in served.values():  # the order's transactions carry its channel too
        assert order.transactions
        assert {t["source_name"] for t in order.transactions} == {order.body["source_name"]}


def test_an_unknown_channel_is_named_with_its_path(tmp_path: Path) -> None:
    path = _scenario(tmp_path, lambda d: d["stories"][0]["events"][0].update(channel="phone"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: stories[0].events[0].channel: "), message
    assert "unknown channel 'phone' (one of web, pos, marketplace)" in message


def test_channel_belongs_to_the_created_event_only(tmp_path: Path) -> None:
    path = _scenario(tmp_path, lambda d: d["stories"][0]["events"][1].update(channel="pos"))
    with pytest.raises(ScenarioError, match=r"stories\[0\]\.events\[1\]\.channel: unknown key"):
        load_scenario(path)


def test_in_volume_must_be_a_flag(tmp_path: Path) -> None:
    path = _scenario(tmp_path, lambda d: d["catalog"][0].update(in_volume="no"))
    with pytest.raises(ScenarioError, match=r"catalog\[0\]\.in_volume: expected true or false"):
        load_scenario(path)


def test_generated_orders_never_pick_an_item_kept_out_of_the_volume() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "default.yaml")
    kept_out = {item.sku for item in scenario.catalog if not item.in_volume}
    assert kept_out == {"LIMITED-ED"}
    stories = generate_stories(scenario.volume, scenario.catalog, scenario.customers)
    sold = {
        line["sku"]
        for story in stories
        for event in story.events
        for line in event.fields.get("lines", [{"sku": event.fields.get("sku")}])
    }
    assert not sold & kept_out
    # and removing the item from the catalog leaves the generated day byte for byte as it was
    others = tuple(item for item in scenario.catalog if item.in_volume)
    assert generate_stories(scenario.volume, others, scenario.customers) == stories
