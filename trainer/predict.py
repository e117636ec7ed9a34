"""Forecasts from an exported model, as CSV and optionally a plot.

    python -m trainer.predict --model_dir output --series sales.csv --target units \\
        --output forecast.csv --plot forecast.png
    python -m trainer.predict --model_dir output/export/best/1795482765 \\
        --rows 'prepared/test-*.csv' --output test_forecast.csv

`--model_dir` is a SavedModel directory or a training output directory (its newest
`export/latest/<timestamp>`). The model's `n_inputs` and `n_outputs` are read from its
serving signature.

- `--series`: a raw series CSV in the shape `trainer.prepare` reads (wide or long). The model
  forecasts the `n_outputs` points after the last `n_inputs` values of each series, at
  timestamps continuing the series' median step. With `--backtest` the last `n_outputs`
  points are held out as the actual values and the forecast is made from the points before.
  Output columns: `series_id,timestamp,step,forecast,actual`.
- `--rows`: prepared rows (file patterns): `n_inputs + n_outputs` values (the targets are the
  actual values) or `n_inputs` values (inputs only). Output columns: `row,step,forecast,actual`.

`--plot PATH` draws each series' (or row's) history, forecast and, when known, actual values
to a PNG (at most `--plot_count` panels). It needs matplotlib: `pip install matplotlib`, or
the package's `plot` extra.
"""

import csv  # noqa: I001 (trainer.cli first: it quiets TensorFlow's C++ log)
import dataclasses
import datetime
import io
import logging
import math
import sys
from typing import Any, Dict, List, Optional, Sequence

from trainer.cli import run_cli

import numpy as np
import tensorflow as tf

from trainer.config import _flag, _float_above, _int_at_least, build_flag_parser, split_patterns
from trainer.errors import ConfigError, DataError
from trainer.inputs import FEATURE_KEY, expand_file_patterns
from trainer.model import PREDICTIONS_KEY
from trainer.prepare import BAD_VALUE_ACTIONS, GAP_FACTOR, Series, read_series

logger = logging.getLogger(__name__)

PREDICT_BATCH_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Flags of `python -m trainer.predict`."""

    model_dir: str = _flag("", "SavedModel directory, or a training output directory (its newest "
                           "export/latest/<timestamp> is used).")
    series: str = _flag("", "Raw series CSV (wide or long, as trainer.prepare reads): forecast "
                        "after the last n_inputs values of each series.")
    rows: str = _flag("", "Comma-separated file patterns of prepared rows (n_inputs + n_outputs "
                      "values, or n_inputs values only).")
    output: str = _flag("", "Forecast CSV to write (local or gs://).")
    plot: str = _flag("", "PNG to draw history, forecast and actual values to (needs matplotlib).")
    plot_count: int = _flag(4, "Most series or rows drawn by --plot (the first series, the last "
                            "rows).", type=_int_at_least(1))
    backtest: bool = _flag(False, "With --series: hold out the last n_outputs points of each "
                           "series as actual values and forecast them from the points before.")
    target: str = _flag("", "With --series: the value column (as trainer.prepare's --target).")
    timestamp_column: str = _flag("timestamp", "With --series: name of the timestamp column.")
    series_id_column: str = _flag("series_id", "With --series: name of the series id column.")
    on_bad_values: str = _flag("fail", "With --series: fail on missing or non-numeric values and "
                               "time gaps, or drop them and forecast from the last unbroken part.",
                               choices=BAD_VALUE_ACTIONS)
    gap_factor: float = _flag(GAP_FACTOR, "With --series: a time step longer than this many times "
                              "the median step is a gap (0: no gap check).",
                              type=_float_above(0.0, inclusive=True))
    verbosity: str = _flag("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclasses.dataclass
class Forecaster:
    """An exported model loaded for prediction: `predict([windows, n_inputs]) -> [windows, n_outputs]`."""

    path: str
    n_inputs: int
    n_outputs: int
    serve: Any

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        if inputs.ndim != 2 or inputs.shape[1] != self.n_inputs:
            raise DataError(f"the model at {self.path} reads {self.n_inputs} inputs per window, got "
                            f"windows of shape {inputs.shape}")
        parts = [self.serve(**{FEATURE_KEY: tf.constant(inputs[i:i + PREDICT_BATCH_SIZE],
                                                        dtype=tf.float32)})[PREDICTIONS_KEY].numpy()
                 for i in range(0, len(inputs), PREDICT_BATCH_SIZE)]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, self.n_outputs))


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory itself, or the newest export/latest/<timestamp> of a run directory."""
    path = path.rstrip("/")
    if not path:
        raise ConfigError("give --model_dir: a SavedModel or a training output directory")
    if tf.io.gfile.exists(f"{path}/saved_model.pb"):
        return path
    exports = [p.rstrip("/") for p in tf.io.gfile.glob(f"{path}/export/latest/*")
               if tf.io.gfile.exists(f"{p.rstrip('/')}/saved_model.pb")]
    if not exports:
        raise ConfigError(f"--model_dir {path} holds no saved_model.pb and no export/latest/<timestamp>"
                          "; give a SavedModel directory or the --output_dir of a finished training run")
    return max(exports, key=lambda p: int(p.rsplit("/", 1)[1]) if p.rsplit("/", 1)[1].isdigit() else -1)


def load_forecaster(model_dir: str) -> Forecaster:
    """Load the SavedModel's serving signature and read its n_inputs and n_outputs."""
    path = resolve_saved_model(model_dir)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    n_inputs = serve.structured_input_signature[1][FEATURE_KEY].shape[1]
    n_outputs = serve.structured_outputs[PREDICTIONS_KEY].shape[1]
    logger.info("model %s: %d inputs -> %d outputs", path, n_inputs, n_outputs)
    return Forecaster(path=path, n_inputs=int(n_inputs), n_outputs=int(n_outputs), serve=serve)


def read_rows(patterns: str, *, n_inputs: int, n_outputs: int, flag: str, model_path: str,
              allow_inputs_only: bool) -> Dict[str, Any]:
    """Prepared CSV rows -> {"files", "inputs" [rows, n_inputs], "actual" [rows, n_outputs] or None}.

    Every row must have n_inputs + n_outputs values (or, with `allow_inputs_only`, every row
    n_inputs); an error names the file, the row and the model's shape.
    """
    files = expand_file_patterns(split_patterns(patterns), flag=flag)
    widths = [n_inputs + n_outputs] + ([n_inputs] if allow_inputs_only else [])
    rows: List[List[float]] = []
    width: Optional[int] = None
    for path in files:
        with tf.io.gfile.GFile(path, "r") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                fields = line.rstrip("\r\n").split(",")
                if len(fields) not in widths or (width is not None and len(fields) != width):
                    expected = " or ".join(str(w) for w in widths) if width is None else str(width)
                    raise DataError(
                        f"row {number} of {path} has {len(fields)} values, expected {expected}: the "
                        f"model at {model_path} reads n_inputs {n_inputs} and forecasts n_outputs "
                        f"{n_outputs}. Prepare the rows with --n_inputs {n_inputs} --n_outputs "
                        f"{n_outputs}, or use the model trained on them")
                width = len(fields)
                try:
                    values = [float(field) for field in fields]
                except ValueError:
                    bad = next(f for f in fields if not _is_number(f))
                    raise DataError(f"row {number} of {path}: {bad!r} is not a number") from None
                if not all(math.isfinite(v) for v in values):
                    raise DataError(f"row {number} of {path} holds NaN or infinity")
                rows.append(values)
    if not rows:
        raise DataError(f"{flag} {patterns!r}: the files hold no rows")
    array = np.array(rows, dtype=np.float64)
    actual = array[:, n_inputs:] if width == n_inputs + n_outputs else None
    return {"files": files, "inputs": array[:, :n_inputs], "actual": actual}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _future_timestamps(series: Series, count: int) -> List[str]:
    """`count` timestamps after the last one, at the series' median step."""
    keys = series.keys
    last = keys[-1]
    if len(keys) < 2:
        return [""] * count
    if isinstance(last, datetime.datetime):
        steps = [(b - a).total_seconds() for a, b in zip(keys, keys[1:])]
        step = datetime.timedelta(seconds=float(np.median(steps)))
        date_only = all(len(stamp) == 10 for stamp in series.timestamps)
        stamps = [last + step * k for k in range(1, count + 1)]
        return [s.date().isoformat() if date_only else s.isoformat() for s in stamps]
    step = float(np.median(np.diff(np.array(keys, dtype=np.float64))))
    return [f"{last + step * k:g}" for k in range(1, count + 1)]


def forecast_series(forecaster: Forecaster, series_list: Sequence[Series], *, backtest: bool,
                    source: str) -> List[Dict[str, Any]]:
    """One forecast per series from its last n_inputs points (before the held-out ones)."""
    n_inputs, n_outputs = forecaster.n_inputs, forecaster.n_outputs
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
        history_start = max(begin, end - 5 * n_inputs)
        results.append({
            "id": series.series_id,
            "inputs": series.values[end - n_inputs:end],
            "history": series.values[history_start:end],
            "history_keys": series.keys[history_start:end],
            "actual": series.values[end:] if backtest else None,
            "timestamps": (series.timestamps[end:] if backtest
                           else _future_timestamps(series, n_outputs)),
            "future_keys": series.keys[end:] if backtest else None,
        })
    forecasts = forecaster.predict(np.array([r["inputs"] for r in results]))
    for result, forecast in zip(results, forecasts):
        result["forecast"] = forecast
    return results


def _format(value: Optional[float]) -> str:
    return "" if value is None else repr(float(value))


def write_forecast_csv(path: str, results: Sequence[Dict[str, Any]], *, by_series: bool) -> None:
    """Long format: one line per forecast step."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["series_id", "timestamp", "step", "forecast", "actual"] if by_series
                    else ["row", "step", "forecast", "actual"])
    for result in results:
        for step, value in enumerate(result["forecast"], start=1):
            actual = None if result["actual"] is None else result["actual"][step - 1]
            key = [result["id"], result["timestamps"][step - 1]] if by_series else [result["id"]]
            writer.writerow(key + [step, _format(value), _format(actual)])
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(buffer.getvalue())


def draw_plot(path: str, results: Sequence[Dict[str, Any]], *, title: str) -> None:
    """History, forecast and (when known) actual values, one panel per series or row, as PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed: pip install matplotlib "
                          "(or install this package with its 'plot' extra)") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(results), 1, figsize=(9, 2.6 * len(results)), squeeze=False)
    for axis, result in zip(axes[:, 0], results):
        history = result["history"]
        if result.get("history_keys") is not None:
            x_history = list(result["history_keys"])
            x_future = (list(result["future_keys"]) if result.get("future_keys") is not None
                        else _future_keys(x_history, len(result["forecast"])))
        else:
            x_history = list(range(1 - len(history), 1))  # the last known value at step 0
            x_future = list(range(1, len(result["forecast"]) + 1))
        # Join the lines at the last known point, so forecast and actual continue the history.
        axis.plot(x_history, history, color="black", label="history")
        axis.plot(x_history[-1:] + x_future, [history[-1], *result["forecast"]], color="tab:blue",
                  marker="o", markersize=3, label="forecast")
        if result["actual"] is not None:
            axis.plot(x_history[-1:] + x_future, [history[-1], *result["actual"]], color="tab:orange",
                      marker="o", markersize=3, linestyle="--", label="actual")
        axis.set_title(f"row {result['id']}" if isinstance(result["id"], int) else str(result["id"]),
                       fontsize=9)
        axis.legend(fontsize=8, loc="upper left")
    if any(isinstance(r.get("history_keys", [None])[-1], datetime.datetime) for r in results):
        figure.autofmt_xdate()  # slanted date labels that do not overlap
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(buffer.getvalue())


def _future_keys(history_keys: List[Any], count: int) -> List[Any]:
    if len(history_keys) < 2:
        return list(range(1, count + 1))
    step = history_keys[-1] - history_keys[-2]
    return [history_keys[-1] + step * k for k in range(1, count + 1)]


def predict(config: PredictConfig) -> str:
    """Forecast, write the CSV (and the plot); returns the closing summary."""
    if bool(config.series) == bool(config.rows):
        raise ConfigError("give exactly one of --series (a raw series CSV) and --rows (prepared rows)")
    if not config.output:
        raise ConfigError("give --output, the forecast CSV to write")
    forecaster = load_forecaster(config.model_dir)
    if config.series:
        series_list, _ = read_series(
            config.series, target=config.target, timestamp_column=config.timestamp_column,
            series_id_column=config.series_id_column, on_bad_values=config.on_bad_values,
            gap_factor=config.gap_factor)
        results = forecast_series(forecaster, series_list, backtest=config.backtest,
                                  source=config.series)
        plotted = results[:config.plot_count]
    else:
        if config.backtest:
            raise ConfigError("--backtest works with --series; prepared --rows with targets already "
                              "hold the actual values")
        data = read_rows(config.rows, n_inputs=forecaster.n_inputs, n_outputs=forecaster.n_outputs,
                         flag="--rows", model_path=forecaster.path, allow_inputs_only=True)
        forecasts = forecaster.predict(data["inputs"])
        results = [{"id": row, "inputs": inputs, "history": inputs, "forecast": forecast,
                    "actual": None if data["actual"] is None else data["actual"][row - 1]}
                   for row, (inputs, forecast) in enumerate(zip(data["inputs"], forecasts), start=1)]
        plotted = results[-config.plot_count:]
    write_forecast_csv(config.output, results, by_series=bool(config.series))
    lines = [f"forecast of {len(results)} {'series' if config.series else 'rows'} x "
             f"{forecaster.n_outputs} steps by {forecaster.path} -> {config.output}"]
    if config.plot:
        draw_plot(config.plot, plotted, title=f"forecast by {forecaster.path}")
        lines.append(f"plot -> {config.plot}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_flag_parser(PredictConfig, prog="python -m trainer.predict",
                               description="Forecast with an exported model from a raw series or "
                               "prepared rows; write CSV and optionally a PNG plot.")
    return run_cli(predict, argv, parser=parser, config_class=PredictConfig)


if __name__ == "__main__":
    sys.exit(main())
