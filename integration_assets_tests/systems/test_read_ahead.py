"""read_ahead: the next page is fetched while the current one is landed, with nothing else changed."""

import threading

import pytest

from integration_assets.systems.read_ahead import read_ahead


def test_pages_arrive_complete_and_in_order():
    assert list(read_ahead(iter(range(100)))) == list(range(100))
    assert list(read_ahead(iter([]))) == []


def test_the_next_page_is_fetched_while_the_caller_holds_this_one():
    second_fetched = threading.Event()

    def pages():
        yield 1
        second_fetched.set()
        yield 2

    iterator = read_ahead(pages())
    assert next(iterator) == 1
    # The caller has not asked for page 2 yet, and it is being (or has been) fetched already.
    assert second_fetched.wait(timeout=10)
    assert list(iterator) == [2]


def test_an_error_is_raised_at_the_page_where_it_happened():
    def pages():
        yield "first"
        raise RuntimeError("page 2 answered 500 too often")

    iterator = read_ahead(pages())
    assert next(iterator) == "first"
    with pytest.raises(RuntimeError, match="page 2 answered 500"):
        next(iterator)


def test_stopping_early_stops_fetching_and_closes_the_source():
    fetched: list[int] = []
    closed = threading.Event()

    def pages():
        try:
            for number in range(1000):
                fetched.append(number)
                yield number
        finally:
            closed.set()

    iterator = read_ahead(pages(), depth=1)
    assert next(iterator) == 0
    iterator.close()  # e.g. the caller failed to write page 0: the batch is discarded
    assert closed.is_set()  # close() returns only after the producer has stopped
    assert len(fetched) <= 3  # the page held, the one queued, the one being handed over
