"""Scenario files: every bundled one loads; a broken one fails naming file, path and problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from integration_assets.sandbox.clock import ScenarioClock, parse_duration
from integration_assets.sandbox.scenario import SCENARIOS_DIR, ScenarioError, load_scenario

TINY = SCENARIOS_DIR / "tiny.yaml"


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.shop.api_version in scenario.shop.supported_versions
    assert scenario.demo.polls >= 1


def test_times_are_parsed_relative_to_clock_start_and_in_shop_offset() -> None:
    scenario = load_scenario(TINY)
    assert scenario.clock.start == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    edited = next(story for story in scenario.stories if story.label == "edited")
    assert edited.events[0].at == scenario.clock.start + timedelta(minutes=30)


def _broken(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(TINY.read_text())
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [
        (
            lambda d: d["stories"][1]["events"][2].update(type="shipped"),
            "stories[1].events[2].type",
            "unknown event type 'shipped'",
        ),
        (
            lambda d: d["stories"][0]["events"][0]["lines"][0].update(sku="NOPE"),
            "stories[0].events[0].lines[0].sku",
            "unknown SKU 'NOPE'",
        ),
        (
            lambda d: d["stories"][2]["events"][1].update(at="tomorrow-ish"),
            "stories[2].events[1].at",
            "invalid time 'tomorrow-ish'",
        ),
        (
            lambda d: d["stories"][0].update(customer=999),
            "stories[0].customer",
            "unknown customer 999",
        ),
        (lambda d: d["clock"].pop("start"), "clock.start", "required"),
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (
            lambda d: d.update(faults=[{"kind": "meteor", "after_requests": 1}]),
            "faults[0].kind",
            "unknown fault kind 'meteor'",
        ),
        (
            lambda d: d["stories"][0]["events"].pop(0),
            "stories[0].events",
            "exactly one 'created' event",
        ),
        (
            # Semantically impossible, caught by the dry run: refunding 5 of a 1-unit line.
            lambda d: d["stories"][3]["events"][3]["lines"][0].update(quantity=5),
            "stories[3].events[3].lines[0].quantity",
            "can still be refunded",
        ),
        (
            lambda d: d["stories"][2]["events"][0].update(at="+3h"),
            "stories[2].events[1].at",
            "before the order is created",
        ),
        (lambda d: d["shop"].update(api_version="July"), "shop.api_version", "like '2025-07'"),
        (
            lambda d: d.update(faults=[{"kind": "forbidden", "at": "+6h", "resource": "refunds"}]),
            "faults[0].resource",
            "unknown resource 'refunds'",
        ),
        (
            lambda d: d.update(faults=[{"kind": "not_found", "at": "+6h", "after_requests": 3}]),
            "faults[0].after_requests",
            "unknown key",
        ),
        (
            lambda d: d.update(faults=[{"kind": "moved", "at": "+6h", "until": "+5h"}]),
            "faults[0].until",
            "must be after 'at'",
        ),
        (
            lambda d: d.update(faults=[{"kind": "moved", "at": "+6h", "to_version": "2030-01"}]),
            "faults[0].to_version",
            "2030-01 is not in shop.supported_versions",
        ),
        (
            lambda d: d["shop"].update(deprecated_versions={"2024-01": None}),
            "shop.deprecated_versions.2024-01",
            "not in shop.supported_versions",
        ),
        (
            lambda d: d["shop"].update(deprecated_versions={"2025-07": "soon"}),
            "shop.deprecated_versions.2025-07",
            "expected a sunset date",
        ),
    ],
)
def test_validation_names_file_path_and_problem(
    tmp_path: Path, mutate, where: str, what: str
) -> None:
    path = _broken(tmp_path, mutate)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert what in message


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1d3h", 97200),
        ("-45m", -2700),
        (90, 90),
        ("90", 90),
    ],
)
def test_durations(text, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("4 hours")


def test_clock_is_frozen_at_speed_zero_and_moves_when_told() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ScenarioClock(start)
    assert clock.now() == start
    clock.advance(timedelta(hours=2))
    assert clock.now() == start + timedelta(hours=2)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2027
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2027, 1, 1))


def test_clock_speed_moves_scenario_time_faster_than_wall_time() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ScenarioClock(start, speed=3600.0)
    import time

    time.sleep(0.05)
    assert clock.now() - start >= timedelta(seconds=150)
