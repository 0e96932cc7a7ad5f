"""The leaky bucket with injected time: no sleeping, exact arithmetic."""

from __future__ import annotations

import pytest

from integration_assets.sandbox.leaky_bucket import LeakyBucket, LeakyBuckets


def test_fills_to_size_then_refuses() -> None:
    bucket = LeakyBucket(size=3, leak_per_second=1.0, now=0.0)
    decisions = [bucket.try_acquire(0.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.header for d in decisions] == ["1/3", "2/3", "3/3", "3/3"]


def test_leaks_at_the_configured_rate() -> None:
    bucket = LeakyBucket(size=4, leak_per_second=2.0, now=100.0)
    for _ in range(4):
        assert bucket.try_acquire(100.0).allowed
    assert not bucket.try_acquire(100.0).allowed
    # 0.4 s later only 0.8 of a call has leaked: still full.
    assert not bucket.try_acquire(100.4).allowed
    # 0.5 s after filling, exactly one call has leaked.
    decision = bucket.try_acquire(100.5)
    assert decision.allowed and decision.used == 4
    # After 10 s the bucket is empty again: the next call shows 1.
    assert bucket.try_acquire(110.5).header == "1/4"


def test_refused_calls_do_not_fill_the_bucket() -> None:
    bucket = LeakyBucket(size=1, leak_per_second=1.0, now=0.0)
    assert bucket.try_acquire(0.0).allowed
    for _ in range(10):
        assert not bucket.try_acquire(0.5).allowed
    assert bucket.try_acquire(1.0).allowed


def test_peek_shows_the_level_without_taking_a_unit() -> None:
    bucket = LeakyBucket(size=5, leak_per_second=1.0, now=0.0)
    bucket.try_acquire(0.0)
    bucket.try_acquire(0.0)
    assert bucket.peek(0.0).header == "2/5"
    assert bucket.peek(0.0).header == "2/5"
    assert bucket.peek(1.5).header == "1/5"  # 0.5 left rounds up: a call still in the bucket


def test_one_bucket_per_token() -> None:
    buckets = LeakyBuckets(size=1, leak_per_second=0.0)
    assert buckets.try_acquire("a", 0.0).allowed
    assert not buckets.try_acquire("a", 0.0).allowed
    assert buckets.try_acquire("b", 0.0).allowed


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="size"):
        LeakyBucket(size=0, leak_per_second=1.0, now=0.0)
