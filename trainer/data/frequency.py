"""The calendar frequency of a series' timestamps, and the timestamps that continue it.

Every future row of a forecast gets its timestamp here (`future_timestamps`, `future_keys`):
`trainer.predict`'s CSV and plot axis, and `trainer.instances`' request and answer. The
frequency is pandas' `infer_freq` of the series' timestamps (of the whole series, else of its
last unbroken part), and each step is that pandas offset, so a month-start series continues at
month starts and a business-day series skips weekends:

| timestamps | frequency | after the last one |
|---|---|---|
| 2024-01-01, 2024-02-01, 2024-03-01 | `MS` (month start) | 2024-04-01, 2024-05-01 |
| 2024-01-31, 2024-02-29, 2024-03-31 | `ME` (month end) | 2024-04-30, 2024-05-31 |
| 2009-03-31, 2009-06-30, 2009-09-30 | `QE-DEC` (quarter end) | 2009-12-31, 2010-03-31 |
| 2024-01-04, 2024-01-05, 2024-01-08 | `B` (business days) | 2024-01-09, 2024-01-10 |
| 2024-01-07, 2024-01-14, 2024-01-21 | `W-SUN` (weekly on Sundays) | 2024-01-28, 2024-02-04 |

Hourly, daily, yearly (start or end), quarter starts and multiples (`2h`, `3MS`) work alike.
Timestamps that follow none (irregular steps, fewer than 3 points) step by their median step,
with a warning naming the series; so does a time index (plain numbers), silently when its steps
are all equal.
"""

import datetime
import logging
from typing import Any, List, Optional, Sequence

import numpy as np

from trainer.data.series import Series, TimeKey

logger = logging.getLogger(__name__)


def calendar_offset(keys: Sequence[datetime.datetime]) -> Optional[Any]:
    """The pandas offset that steps from one timestamp of `keys` to the next (pandas'
    `infer_freq`), or None when they follow none or are fewer than 3.

    >>> calendar_offset([datetime.datetime(2024, m, 1) for m in (1, 2, 3)])
    <MonthBegin>
    >>> calendar_offset([datetime.datetime(2024, 1, d) for d in (1, 2, 5)]) is None
    True
    """
    if len(keys) < 3:
        return None
    import pandas  # only when a forecast makes future rows: `--help` stays quick

    try:
        name = pandas.infer_freq(pandas.DatetimeIndex(np.array(keys, dtype="datetime64[us]")))
    except (TypeError, ValueError):  # pandas' own "need at least 3 dates", non-monotonic
        return None
    return None if name is None else pandas.tseries.frequencies.to_offset(name)


def future_keys(series: Series, count: int) -> List[TimeKey]:
    """`count` time keys after the last one of `series`, at its calendar frequency (see the
    module's docstring) or, failing one, at its median step with a warning. Empty when the
    series has a single point."""
    keys = series.keys
    if len(keys) < 2:
        return []
    last_part = keys[series.segment_starts[-1]:]
    last = keys[-1]
    if isinstance(last, datetime.datetime):
        for candidate in (keys, last_part):
            offset = calendar_offset(candidate)
            if offset is not None:
                import pandas

                anchor = pandas.Timestamp(last)
                return [(anchor + offset * k).to_pydatetime() for k in range(1, count + 1)]
        steps = [(b - a).total_seconds() for a, b in zip(keys, keys[1:])]
        step = datetime.timedelta(seconds=float(np.median(steps)))
        logger.warning("series %r: its timestamps follow no calendar frequency (pandas' "
                       "infer_freq finds none in %d timestamps: irregular steps or too few); its "
                       "forecast timestamps step by its median step, %s", series.series_id,
                       len(keys), step)
        return [last + step * k for k in range(1, count + 1)]
    steps = np.diff(np.array(keys, dtype=np.float64))
    step = float(np.median(steps))
    if not np.all(steps == steps[0]):
        logger.warning("series %r: its time index has uneven steps; its forecast time index "
                       "steps by its median step, %g", series.series_id, step)
    return [last + step * k for k in range(1, count + 1)]


def future_timestamps(series: Series, count: int) -> List[str]:
    """`count` timestamps after the last one of `series`, written as its own are (dates as
    dates), at its calendar frequency (`future_keys`). Empty strings for a single point.

    >>> from trainer.data.series import DATETIME, parse_timestamp, time_value
    >>> stamps = ["2024-01-31", "2024-02-29", "2024-03-31"]
    >>> s = Series("a", stamps, np.array([time_value(parse_timestamp(t)) for t in stamps]),
    ...            np.zeros(3), [2, 3, 4], time_kind=DATETIME)
    >>> future_timestamps(s, 2)
    ['2024-04-30', '2024-05-31']
    """
    return format_keys(series, future_keys(series, count), count)


def format_keys(series: Series, keys: Sequence[TimeKey], count: int) -> List[str]:
    """Time keys of `series` (`future_keys`) written as its timestamps are; `count` empty
    strings when there are none."""
    if not keys:
        return [""] * count
    if isinstance(keys[0], datetime.datetime):
        date_only = all(len(stamp.strip()) == 10 for stamp in series.timestamps)
        return [key.date().isoformat() if date_only else key.isoformat() for key in keys]
    return [f"{key:g}" for key in keys]
