"""Read the next page of a list endpoint while the caller is still landing the current one.

A list is read one request at a time (the cursor of page k+1 comes from page k), so a plain loop
leaves the source idle while we parse, hash and write a page, and leaves us idle while it serves
the next. `read_ahead` runs the page iterator in one background thread, at most `depth` pages
ahead: still one request in flight at a time (rate limits hold as before), the same pages in the
same order, and any error the iterator raises is raised to the caller at the page where it
happened. Closing the iterator early stops the thread after its current request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(pages: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`pages`, produced by a background thread at most `depth` items ahead of the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not hand_over(page):
                    return
        except BaseException as error:  # noqa: BLE001 - not swallowed: the consumer raises it
            hand_over(_Raised(error))
            return
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        hand_over(_DONE)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        producer.join()
