"""The members' forecasts of the valid split's backtest windows: what the ensemble is selected
on.

The windows are read once, at the longest look-back of the members (`read_backtest`), so
that every member forecasts the same windows: a member of a shorter look-back reads the last
`n_inputs` values of each (and the matching steps of the covariates), as the ensemble's
SavedModel feeds it (`trainer.model.ensemble.member_features`). The windows and the
per-series scales are those `trainer.evaluate` scores
(`trainer.data.series_reads.read_scored_split`), so a member's score here is its valid MASE
on the same windows for every look-back.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from trainer.data.prepared import PreparedSeries
from trainer.data.schema import FEATURE_KEY
from trainer.data.series_reads import ScoredSplit, read_scored_split
from trainer.model.ensemble import Member, member_features
from trainer.model.heads import PREDICTIONS_KEY
from trainer.model.metrics import BASELINES
from trainer.model.serving import ExportedModel
from trainer.search.portfolio import SEASONAL_NAIVE
from trainer.search.selection import mean_scaled_error
from trainer.util.errors import DataError
from trainer.util.lazy import tf


@dataclasses.dataclass(frozen=True)
class Backtest:
    """The valid split's backtest windows at the longest look-back, and how they are scored."""

    scored: ScoredSplit
    n_inputs: int  # the longest look-back of the members
    n_outputs: int
    season: int

    @property
    def windows(self) -> int:
        return len(self.scored.labels)

    def score(self, forecast: np.ndarray) -> float:
        """MASE of `forecast` [windows, n_outputs] on these windows (per series, averaged)."""
        return mean_scaled_error(forecast, targets=self.scored.labels, series=self.scored.series,
                                 scales=self.scored.scales.mae_season)


def read_backtest(prepared: PreparedSeries, *, n_inputs: int, n_outputs: int, season: int,
                  split: str = "valid") -> Backtest:
    """Read the windows of `split` at look-back `n_inputs`; a DataError when there are none."""
    scored = read_scored_split(prepared, split=split, n_inputs=n_inputs, n_outputs=n_outputs,
                               season=season)
    if not len(scored.labels):
        raise DataError(f"{prepared.data_dir}: the {split} split has no window of {n_inputs} + "
                        f"{n_outputs} points, so the search has nothing to choose members on; "
                        "prepare with --valid_windows (or more valid points), or search shorter "
                        "look-backs (--look_backs)")
    return Backtest(scored=scored, n_inputs=n_inputs, n_outputs=n_outputs, season=season)


def member_forecast(backtest: Backtest, exported: ExportedModel) -> np.ndarray:
    """The exported member's point forecasts of the backtest windows [windows, n_outputs]."""
    if exported.n_outputs != backtest.n_outputs or exported.n_inputs > backtest.n_inputs:
        raise ValueError(f"the model at {exported.path} forecasts {exported.n_inputs} -> "
                         f"{exported.n_outputs}; the backtest reads {backtest.n_inputs} -> "
                         f"{backtest.n_outputs}")
    features = member_features(backtest.scored.features, exported.inputs)
    inputs = features.pop(FEATURE_KEY)
    return np.asarray(exported.forecast(inputs, features or None)[PREDICTIONS_KEY], np.float64)


def baseline_forecast(backtest: Backtest, baseline: str) -> np.ndarray:
    """The naive or seasonal naive forecast of the backtest windows, as the ensemble's graph
    computes it (`trainer.model.ensemble.Member`, by the metrics' definitions)."""
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    member = Member(baseline, 1.0, season=backtest.season if baseline == SEASONAL_NAIVE else 0)
    rawdata = tf.constant(backtest.scored.features[FEATURE_KEY], tf.float64)
    return member.baseline_forecast(rawdata, n_outputs=backtest.n_outputs).numpy()
