"""The webhook sensor's cursor: nothing handled twice, nothing skipped when commits land out of order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integration_assets.storage.raw_log import new_batch_id
from integration_assets.webhooks.cursor import GRACE, BatchCursor, batch_time

T0 = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)


def test_batch_time_reads_the_id_to_the_microsecond():
    moment = T0 + timedelta(microseconds=123456)
    assert batch_time(new_batch_id(moment)) == moment
    assert batch_time("not-a-batch-id") is None


def test_two_batches_of_the_same_microsecond_are_both_new_then_both_handled():
    first, second = new_batch_id(T0), new_batch_id(T0)
    cursor = BatchCursor()
    assert cursor.is_new(first) and cursor.is_new(second)
    after_one = cursor.handled([max(first, second)])
    # The one that sorts lower is still new, though it sorts below the one handled.
    assert after_one.is_new(min(first, second))
    after_both = after_one.handled([min(first, second)])
    assert not after_both.is_new(first) and not after_both.is_new(second)


def test_a_batch_opened_earlier_but_committed_later_is_still_new():
    opened_first = new_batch_id(T0)
    committed_first = new_batch_id(T0 + timedelta(seconds=2))
    cursor = BatchCursor().handled([committed_first])
    assert cursor.is_new(opened_first)


def test_the_watermark_trails_the_newest_by_the_grace_and_never_moves_back():
    newest = new_batch_id(T0)
    cursor = BatchCursor().handled([newest])
    assert batch_time(cursor.watermark + "-x") == T0 - GRACE
    old = new_batch_id(T0 - GRACE - timedelta(seconds=1))
    assert not cursor.is_new(old)  # older than the grace: counted as handled
    again = cursor.handled([new_batch_id(T0 - timedelta(minutes=1))])
    assert again.watermark == cursor.watermark
    later = new_batch_id(T0 + 2 * GRACE)
    moved = cursor.handled([later])
    assert moved.watermark > cursor.watermark and moved.seen == frozenset({later})


def test_the_cursor_round_trips_through_its_text():
    cursor = BatchCursor().handled([new_batch_id(T0), new_batch_id(T0 + timedelta(seconds=1))])
    assert BatchCursor.parse(cursor.dumps()) == cursor
    assert BatchCursor.parse(None) == BatchCursor() == BatchCursor.parse("")


@given(st.lists(st.integers(min_value=0, max_value=int(GRACE.total_seconds() * 3)), max_size=40))
def test_every_handled_id_stays_handled_and_only_handled_ids_are_dropped(offsets):
    ids = [new_batch_id(T0 + timedelta(seconds=offset)) for offset in offsets]
    cursor = BatchCursor()
    for batch_id in ids:
        cursor = cursor.handled([batch_id])
        assert all(not cursor.is_new(done) for done in ids[: ids.index(batch_id) + 1])
    # An id never handled and within the grace of the newest is new.
    if ids:
        newest = max(map(batch_time, ids))
        fresh = new_batch_id(newest - GRACE / 2)
        assert cursor.is_new(fresh)
