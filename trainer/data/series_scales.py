"""Each series' own in-sample scale: what MASE, RMSSE and MSIS divide a series' errors by.

The forecasting competitions score every series against its own history, so that a series
in the hundreds of thousands counts as much as one in the tens (M4: MASE and MSIS, scaled by
the in-sample seasonal naive MAE; M5: RMSSE, scaled by the in-sample naive MSE). For every
series, over the points before the split that is scored (its history), this module computes:

- `mae_1`: mean |y[t] - y[t-1]|, the in-sample MAE of the naive forecast;
- `mae_season`: mean |y[t] - y[t-season]|, that of the seasonal naive forecast (MASE's scale,
  and MSIS's);
- `mse_1`: mean (y[t] - y[t-1])^2, the naive forecast's in-sample MSE (RMSSE's scale, as M5).

Only pairs within one segment count (no difference spans a gap or a dropped row). The
history of the valid split (and of the train split) is the train split; that of the test
split is train and valid together, as the competitions scale the test horizon by everything
before it. A series with no pair in its history has no scale (NaN), and one whose history is
constant has a scale of 0: both are left out of the scaled metrics and counted
(`trainer.model.metrics`).

`trainer.prepare` stores them in prepare.json (`series_scales`, for its `--season`); for
shards written by other tools, or another `--season`, the trainer and `trainer.evaluate`
compute them from the shards they read anyway, with the same `accumulate_scales`.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from trainer.data.windows import SPLIT_CODES, SPLITS
from trainer.util.errors import ConfigError

SCALE_KEYS = ("mae_1", "mae_season", "mse_1")
SUMMARY_KEY = "series_scales"  # in prepare.json


def history_code(split: str) -> int:
    """The highest split code in the history of `split`: points up to it scale that split.

    >>> [history_code(split) for split in ("train", "valid", "test")]
    [0, 0, 1]
    """
    return max(SPLIT_CODES[split] - 1, SPLIT_CODES["train"])


@dataclasses.dataclass(frozen=True)
class SeriesScales:
    """The scales of every series for one split: arrays [series], NaN where a series has none."""

    split: str
    season: int
    mae_1: np.ndarray
    mae_season: np.ndarray
    mse_1: np.ndarray

    @property
    def count(self) -> int:
        return int(len(self.mae_1))

    def to_json(self) -> Dict[str, Any]:
        return {key: [None if not np.isfinite(v) else float(v) for v in getattr(self, key)]
                for key in SCALE_KEYS}


class ScaleSums:
    """Sums and counts of the in-sample differences of each series, added file by file (each
    series lies whole in one shard), then divided (`scales`)."""

    def __init__(self, *, series_count: int, season: int):
        self.series_count = series_count
        self.season = season
        self._sums = {split: {key: np.zeros(series_count) for key in SCALE_KEYS}
                      for split in SPLITS}
        self._counts = {split: {lag: np.zeros(series_count) for lag in {1, season}}
                        for split in SPLITS}

    def _grow(self, series_count: int) -> None:
        extra = series_count - self.series_count
        for table in (*self._sums.values(), *self._counts.values()):
            for key in table:
                table[key] = np.concatenate([table[key], np.zeros(extra)])
        self.series_count = series_count

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        """Add the points of one shard's columns (`series`, `segment`, `split`, `target`)."""
        series = np.asarray(columns["series"], dtype=np.int64)
        target = np.asarray(columns["target"], dtype=np.float64)
        if len(series) and series.min() < 0:
            raise ValueError(f"series index {series.min()} is negative")
        if len(series) and series.max() >= self.series_count:  # shards without series_ids
            self._grow(int(series.max()) + 1)
        for split in SPLITS:
            last = history_code(split)
            for lag in {1, self.season}:
                if len(series) <= lag:
                    continue
                pair = ((series[lag:] == series[:-lag])
                        & (columns["segment"][lag:] == columns["segment"][:-lag])
                        & (columns["split"][lag:] <= last))
                owner = series[lag:][pair]
                difference = (target[lag:] - target[:-lag])[pair]
                self._counts[split][lag] += np.bincount(owner, minlength=self.series_count)
                if lag == self.season:
                    self._sums[split]["mae_season"] += np.bincount(
                        owner, weights=np.abs(difference), minlength=self.series_count)
                if lag == 1:
                    self._sums[split]["mae_1"] += np.bincount(
                        owner, weights=np.abs(difference), minlength=self.series_count)
                    self._sums[split]["mse_1"] += np.bincount(
                        owner, weights=difference ** 2, minlength=self.series_count)

    def scales(self, split: str) -> SeriesScales:
        counts = self._counts[split]
        lags = {"mae_1": 1, "mae_season": self.season, "mse_1": 1}
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {key: np.where(counts[lag] > 0, self._sums[split][key] / counts[lag], np.nan)
                      for key, lag in lags.items()}
        return SeriesScales(split=split, season=self.season, **values)


def compute_scales(columns: Mapping[str, np.ndarray], *, series_count: int, season: int,
                   split: str) -> SeriesScales:
    """The scales of `split` from one set of columns holding every series.

    >>> columns = {"series": np.array([0, 0, 0, 0, 1, 1, 1]), "segment": np.zeros(7, int),
    ...            "split": np.array([0, 0, 1, 2, 0, 0, 2]),
    ...            "target": np.array([1., 3., 4., 0., 5., 5., 9.])}
    >>> scales = compute_scales(columns, series_count=2, season=1, split="valid")
    >>> scales.mae_1.tolist(), scales.mse_1.tolist()
    ([2.0, 0.0], [4.0, 0.0])
    >>> compute_scales(columns, series_count=2, season=1, split="test").mae_1.tolist()
    [1.5, 0.0]
    """
    sums = ScaleSums(series_count=series_count, season=season)
    sums.add(columns)
    return sums.scales(split)


def sums_of_series(series_list: Sequence[Any], codes: Sequence[np.ndarray], *,
                   season: int) -> ScaleSums:
    """The scale sums of prepared series (`trainer.data.series.Series`, with the split codes of
    each), as the shards would give them."""
    sums = ScaleSums(series_count=len(series_list), season=season)
    for index, (series, series_codes) in enumerate(zip(series_list, codes)):
        segments = np.zeros(len(series.values), dtype=np.int64)
        for start in series.segment_starts[1:]:
            segments[start:] += 1
        sums.add({"series": np.full(len(series.values), index), "segment": segments,
                  "split": np.asarray(series_codes), "target": series.values})
    return sums


def scales_json(sums: ScaleSums) -> Dict[str, Any]:
    """prepare.json's `series_scales`: the season, then each split's scales."""
    return {"season": sums.season, **{split: sums.scales(split).to_json() for split in SPLITS}}


def stored_scales(summary: Mapping[str, Any], *, season: int, split: str,
                  series_count: int) -> Optional[SeriesScales]:
    """The scales of `split` that prepare.json (`summary`) holds for `season`; None when it
    holds none for that season (computed from the shards instead)."""
    stored = summary.get(SUMMARY_KEY)
    if not stored or stored.get("season") != season or split not in stored:
        return None
    values = {}
    for key in SCALE_KEYS:
        column = stored[split].get(key)
        if column is None or len(column) != series_count:
            raise ConfigError(f"{summary.get('_path', 'prepare.json')}: series_scales.{split}.{key} "
                              f"holds {0 if column is None else len(column)} values for "
                              f"{series_count} series; prepare the data again")
        values[key] = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
    return SeriesScales(split=split, season=season, **values)


def describe_missing(scales: SeriesScales, series_ids: Optional[Sequence[str]] = None,
                     present: Optional[np.ndarray] = None) -> str:
    """'3 series have no in-sample scale (constant or too short), e.g. a, b' or ''."""
    mask = ~(np.isfinite(scales.mae_season) & (scales.mae_season > 0))
    if present is not None:
        mask &= present
    missing = np.flatnonzero(mask)
    if not len(missing):
        return ""
    names = [str(series_ids[i]) if series_ids is not None else str(i) for i in missing[:5]]
    return (f"{len(missing)} series have no in-sample scale for the {scales.split} split (a "
            f"constant or too short history): left out of mase, rmsse and msis, for example "
            f"{', '.join(names)}")
