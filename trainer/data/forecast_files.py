"""The files a forecast is written to: a CSV, one line per forecast step, and a PNG plot.

A forecast here is a list of dicts, one per series or prepared row: `id`, `forecast`
[n_outputs], `actual` [n_outputs] or None, `history` (the values before the forecast), and
for series `timestamps` (of the forecast steps), `history_keys` and `future_keys` (time keys
for the plot's x axis); with a quantile model, `quantiles` [n_outputs, Q] at the `levels`
given to the writers. `trainer.predict` makes them.
"""

from __future__ import annotations

import csv
import datetime
import io
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np

from trainer.util.errors import ConfigError
from trainer.util.lazy import tf


def _format(value: Optional[float]) -> str:
    """An actual value as the shortest text that reads back as the same number."""
    return "" if value is None else repr(float(value))


def _format_forecast(value: float) -> str:
    """A forecast as the shortest text that reads back as the same float32 (the model's
    precision: more digits would only be noise).

    >>> _format_forecast(301.83636474609375)
    '301.83636'
    """
    return str(np.float32(value))


def quantile_column(level: float) -> str:
    """The CSV column of a quantile level.

    >>> quantile_column(0.1), quantile_column(0.975)
    ('q0.1', 'q0.975')
    """
    return f"q{level:g}"


def write_forecast_csv(path: str, results: Sequence[Dict[str, Any]], *, by_series: bool,
                       levels: Sequence[float] = ()) -> None:
    """Long format: one line per forecast step; a column per quantile level after `forecast`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((["series_id", "timestamp", "step"] if by_series else ["row", "step"])
                    + ["forecast", *(quantile_column(level) for level in levels), "actual"])
    for result in results:
        for step, value in enumerate(result["forecast"], start=1):
            actual = None if result["actual"] is None else result["actual"][step - 1]
            key = [result["id"], result["timestamps"][step - 1]] if by_series else [result["id"]]
            quantiles = [_format_forecast(q) for q in result["quantiles"][step - 1]] if levels else []
            writer.writerow(key + [step, _format_forecast(value), *quantiles, _format(actual)])
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(buffer.getvalue())


def draw_plot(path: str, results: Sequence[Dict[str, Any]], *, levels: Sequence[float] = (),
              history_points: int = 0, value_label: str = "value") -> None:
    """History, forecast, the central intervals of the quantiles as bands, and (when known) the
    actual values, one panel per series or row (titled with its name), as PNG.

    `history_points` > 0 draws only that many points before the forecast, so that the
    forecast stays readable; `value_label` names the y axis.
    """
    figure = make_figure(results, levels=levels, history_points=history_points,
                         value_label=value_label)
    import matplotlib.pyplot as plt  # noqa: I001 (make_figure has checked that it is there)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(buffer.getvalue())


def make_figure(results: Sequence[Dict[str, Any]], *, levels: Sequence[float] = (),
                history_points: int = 0, value_label: str = "value") -> Any:
    """The matplotlib figure that `draw_plot` saves."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            f"--plot needs matplotlib, which is not installed in this Python ({sys.executable}). "
            "Install it with: pip install 'matplotlib>=3.5' (or, in a clone of this package, "
            ".venv/bin/pip install -e '.[plot]'; ./scripts/train_local.sh installs it), or leave "
            "out --plot") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    intervals = [(lower, upper) for lower, level in enumerate(levels) if level < 0.5
                 for upper, other in enumerate(levels) if abs(level + other - 1.0) < 1e-9]
    figure, axes = plt.subplots(len(results), 1, figsize=(9, 2.8 * len(results)), squeeze=False)
    for axis, result in zip(axes[:, 0], results):
        history = list(result["history"])
        keys = result.get("history_keys") if result.get("future_keys") else None
        if keys is not None:
            x_history = list(keys)
            x_future = list(result["future_keys"])  # the forecast's timestamps, as in the CSV
        else:
            x_history = list(range(1 - len(history), 1))  # the last known value at step 0
            x_future = list(range(1, len(result["forecast"]) + 1))
        if history_points and len(history) > history_points:
            history, x_history = history[-history_points:], x_history[-history_points:]
        # Join the lines at the last known point, so forecast and actual continue the history.
        x_joined = x_history[-1:] + x_future
        axis.plot(x_history, history, color="black", linewidth=1, label="history")
        for rank, (lower, upper) in enumerate(intervals):  # widest first, palest
            band = result["quantiles"]
            axis.fill_between(x_joined, [history[-1], *band[:, lower]],
                              [history[-1], *band[:, upper]], color="tab:blue",
                              alpha=0.15 + 0.15 * rank, linewidth=0,
                              label=f"{100 * (levels[upper] - levels[lower]):g}% interval")
        axis.plot(x_joined, [history[-1], *result["forecast"]], color="tab:blue", marker="o",
                  markersize=3, label="median" if 0.5 in levels else "forecast")
        if result["actual"] is not None:
            axis.plot(x_joined, [history[-1], *result["actual"]], color="tab:orange",
                      marker="o", markersize=3, linestyle="--", label="actual")
        axis.set_title(f"row {result['id']}" if isinstance(result["id"], int)
                       else f"series {result['id']}", fontsize=10)
        axis.set_ylabel(value_label)
        if keys is None:
            axis.set_xlabel("steps after the last input")
        # Beside the panel, not in it: inside, a legend covers whichever line passes there.
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if any(isinstance(r.get("history_keys", [None])[-1], datetime.datetime) for r in results):
        figure.autofmt_xdate()  # slanted date labels that do not overlap
    figure.tight_layout()
    return figure

