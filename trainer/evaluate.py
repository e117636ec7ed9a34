"""Evaluate any exported model on any prepared split, against the naive baselines, as JSON.

    python -m trainer.evaluate --model_dir output --data_dir prepared --split test \\
        --output test_metrics.json
    python -m trainer.evaluate --model_dir output --data_paths 'prepared/test-*.csv' \\
        --stats_file prepared/prepare.json --season 24 --output test_metrics.json

`--data_dir` is a prepared directory of the series layout: every window of `--split` is cut
from its series (the model's own n_inputs + n_outputs, stride 1), and its prepare.json scales
MASE. `--data_paths` are files of rows (the windows layout).

`--model_dir` is a SavedModel or a training output directory (its best export). Every window
is forecast and scored for the model, the naive forecast (last value) and the seasonal naive
forecast (last season repeated), with the definitions of `trainer.model.metrics`, which the
trainer's own evaluation uses too: RMSE, MAE and MAPE over every window and step; sMAPE, MASE
and RMSSE per series, each scaled by that series' own in-sample errors over the history of the
split (`trainer.data.series_scales`), then averaged over the series. Rows (`--data_paths`)
name no series: they are scored as one, with the training split's pooled scale from
`--stats_file` when given, else the same errors within the evaluated windows' inputs.
`--per_series FILE.csv` writes each series' figures.

For a model with quantiles (a quantile head, or calibrated intervals: its export's head.json
names the levels), the interval
metrics of `trainer.model.metrics` join them: weighted quantile loss (`wql`), coverage and
width of each central interval, MSIS with the 0.025 and 0.975 levels, for the model and the
baselines' empirical intervals.

The JSON holds `metrics` (flat, as metrics.json: `rmse`, `naive_rmse`, `seasonal_naive_mase`,
...; an undefined value such as MAPE with an actual value of 0 is null), the model, the files,
the counts and the MASE scale with its source.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from trainer.data.prepared import mase_scale, open_prepared, read_summary, rmsse_scale
from trainer.data.schema import FEATURE_KEY, read_rows
from trainer.data.series_reads import read_scored_split
from trainer.data.series_scales import SeriesScales, describe_missing
from trainer.data.windows import SPLITS
from trainer.model.heads import PREDICTIONS_KEY, QUANTILES_KEY
from trainer.model.metrics import (
    BASELINES,
    SCALE_FREE_METRICS,
    SeriesInfo,
    compute_metrics,
    metrics_table,
    per_series_metrics,
    verdict,
)
from trainer.model.serving import ExportedModel, load_exported_model
from trainer.util.cli import (
    VERBOSITIES,
    build_flag_parser,
    flag,
    int_at_least,
    model_dir_flag,
    run_command,
)
from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Flags of `python -m trainer.evaluate`."""

    model_dir: str = model_dir_flag()
    data_dir: str = flag("", "A prepared directory of the series layout (local or gs://): every "
                          "window of --split, cut to the model's n_inputs + n_outputs. Its "
                          "prepare.json scales MASE.")
    split: str = flag("test", "With --data_dir: the split whose windows are scored.",
                      choices=SPLITS)
    data_paths: str = flag("", "Comma-separated file patterns of prepared rows to evaluate on "
                            "(n_inputs + n_outputs values each), e.g. 'prepared/test-*.csv'.")
    stats_file: str = flag("", "prepare.json of the data: its training split's in-sample naive "
                            "MAE scales MASE. Empty: the naive MAE within the evaluated inputs.")
    # 0: the model's own, so that the verdict is the one its training run gave.
    season: int = flag(0, "Season length of the seasonal naive baseline and the MASE scale (0: "
                        "the --season the model was trained with, from its export's data.json, "
                        "else prepare.json's, else 1).", type=int_at_least(1))
    output: str = flag("", "JSON file to write the evaluation to (local or gs://); without it the "
                        "table is printed only.")
    per_series: str = flag("", "With --data_dir: a CSV file (local or gs://) to write each series' "
                            "figures to: its id, windows, then mae, smape, mase and rmsse (msis with "
                            "the 95%% interval) of the model and of both baselines.")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        """The rules between flags (a ConfigError here exits 2, like a bad flag)."""
        if bool(self.data_dir) == bool(self.data_paths):
            raise ConfigError("give --data_dir (a prepared directory of series) or --data_paths "
                              "(files of prepared rows)")
        if self.data_dir and self.stats_file:
            raise ConfigError("--data_dir brings its own prepare.json: drop --stats_file")
        if self.per_series and not self.data_dir:
            raise ConfigError("--per_series needs --data_dir (a prepared directory of series): "
                              "files of rows do not say which series a window is of")


def _json_number(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def evaluate(config: EvaluateConfig) -> Dict[str, Any]:
    """Forecast every row of `data_paths` with the model and score it; returns the JSON's content."""
    prepared = open_prepared(config.data_dir) if config.data_dir else None  # the cheap checks first
    exported = load_exported_model(config.model_dir)
    stats_file = config.stats_file
    if prepared is not None:
        stats_file = f"{prepared.data_dir}/prepare.json"
    season, season_source = resolve_season(config.season, exported=exported,
                                           summary=read_summary(stats_file) if stats_file else {})
    if season > exported.n_inputs:
        raise ConfigError(f"--season {season} ({season_source}) is longer than the model's "
                          f"n_inputs {exported.n_inputs}")
    series, scales = None, None
    if prepared is not None:
        series_ids = prepared.summary.get("series_ids")
        scored = read_scored_split(prepared, split=config.split, n_inputs=exported.n_inputs,
                                   n_outputs=exported.n_outputs, season=season)
        features, labels, window_series = scored.features, scored.labels, scored.series
        if not len(labels):
            raise DataError(f"--data_dir {config.data_dir}: the {config.split} split has no window "
                            f"of the model's {exported.n_inputs} + {exported.n_outputs} points")
        inputs = features.pop(FEATURE_KEY).astype(np.float64)
        data = {"inputs": inputs, "actual": labels, "files": prepared.files,
                "covariates": features}
        scales = scored.scales
        series = SeriesInfo(index=window_series, mase_scale=scales.mae_season[window_series],
                            rmsse_scale=scales.mse_1[window_series], count=scales.count)
        present = np.bincount(window_series, minlength=scales.count) > 0
        missing = describe_missing(scales, series_ids, present)
        if missing:
            logger.warning("%s", missing)
    else:
        data = read_rows(config.data_paths, n_inputs=exported.n_inputs,
                         n_outputs=exported.n_outputs, flag="--data_paths",
                         model_path=exported.path, allow_inputs_only=False)
    summary = read_summary(stats_file) if stats_file and series is None else None
    scale = (mase_scale(summary, season=season, source=stats_file, season_source=season_source)
             if summary else None)
    outputs = exported.forecast(data["inputs"], data.get("covariates"))
    forecast = outputs[PREDICTIONS_KEY]
    scored = dict(actual=data["actual"], forecast=forecast, inputs=data["inputs"], season=season,
                  quantiles=outputs.get(QUANTILES_KEY), levels=exported.levels)
    metrics = compute_metrics(mase_scale=scale, rmsse_scale=rmsse_scale(summary) if summary else None,
                              series=series, **scored)
    if config.per_series:
        write_per_series(config.per_series, per_series_metrics(series=series, **scored),
                         series_ids=prepared.summary.get("series_ids"))
    result = {
        "model": exported.path, "data_paths": config.data_paths, "data_dir": config.data_dir,
        "split": config.split if config.data_dir else None, "files": data["files"],
        "windows": int(len(forecast)), "points": int(forecast.size),
        "n_inputs": exported.n_inputs, "n_outputs": exported.n_outputs,
        "season": season, "season_source": season_source, "loss": exported.head.get("loss"),
        "quantiles": list(exported.levels),
        "mase_scale": scale,
        "mase_scale_source": scale_source(scales, stats_file=stats_file, pooled=scale),
        "per_series": config.per_series or None,
        "metrics": {name: _json_number(value) for name, value in metrics.items()},
    }
    if config.output:
        with tf.io.gfile.GFile(config.output, "w") as handle:
            handle.write(json.dumps(result, indent=2) + "\n")
    return result


def scale_source(scales: Optional[SeriesScales], *, stats_file: str, pooled: Optional[float]) -> str:
    """Where the scales of mase, rmsse and msis came from, in words."""
    if scales is not None:
        history = "train and valid splits" if scales.split == "test" else "train split"
        return (f"each series' own in-sample seasonal naive MAE (season {scales.season}) over its "
                f"{history}, averaged over series")
    if pooled is not None:
        return f"one pooled scale: the in-sample seasonal naive MAE of the training split ({stats_file})"
    return "one pooled scale: the seasonal naive MAE within the evaluated windows' inputs"


def write_per_series(path: str, table: Dict[str, np.ndarray], *,
                     series_ids: Optional[Sequence[str]]) -> None:
    """Each series' figures as CSV: series id, windows, then the model's and each baseline's
    mae, smape, mase, rmsse (and msis); empty cells where undefined. Series without a window of
    the split are left out."""
    names = ["mae", *SCALE_FREE_METRICS] + (["msis"] if "msis" in table else [])
    columns = [prefix + name for prefix in ("", *(f"{b}_" for b in BASELINES)) for name in names
               if prefix + name in table]
    lines = [",".join(["series_id", "windows", *columns])]
    for index in np.flatnonzero(table["windows"] > 0):
        name = str(series_ids[index]) if series_ids else str(index)
        if any(character in name for character in ',"\n'):
            name = '"' + name.replace('"', '""') + '"'
        cells = ["" if not np.isfinite(table[column][index]) else f"{table[column][index]:.10g}"
                 for column in columns]
        lines.append(",".join([name, str(int(table["windows"][index])), *cells]))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def resolve_season(season: int, *, exported: ExportedModel, summary: Dict[str, Any]) -> Tuple[int, str]:
    """--season, else the model's (its training run's, data.json), else that of the data's
    prepare.json (`summary`), else 1; with where it came from."""
    if season:
        return season, "--season"
    if exported.data.get("season"):
        return int(exported.data["season"]), "the model's, from its training run"
    if summary.get("season"):
        return int(summary["season"]), f"from {summary['_path']}"
    return 1, "the default: the plain naive forecast"


def summarize(result: Dict[str, Any], *, output: str) -> str:
    """A table: the model and each baseline, one column per metric."""
    source = (f"the {result['split']} split of {result['data_dir']}" if result["data_dir"]
              else result["data_paths"])
    lines = [f"{result['windows']} windows x {result['n_outputs']} steps from {source}, "
             f"season {result['season']} ({result['season_source']})"]
    lines += metrics_table(result["metrics"], result["quantiles"])
    lines.append(verdict({key: value for key, value in result["metrics"].items()
                          if value is not None}))
    if output:
        lines.append(f"written to {output}")
    if result.get("per_series"):
        lines.append(f"each series' figures written to {result['per_series']}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.evaluate") -> int:
    parser = build_flag_parser(EvaluateConfig, prog=prog,
                               description="Evaluate an exported model on a prepared split against the "
                               "naive and seasonal naive forecasts; write JSON.")
    return run_command(lambda config: summarize(evaluate(config), output=config.output), argv,
                       parser=parser, make_config=EvaluateConfig, quiet_absl=True)


if __name__ == "__main__":
    sys.exit(main())
