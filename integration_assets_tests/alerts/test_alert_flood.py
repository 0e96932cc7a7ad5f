"""Flood control: one alert per key per window, the rest counted, nothing dropped, state bounded."""

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams.alert_flood import Alert, FloodGate

T0 = datetime(2025, 11, 28, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def alert(key: str = "run_failure:hourly_sync", text: str = "step extract failed") -> Alert:
    return Alert(key=key, title=f"Run failed: {key}", text=text)


def test_first_alert_of_a_key_goes_out_the_rest_of_its_window_are_counted():
    gate = FloodGate(window=WINDOW)
    assert gate.admit(alert(), T0) == alert()
    assert gate.admit(alert(), T0 + timedelta(minutes=5)) is None
    assert gate.admit(alert(), T0 + timedelta(minutes=14, seconds=59)) is None
    # Another key has its own window.
    assert gate.admit(alert("check:x:y"), T0 + timedelta(minutes=6)) is not None

    later = gate.admit(alert(text="step load failed"), T0 + timedelta(minutes=15))
    assert later is not None
    assert later.suppressed == 2
    assert later.text == "step load failed\n(+2 similar suppressed since 10:00 UTC)"
    # The window restarts at the alert that went out.
    assert gate.admit(alert(), T0 + timedelta(minutes=20)) is None


def test_state_survives_a_json_round_trip_as_a_sensor_cursor_does():
    gate = FloodGate(window=WINDOW)
    gate.admit(alert(), T0)
    gate.admit(alert(), T0 + timedelta(minutes=1))
    restored = FloodGate(json.loads(json.dumps(gate.state)), window=WINDOW)
    assert restored.admit(alert(), T0 + timedelta(minutes=2)) is None
    out = restored.admit(alert(), T0 + timedelta(minutes=16))
    assert out is not None and out.suppressed == 2


def test_a_count_never_followed_by_another_alert_comes_back_as_a_summary():
    gate = FloodGate(window=WINDOW)
    gate.admit(alert(), T0)
    gate.admit(alert(text="third time"), T0 + timedelta(minutes=3))
    gate.admit(alert("check:quiet:one"), T0)
    # Within one window after the window ended, the count waits for the key's next alert.
    assert gate.expire(T0 + timedelta(minutes=29)) == []
    assert set(gate.state["keys"]) == {"run_failure:hourly_sync"}  # the quiet key is forgotten
    (summary,) = gate.expire(T0 + timedelta(minutes=30))
    assert summary.key == "run_failure:hourly_sync"
    assert summary.suppressed == 1
    assert "1 similar alert suppressed between 10:03 UTC and 10:03 UTC" in summary.text
    assert "third time" in summary.text
    assert gate.state["keys"] == {}


def test_times_on_another_day_carry_their_date():
    gate = FloodGate(window=timedelta(days=1))
    gate.admit(alert(), T0)
    gate.admit(alert(), T0 + timedelta(hours=1))
    out = gate.admit(alert(), T0 + timedelta(days=1, hours=1))
    assert out is not None and "since 2025-11-28 10:00 UTC" in out.text


def test_naive_times_and_damaged_state_are_refused_with_a_reason():
    gate = FloodGate(window=WINDOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        gate.admit(alert(), datetime(2025, 11, 28, 10, 0))
    with pytest.raises(ValueError, match="version 1"):
        FloodGate({"keys": {}})
    with pytest.raises(ValueError, match="'sent_at'"):
        FloodGate({"version": 1, "keys": {"k": {"suppressed": 1}}})
    with pytest.raises(ValueError, match="lacks what they were"):
        FloodGate({"version": 1, "keys": {"k": {"sent_at": 1.0, "suppressed": 2}}})
    with pytest.raises(ValueError, match="window must be positive"):
        FloodGate(window=timedelta(0))


def test_an_alert_needs_a_key_and_a_known_severity():
    with pytest.raises(ValueError, match="non-empty key"):
        Alert(key="", title="t", text="x")
    with pytest.raises(ValueError, match="severity must be one of"):
        Alert(key="k", title="t", text="x", severity="fatal")


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 40 * 60), st.booleans()),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events=events, window_minutes=st.integers(1, 30))
def test_sent_plus_suppressed_is_offered_and_nothing_is_lost(events, window_minutes):
    """For any sequence of (key, time) events, with expiry at any moment:

    - sent + suppressed == offered;
    - at most one alert per key goes out per window;
    - every suppressed alert is accounted for: in a later alert's count, a summary, or the state;
    - the state only holds keys whose window started less than two windows ago.
    """
    window = timedelta(minutes=window_minutes)
    gate = FloodGate(window=window)
    moment = T0
    sent: dict[str, list[datetime]] = {"a": [], "b": [], "c": []}
    suppressed = reported = 0
    for key, seconds_later, expire_first in events:
        moment += timedelta(seconds=seconds_later)
        if expire_first:
            for summary in gate.expire(moment):
                reported += summary.suppressed
            assert all(
                entry["sent_at"] > (moment - 2 * window).timestamp()
                for entry in gate.state["keys"].values()
            )
        out = gate.admit(alert(key), moment)
        if out is None:
            suppressed += 1
        else:
            reported += out.suppressed
            sent[key].append(moment)
        gate = FloodGate(json.loads(json.dumps(gate.state)), window=window)  # as a cursor would
    offered = len(events)
    assert sum(len(times) for times in sent.values()) + suppressed == offered
    for times in sent.values():
        assert all(later - earlier >= window for earlier, later in itertools.pairwise(times))
    pending = sum(entry["suppressed"] for entry in gate.state["keys"].values())
    assert reported + pending == suppressed
    for summary in gate.expire(moment + 2 * window):
        reported += summary.suppressed
    assert reported == suppressed
    assert gate.state["keys"] == {}
