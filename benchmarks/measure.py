"""Wall time and peak resident memory of a stretch of work in this process (Linux /proc, else getrusage)."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.02
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes(pid: int | str = "self") -> int | None:
    """Resident set size now, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * PAGE_BYTES


def lifetime_peak_rss_bytes() -> int:
    """This process's peak RSS since it started (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def process_peak_rss_bytes(pid: int) -> int | None:
    """Another process's high-water RSS (VmHWM), e.g. the sandbox's."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class Span:
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._observe()

    def _observe(self) -> None:
        rss = current_rss_bytes()
        if rss is not None:
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.samples += 1


@contextmanager
def measured() -> Iterator[Span]:
    """Time the block and sample this process's RSS every 20 ms; without /proc, the lifetime peak."""
    span = Span()
    span._observe()
    sampler = threading.Thread(target=span._sample, name="rss-sampler", daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield span
    finally:
        span.wall_seconds = time.perf_counter() - started
        span._stop.set()
        sampler.join()
        span._observe()
        if span.samples == 0:
            span.peak_rss_bytes = lifetime_peak_rss_bytes()
