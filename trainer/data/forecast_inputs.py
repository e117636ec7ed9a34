"""What a forecast reads: the windows of raw series or prepared rows, before any model runs.

From a raw series CSV (`read_forecast_series`, `series_windows`): the last `n_inputs` values
of each series (before the `n_outputs` held out by a backtest), and for a model trained with
covariates their inputs over the window and its horizon (`trainer.data.covariates`). From
prepared rows (`row_windows`): each row's first `n_inputs` values, and its targets when it has
them. Each window is a dict (see `trainer.data.forecast_files`) that gets its forecast later;
`trainer.predict` forecasts them with the loaded model, `trainer.instances` turns them into the
JSON a deployed model takes and its answer back into the same table. Both take their flags of
what to read, and the rules between them, from one dataclass (`ForecastReading`).
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from trainer.data.covariates import CALENDAR_FEATURES, Covariate, forecast_covariates
from trainer.data.frequency import format_keys, future_keys
from trainer.data.schema import read_rows
from trainer.data.series import (
    BAD_VALUE_ACTIONS,
    GAP_FACTOR,
    Series,
    parse_timestamp,
    read_series,
    time_value,
)
from trainer.util.cli import flag, float_above, model_dir_flag
from trainer.util.errors import ConfigError, DataError

# How trainer.prepare reads a raw series by default: what predict and instances fall back on for
# a flag not given and not in the model's data.json.
READ_DEFAULTS = {"target": "", "timestamp_column": "timestamp", "series_id_column": "series_id",
                 "on_bad_values": "fail", "gap_factor": GAP_FACTOR}


def reading_flag(name: str) -> Any:
    """The field of the flag `name` of READ_DEFAULTS, as trainer.predict and trainer.instances
    both declare it: empty by default, meaning as the model's data was prepared (`resolve_reading`).
    """
    notes = {
        "target": ("With --series: the value column (empty: the one the model was trained on, "
                   "else as trainer.prepare's --target)."),
        "timestamp_column": ("With --series: name of the timestamp column (empty: as the model's "
                             "data was prepared, else 'timestamp')."),
        "series_id_column": ("With --series: name of the series id column (empty: as the model's "
                             "data was prepared, else 'series_id')."),
        "on_bad_values": ("With --series: fail on missing or non-numeric values and time gaps, or "
                          "drop them and forecast from the last unbroken part (empty: as the "
                          "model's data was prepared, else fail)."),
        "gap_factor": ("With --series: a time step longer than this many times the median step is "
                       "a gap (0: no gap check; empty: as the model's data was prepared, else 1.5)."),
    }
    if name == "on_bad_values":
        return flag("", notes[name], choices=BAD_VALUE_ACTIONS)
    if name == "gap_factor":
        return flag(None, notes[name], type=float_above(0.0, inclusive=True))
    return flag("", notes[name])


def resolve_reading(given: Mapping[str, Any], prepared: Mapping[str, Any]) -> Dict[str, Any]:
    """How to read a raw series: each flag `given` (not empty), else as trainer.prepare read the
    model's training data (`prepared`, data.json's "reading"), else `READ_DEFAULTS`.

    >>> resolve_reading({"target": "", "on_bad_values": "drop"}, {"target": "OT"})["target"]
    'OT'
    """
    resolved = {}
    for key, default in READ_DEFAULTS.items():
        value = given.get(key)
        resolved[key] = value if value not in ("", None) else prepared.get(key, default)
    return resolved


@dataclasses.dataclass(frozen=True)
class ForecastReading:
    """What a forecast reads, the flags of trainer.predict and trainer.instances both: the model
    (`--model_dir`), a raw series CSV (`--series`) or prepared rows (`--rows`), `--backtest`, and
    how to read the series (`reading`). Each command's config extends it with its own flags
    (trainer.instances with its own words for the first four) and checks its rules in its
    `__post_init__`: `check_one_source`, its own, then `check_backtest`."""

    model_dir: str = model_dir_flag()
    series: str = flag("", "Raw series CSV (wide or long, as trainer.prepare reads): forecast "
                        "after the last n_inputs values of each series.")
    rows: str = flag("", "Comma-separated file patterns of prepared rows (n_inputs + n_outputs "
                      "values, or n_inputs values only).")
    backtest: bool = flag(False, "With --series: hold out the last n_outputs points of each "
                           "series as actual values and forecast them from the points before.")
    # How to read --series. Empty: as trainer.prepare read the model's training data (the
    # export's data.json holds its flags), else trainer.prepare's defaults (`READ_DEFAULTS`).
    target: str = reading_flag("target")
    timestamp_column: str = reading_flag("timestamp_column")
    series_id_column: str = reading_flag("series_id_column")
    on_bad_values: str = reading_flag("on_bad_values")
    gap_factor: Optional[float] = reading_flag("gap_factor")

    def check_one_source(self) -> None:
        """A ConfigError unless exactly one of --series and --rows is given."""
        if bool(self.series) == bool(self.rows):
            raise ConfigError("give exactly one of --series (a raw series CSV) and --rows "
                              "(prepared rows)")

    def check_backtest(self) -> None:
        """A ConfigError for --backtest with --rows."""
        if self.backtest and self.rows:
            raise ConfigError("--backtest works with --series; prepared --rows with targets already "
                              "hold the actual values")

    def reading(self, prepared: Mapping[str, Any]) -> Dict[str, Any]:
        """How to read --series: each flag given, else as trainer.prepare read the model's
        training data (`prepared`: its data.json's "reading"), else `READ_DEFAULTS`."""
        return resolve_reading({key: getattr(self, key) for key in READ_DEFAULTS}, prepared)


def read_forecast_series(path: str, *, covariates: Sequence[Covariate], target: str,
                         timestamp_column: str, series_id_column: str, on_bad_values: str,
                         gap_factor: float) -> List[Series]:
    """The series of a raw CSV, with the columns of the model's covariates and, for a model
    with covariates, the rows after the last value (the horizon's future covariates)."""
    series_list, _ = read_series(
        path, target=target, timestamp_column=timestamp_column, series_id_column=series_id_column,
        on_bad_values=on_bad_values, gap_factor=gap_factor, future_rows=bool(covariates),
        extra_columns=[c.name for c in covariates if c.name not in CALENDAR_FEATURES
                       and c.name != series_id_column])
    return series_list


def horizon_of(series: Series, result: Dict[str, Any], *, n_outputs: int,
               covariates: Sequence[Covariate], source: str) -> Dict[str, Any]:
    """The horizon of one forecast: the held-out points (backtest), else the rows after the last
    value (future covariates, empty target), else (calendar features only) the next timestamps."""
    end = result["end"]
    if result["backtest"]:
        return {"times": series.times[end:end + n_outputs], "lines": list(series.lines[end:]),
                "extra": {name: text[end:] for name, text in series.extra.items()}}
    needs_rows = any(c.kind == "future" and c.name not in CALENDAR_FEATURES for c in covariates)
    future = series.future
    rows = len(future["times"]) if future else 0
    if rows >= n_outputs:
        result["timestamps"] = future["timestamps"][:n_outputs]
        result["future_keys"] = [parse_timestamp(stamp) for stamp in result["timestamps"]]
        return {"times": future["times"][:n_outputs], "lines": future["lines"][:n_outputs],
                "extra": {name: text[:n_outputs] for name, text in future["extra"].items()}}
    if needs_rows:
        names = [c.name for c in covariates if c.kind == "future" and c.name not in CALENDAR_FEATURES]
        raise DataError(f"series {series.series_id!r} of {source} has {rows} rows after its last "
                        f"value; the model forecasts {n_outputs} steps and needs the future "
                        f"covariates ({', '.join(names)}) of each: add {n_outputs} rows with an "
                        "empty value and those columns filled")
    times = np.array([time_value(parse_timestamp(stamp)) for stamp in result["timestamps"]])
    return {"times": times, "lines": [], "extra": {}}


def series_windows(series_list: Sequence[Series], *, n_inputs: int, n_outputs: int,
                   covariates: Sequence[Covariate] = (), backtest: bool, source: str,
                   history_points: int = 0
                   ) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, np.ndarray]]]:
    """One window per series from its last n_inputs points (before the held-out ones), with its
    history (`history_points`, at least the inputs) for the plot; and the covariate inputs of
    all windows by their serving input names (None for a model without covariates)."""
    needed = n_inputs + (n_outputs if backtest else 0)
    results = []
    for series in series_list:
        begin = series.segment_starts[-1]
        usable = len(series.values) - begin
        if usable < needed:
            after = f" after the gap at line {series.lines[begin]}" if begin else ""
            raise DataError(f"series {series.series_id!r} of {source} has {usable} points{after}, "
                            f"fewer than the model's n_inputs {n_inputs}"
                            + (f" + n_outputs {n_outputs} held out by --backtest" if backtest else "")
                            + "; give a longer series")
        end = len(series.values) - (n_outputs if backtest else 0)
        history_start = max(begin, end - max(history_points, n_inputs))
        # The horizon's time keys: the held-out points', else the steps of the series' calendar.
        horizon_keys = series.keys[end:] if backtest else future_keys(series, n_outputs)
        results.append({
            "id": series.series_id, "end": end, "backtest": backtest,
            "inputs": series.values[end - n_inputs:end],
            "history": series.values[history_start:end],
            "history_keys": series.keys[history_start:end],
            "actual": series.values[end:] if backtest else None,
            "timestamps": (series.timestamps[end:] if backtest
                           else format_keys(series, horizon_keys, n_outputs)),
            "future_keys": horizon_keys,
        })
    if not covariates:
        return results, None
    per_series = [forecast_covariates(series, covariates, end=result["end"], n_inputs=n_inputs,
                                      path=source,
                                      horizon=horizon_of(series, result, n_outputs=n_outputs,
                                                         covariates=covariates, source=source))
                  for series, result in zip(series_list, results)]
    covariate_inputs = {key: np.stack([inputs[key] for inputs in per_series])
                        for key in per_series[0]} if per_series else {}
    return results, covariate_inputs


def row_windows(patterns: str, *, n_inputs: int, n_outputs: int, model_path: str,
                flag: str = "--rows") -> List[Dict[str, Any]]:
    """One window per prepared row (`n_inputs + n_outputs` values, or `n_inputs` only), numbered
    from 1 across the files in order; its targets, when it has them, are the actual values."""
    data = read_rows(patterns, n_inputs=n_inputs, n_outputs=n_outputs, flag=flag,
                     model_path=model_path, allow_inputs_only=True)
    return [{"id": row, "inputs": inputs, "history": inputs,
             "actual": None if data["actual"] is None else data["actual"][row - 1]}
            for row, inputs in enumerate(data["inputs"], start=1)]


def window_inputs(results: Sequence[Dict[str, Any]], *, n_inputs: int) -> np.ndarray:
    """The windows' inputs as one array [windows, n_inputs]."""
    return np.array([result["inputs"] for result in results], dtype=np.float64).reshape(-1, n_inputs)
