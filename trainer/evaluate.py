"""Evaluate any exported model on any prepared split, against the naive baselines, as JSON.

    python -m trainer.evaluate --model_dir output --data_paths 'prepared/test-*.csv' \\
        --stats_file prepared/prepare.json --season 24 --output test_metrics.json

`--model_dir` is a SavedModel or a training output directory (its newest export). Every row of
the files is forecast; RMSE, MAE, MAPE, sMAPE and MASE are averaged over every window and every
step, for the model, the naive forecast (last value) and the seasonal naive forecast (last
season repeated), with the definitions of `trainer.forecast_metrics`, which the trainer's own
evaluation uses too. MASE is scaled by the training split's in-sample seasonal naive MAE from
`--stats_file` when given, else by the same MAE within the evaluated windows' inputs.

The JSON holds `metrics` (flat, as metrics.json: `rmse`, `naive_rmse`, `seasonal_naive_mase`,
...; an undefined value such as MAPE with an actual value of 0 is null), the model, the files,
the counts and the MASE scale with its source.
"""

import dataclasses  # noqa: I001 (trainer.cli first: it quiets TensorFlow's C++ log)
import json
import logging
import math
import sys
from typing import Any, Dict, Optional, Sequence

from trainer.cli import run_cli

import tensorflow as tf

from trainer.config import _flag, _int_at_least, build_flag_parser
from trainer.errors import ConfigError
from trainer.forecast_metrics import BASELINES, METRICS, compute_metrics
from trainer.predict import load_forecaster, read_rows
from trainer.scaling import resolve_statistics

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Flags of `python -m trainer.evaluate`."""

    model_dir: str = _flag("", "SavedModel directory, or a training output directory (its newest "
                           "export/latest/<timestamp> is used).")
    data_paths: str = _flag("", "Comma-separated file patterns of prepared rows to evaluate on "
                            "(n_inputs + n_outputs values each), e.g. 'prepared/test-*.csv'.")
    stats_file: str = _flag("", "prepare.json of the data: its training split's in-sample naive "
                            "MAE scales MASE. Empty: the naive MAE within the evaluated inputs.")
    season: int = _flag(1, "Season length of the seasonal naive baseline and the MASE scale.",
                        type=_int_at_least(1))
    output: str = _flag("", "JSON file to write the evaluation to (local or gs://).")
    verbosity: str = _flag("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def _json_number(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def evaluate(config: EvaluateConfig) -> Dict[str, Any]:
    """Forecast every row of `data_paths` with the model and score it; returns the JSON's content."""
    if not config.data_paths or not config.output:
        raise ConfigError("give --data_paths (prepared rows) and --output (the JSON to write)")
    forecaster = load_forecaster(config.model_dir)
    if config.season > forecaster.n_inputs:
        raise ConfigError(f"--season {config.season} is longer than the model's n_inputs "
                          f"{forecaster.n_inputs}")
    data = read_rows(config.data_paths, n_inputs=forecaster.n_inputs,
                     n_outputs=forecaster.n_outputs, flag="--data_paths",
                     model_path=forecaster.path, allow_inputs_only=False)
    mase_scale = resolve_statistics(scaling="none", stats_file=config.stats_file, scale_mean=0.0,
                                    scale_std=0.0, season=config.season)["mase_scale"]
    forecast = forecaster.predict(data["inputs"])
    metrics = compute_metrics(actual=data["actual"], forecast=forecast, inputs=data["inputs"],
                              season=config.season, mase_scale=mase_scale)
    result = {
        "model": forecaster.path, "data_paths": config.data_paths, "files": data["files"],
        "windows": int(len(forecast)), "points": int(forecast.size),
        "n_inputs": forecaster.n_inputs, "n_outputs": forecaster.n_outputs,
        "season": config.season,
        "mase_scale": mase_scale,
        "mase_scale_source": (f"in-sample seasonal naive MAE of the training split ({config.stats_file})"
                              if mase_scale is not None else
                              "seasonal naive MAE within the evaluated windows' inputs"),
        "metrics": {name: _json_number(value) for name, value in metrics.items()},
    }
    with tf.io.gfile.GFile(config.output, "w") as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    return result


def summarize(result: Dict[str, Any], *, output: str) -> str:
    """A table: the model and each baseline, one column per metric."""
    def cell(value: Optional[float]) -> str:
        return f"{value:>10.4f}" if value is not None else f"{'n/a':>10}"

    lines = [f"{result['windows']} windows x {result['n_outputs']} steps from {result['data_paths']}",
             f"{'':16}" + "".join(f"{name:>10}" for name in METRICS)]
    for prefix, label in [("", "model")] + [(f"{b}_", b) for b in BASELINES]:
        lines.append(f"{label:16}" + "".join(cell(result["metrics"][prefix + m]) for m in METRICS))
    lines.append(f"written to {output}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_flag_parser(EvaluateConfig, prog="python -m trainer.evaluate",
                               description="Evaluate an exported model on prepared rows against the "
                               "naive and seasonal naive forecasts; write JSON.")
    return run_cli(lambda config: summarize(evaluate(config), output=config.output), argv,
                   parser=parser, config_class=EvaluateConfig)


if __name__ == "__main__":
    sys.exit(main())
