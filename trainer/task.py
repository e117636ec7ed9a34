"""Entrypoint: parse flags, set up logging, run `train_and_evaluate(config)`.

    python -m trainer.task                                   # synthetic data, ./output
    python -m trainer.task --train_data_paths 'gs://b/train-*.csv' \\
        --eval_data_paths 'gs://b/eval-*.csv' --output_dir gs://b/runs/1 --train_steps 20000
    python -m trainer.task --help                            # every flag

Exit status: 0 on success, 2 for a bad flag, 1 for bad input (data, TF_CONFIG, output
directory) with a one-line message naming it; any other failure keeps its traceback
(`trainer.util.cli`).
"""

import sys
from typing import Any, Mapping, Optional, Sequence

from trainer.model.metrics import metrics_table, verdict
from trainer.training.config import TrainerConfig, build_parser, make_config
from trainer.util.cli import run_command


def summarize(metrics: Optional[dict], *, run_flags: Optional[Mapping[str, Any]] = None) -> str:
    """The CLI's closing line(s): the run's answer (its best evaluation) against the baselines;
    when it loses, what to try of the flags the run (`run_flags`, its config) did not have."""
    # Here, as in `run`: the run wiring's hooks subclass TensorFlow's, which `--help` never loads.
    from trainer.training.calibrate import CALIBRATION_KEY, describe_coverage

    if not metrics:
        return "training finished; this process does not evaluate (see the evaluator's output)"
    skill = 1.0 - metrics["rmse"] / metrics["naive_rmse"] if metrics.get("naive_rmse") else 0.0
    intervals = ""
    if "wql" in metrics:  # a quantile head: its loss, and how often its widest interval held
        intervals = f"  wql {metrics['wql']:.4f} (naive {metrics.get('naive_wql', float('nan')):.4f})"
        coverages = sorted((float(key.split("_", 1)[1]), key) for key in metrics
                           if key.startswith("coverage_"))
        if coverages:
            nominal, key = coverages[-1]
            intervals += f"  {nominal:g}% interval holds {metrics[key]:.1f}%"
    last = metrics.get("last_global_step", metrics["global_step"])
    best = "" if last == metrics["global_step"] else (
        f" (the best of {metrics.get('evaluations', '?')} evaluations by "
        f"{metrics.get('monitored_metric', 'rmse')}: step {metrics['global_step']})")
    # Each series on its own scale, then averaged; the verdict below names the baselines'.
    scale_free = f"  mase {metrics['mase']:.4f}" if metrics.get("mase") is not None else ""
    lines = [f"done: step {last}{best}{scale_free}  rmse {metrics['rmse']:.4f}  "
             f"naive_rmse {metrics['naive_rmse']:.4f}  ({skill:+.0%} vs naive)  "
             f"mae {metrics['mae']:.4f}{intervals}"]
    calibration = metrics.get(CALIBRATION_KEY) or {}
    judged = metrics
    if calibration.get("coverage_after"):  # the evaluation's coverage was before calibration
        judged = {key: value for key, value in metrics.items() if not key.startswith("coverage_")}
    lines.append(verdict(judged, metric=metrics.get("monitored_metric", "mase"),
                         run_flags=run_flags))
    if calibration.get("coverage_after"):
        lines.append(f"intervals calibrated on {calibration['scored_windows']} valid windows"
                     f"{' (in-sample)' if calibration.get('in_sample') else ''}: "
                     f"{describe_coverage(calibration['coverage_before'], calibration['coverage_after'])}"
                     " (the offsets were fitted there: score held-out data with trainer.evaluate)")
    elif calibration.get("skipped"):
        lines.append(f"intervals not calibrated: {calibration['skipped']}")
    lines.append(f"SavedModel: {metrics['saved_model_path']}")
    if metrics.get("model_dir"):  # Vertex AI's $AIP_MODEL_DIR: the same model, ready for import
        lines.append(f"model for import (gcloud ai models upload --artifact-uri): {metrics['model_dir']}")
    # The figures as a table; every one of them, with more digits, is in metrics.json.
    lines.append(f"the evaluation at step {metrics['global_step']} (every figure in metrics.json):")
    levels = sorted(float(key[len("wql_"):]) for key in metrics if key.startswith("wql_"))
    lines += metrics_table(metrics, levels)
    return "\n".join(lines)


def run(config: TrainerConfig) -> str:
    """Train, evaluate and export as `config` says; the closing lines."""
    from trainer.training.experiment import train_and_evaluate  # TensorFlow: not for --help

    return summarize(train_and_evaluate(config), run_flags=config.to_dict())


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.task") -> int:
    return run_command(run, argv, parser=build_parser(prog), make_config=make_config)


if __name__ == "__main__":
    sys.exit(main())
