"""`batched`: Python 3.12's `itertools.batched` for the 3.11 this project runs on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """Successive tuples of `size` items (the last may be shorter), pulling only one at a time."""
    if size < 1:
        raise ValueError("size must be at least 1")
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk
