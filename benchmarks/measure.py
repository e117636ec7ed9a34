"""Timing and peak-memory bookkeeping shared by the benchmark's sections."""

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

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
    # Other figures of each run, by name (the series section's first-batch seconds, ...).
    extras: Dict[str, List[float]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def as_dict(self) -> Dict[str, object]:
        return {
            "kind": self.kind, "description": self.description, "unit": UNITS[self.kind],
            "median": self.median, "runs": self.rates,
            "peak_rss_mib": max(self.peak_mib) if self.peak_mib else None,
            "rss_increase_mib": max(self.increase_mib) if self.increase_mib else None,
            **{name: {"median": statistics.median(values), "runs": values}
               for name, values in self.extras.items()},
        }

    def extra_median(self, name: str) -> float:
        return statistics.median(self.extras[name])


def measure(result: Result, run: Callable[[], Union[float, Tuple[float, Dict[str, float]]]], *,
            record: bool) -> float:
    """Call `run` (which returns items per second, or that and other figures by name) under a
    memory sampler; keep it if `record`."""
    with PeakMemory() as memory:
        outcome = run()
    rate, extras = outcome if isinstance(outcome, tuple) else (outcome, {})
    if record:
        result.rates.append(rate)
        for name, value in extras.items():
            result.extras.setdefault(name, []).append(value)
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
