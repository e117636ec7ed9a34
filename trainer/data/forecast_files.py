"""The files a forecast is written to: a CSV, one line per forecast step, and a PNG plot.

A forecast here is a list of dicts, one per series or prepared row: `id`, `forecast`
[n_outputs], `actual` [n_outputs] or None, `history` (the values before the forecast), and
for series `timestamps` (of the forecast steps), `history_keys` and `future_keys` (time keys
for the plot's x axis). `trainer.predict` makes them.
"""

import csv
import datetime
import io
from typing import Any, Dict, List, Optional, Sequence

import tensorflow as tf

from trainer.util.errors import ConfigError


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
