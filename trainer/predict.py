"""Forecasts from an exported model, as CSV and optionally a plot.

    python -m trainer.predict --model_dir output --series sales.csv --target units \\
        --output forecast.csv --plot forecast.png
    python -m trainer.predict --model_dir output/export/best/1795482765 \\
        --rows 'prepared/test-*.csv' --output test_forecast.csv

`--model_dir` is a SavedModel directory or a training output directory (its best export,
`export/best/<timestamp>`, else its newest `export/latest/<timestamp>`). The model's
`n_inputs` and `n_outputs` are read from its serving signature.

- `--series`: a raw series CSV in the shape `trainer.prepare` reads (wide or long). The model
  forecasts the `n_outputs` points after the last `n_inputs` values of each series, at
  timestamps continuing the series' calendar (`trainer.data.frequency`: month starts stay
  month starts; irregular timestamps step by their median step, with a warning). With
  `--backtest` the last `n_outputs` points are held out as the actual values and the forecast
  is made from the points before.
  Output columns: `series_id,timestamp,step,forecast,actual`, and for a model with a quantile
  head a column per level between `forecast` and `actual` (`q0.1,q0.5,q0.9`). For a model trained with
  covariates (its export names them), the file holds their columns too, and the rows after
  the last known value of a series (an empty target) carry the future covariates of the
  horizon; the forecast is at their timestamps.
- `--rows`: prepared rows (file patterns): `n_inputs + n_outputs` values (the targets are the
  actual values) or `n_inputs` values (inputs only). Output columns: `row,step,forecast,actual`.

`--plot PATH` draws each series' (or row's) history (the last `--plot_history` points), forecast,
the central intervals of a quantile model as bands and, when known, actual values to a PNG (at
most `--plot_count` panels, each titled with its series). It needs matplotlib: `pip install matplotlib`, or
the package's `plot` extra.
"""

import dataclasses
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence

from trainer.data.forecast_files import draw_plot, quantile_column, write_forecast_csv
from trainer.data.forecast_inputs import (
    ForecastReading,
    read_forecast_series,
    row_windows,
    series_windows,
    window_inputs,
)
from trainer.data.series import Series
from trainer.model.serving import ExportedModel, add_forecasts, load_exported_model
from trainer.util.cli import (
    VERBOSITIES,
    build_flag_parser,
    flag,
    int_at_least,
    run_command,
)
from trainer.util.errors import ConfigError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PredictConfig(ForecastReading):
    """Flags of `python -m trainer.predict`: what it reads (`ForecastReading`), then these."""

    output: str = flag("", "Forecast CSV to write (local or gs://); an existing file is kept "
                        "unless --overwrite.")
    plot: str = flag("", "PNG to draw history, forecast, its intervals (a quantile model) and "
                      "actual values to (needs matplotlib).")
    plot_count: int = flag(4, "Most series or rows drawn by --plot (the first series, the last "
                            "rows; the closing lines say how many were left out).",
                            type=int_at_least(1))
    # A few horizons: enough to see the series' pattern, few enough to read the forecast.
    plot_history: int = flag(0, "Points of history --plot draws before each forecast (0: four "
                              "horizons, 4 x n_outputs).", type=int_at_least(0))
    overwrite: bool = flag(False, "Replace --output (and --plot) when they exist, as prepare's "
                            "--overwrite replaces its output.")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        """The rules between flags (a ConfigError here exits 2, like a bad flag)."""
        self.check_one_source()
        if not self.output:
            raise ConfigError("give --output, the forecast CSV to write")
        self.check_backtest()


def forecast_series(model: ExportedModel, series_list: Sequence[Series], *, backtest: bool,
                    source: str, history_points: int = 0) -> List[Dict[str, Any]]:
    """One forecast per series from its last n_inputs points (before the held-out ones), with
    its history (`history_points`, at least the inputs) for the plot."""
    results, covariate_inputs = series_windows(
        series_list, n_inputs=model.n_inputs, n_outputs=model.n_outputs,
        covariates=model.covariates, backtest=backtest, source=source,
        history_points=history_points)
    add_forecasts(results, model.forecast(window_inputs(results, n_inputs=model.n_inputs),
                                          covariate_inputs))
    return results


def plot_history_points(config: "PredictConfig", model: ExportedModel) -> int:
    """--plot_history, or its default: four horizons."""
    return config.plot_history or 4 * model.n_outputs


def predict(config: PredictConfig) -> str:
    """Forecast, write the CSV (and the plot); returns the closing summary."""
    existing = [f"--{name} {path}" for name, path in (("output", config.output),
                                                       ("plot", config.plot))
                if path and tf.io.gfile.exists(path)]
    if existing and not config.overwrite:  # before the work: nothing is lost to a typo
        raise ConfigError(f"{existing[0]} exists already; give another path or pass --overwrite "
                          "to replace it")
    model = load_exported_model(config.model_dir)
    model.require_covariates_asset(" (an export of an older version?); train it again, or call "
                                   "its SavedModel directly")
    reading = config.reading(model.data_reading)
    trained_on = model.data_reading.get("target")
    if config.series and config.target and trained_on and config.target != trained_on:
        logger.warning("--target %s: the model at %s was trained on %r; forecasting another column "
                       "with it assumes the two behave alike", config.target, model.path, trained_on)
    if config.series:
        logger.info("reading %s with --target %s --timestamp_column %s --series_id_column %s "
                    "--on_bad_values %s --gap_factor %g (the flags given, else as the model's "
                    "data was prepared)", config.series, reading["target"] or "(the only value "
                    "column)", reading["timestamp_column"], reading["series_id_column"],
                    reading["on_bad_values"], reading["gap_factor"])
        series_list = read_forecast_series(config.series, covariates=model.covariates, **reading)
        results = forecast_series(model, series_list, backtest=config.backtest,
                                  source=config.series,
                                  history_points=plot_history_points(config, model))
        plotted = results[:config.plot_count]
    else:
        results = row_windows(config.rows, n_inputs=model.n_inputs, n_outputs=model.n_outputs,
                              model_path=model.path)
        add_forecasts(results, model.forecast(window_inputs(results, n_inputs=model.n_inputs)))
        plotted = results[-config.plot_count:]
    write_forecast_csv(config.output, results, by_series=bool(config.series), levels=model.levels)
    lines = [f"forecast of {len(results)} {'series' if config.series else 'rows'} x "
             f"{model.n_outputs} steps by {model.path} -> {config.output}"]
    if model.levels:
        lines[0] += (f" (quantiles {','.join(f'{level:g}' for level in model.levels)} in columns "
                     f"{', '.join(quantile_column(level) for level in model.levels)}; forecast is "
                     f"{model.head.get('predicted', 'the point forecast')})")
    if config.plot:
        draw_plot(config.plot, plotted, levels=model.levels,
                  history_points=plot_history_points(config, model),
                  value_label=reading["target"] or "value")
        lines.append(f"plot -> {config.plot}")
        if len(plotted) < len(results):
            kind = "series" if config.series else "rows"
            which = "the first" if config.series else "the last"
            lines.append(f"the plot draws {which} {len(plotted)} of the {len(results)} {kind} "
                         f"(--plot_count {config.plot_count}; the CSV holds them all)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.predict") -> int:
    parser = build_flag_parser(PredictConfig, prog=prog,
                               description="Forecast with an exported model from a raw series or "
                               "prepared rows; write CSV and optionally a PNG plot.")
    return run_command(predict, argv, parser=parser, make_config=PredictConfig, quiet_absl=True)


if __name__ == "__main__":
    sys.exit(main())
