"""Timing and peak-memory bookkeeping shared by the benchmark's sections."""

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

MIB = 1 << 20
MEMORY_SAMPLE_SECS = 0.005
# What a Result's rates count, by its kind.
UNITS = {"input": "rows/s", "training": "examples/s", "prepare": "points/s", "series": "examples/s"}


def resident_bytes() -> Optional[int]:
    """This process's resident memory (Linux /proc), or None where /proc is missing."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


class PeakMemory:
    """Samples resident memory on a thread while the `with` block runs.

    `peak_mib` is the highest resident set seen, `increase_mib` how far it rose above the
    level at the start (what the measured work itself needed).
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._start: Optional[int] = None
        self._peak: Optional[int] = None

    def __enter__(self) -> "PeakMemory":
        self._start = self._peak = resident_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECS):
            now = resident_bytes()
            if now is not None and self._peak is not None:
                self._peak = max(self._peak, now)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        now = resident_bytes()
        if now is not None and self._peak is not None:
            self._peak = max(self._peak, now)

    @property
    def peak_mib(self) -> Optional[float]:
        return None if self._peak is None else self._peak / MIB

    @property
    def increase_mib(self) -> Optional[float]:
        if self._peak is None or self._start is None:
            return None
        return (self._peak - self._start) / MIB


@dataclass
class Result:
    """Repeated measurements of one candidate: items per second, and memory, per run."""

    name: str
    kind: str  # a key of UNITS: "input" (rows/s), "training", "series" (examples/s), "prepare"
    description: str
    rates: List[float] = field(default_factory=list)
    peak_mib: List[float] = field(default_factory=list)
    increase_mib: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def as_dict(self) -> Dict[str, object]:
        return {
            "kind": self.kind, "description": self.description, "unit": UNITS[self.kind],
            "median": self.median, "runs": self.rates,
            "peak_rss_mib": max(self.peak_mib) if self.peak_mib else None,
            "rss_increase_mib": max(self.increase_mib) if self.increase_mib else None,
        }


def measure(result: Result, run: Callable[[], float], *, record: bool) -> float:
    """Call `run` (which returns items per second) under a memory sampler; keep it if `record`."""
    with PeakMemory() as memory:
        rate = run()
    if record:
        result.rates.append(rate)
        if memory.peak_mib is not None:
            result.peak_mib.append(memory.peak_mib)
            result.increase_mib.append(memory.increase_mib)
    return rate


class Stopwatch:
    """perf_counter seconds between start() and stop()."""

    def start(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> float:
        self.seconds = time.perf_counter() - self.started
        return self.seconds
