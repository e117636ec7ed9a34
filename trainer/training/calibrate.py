"""After training: calibrate the chosen model's intervals on the valid windows and export it again.

`calibrate_run` runs once training and its evaluations are done, in the process that writes
the evaluation outputs (`trainer.util.environment.TaskInfo.writes_evaluation_outputs`), when
`--calibrate_intervals` asks for it (`TrainerConfig.calibrates_intervals`: auto is on for the
quantile head). It

1. takes the run's answer: the best evaluation by `--monitored_metric`, whose export in
   export/best holds that checkpoint's variables (they outlive the checkpoint itself);
2. forecasts every window of the valid split with that SavedModel: the run's evaluation input
   (for series data, the backtest windows of prepare's `--valid_windows`), read once with its
   labels;
3. fits the split-conformal offsets per step and level (`trainer.model.calibration`), or reads
   them from `--calibration_file`;
4. exports the same variables again with the calibration in the `ModelSpec`: a newer version
   in export/best, which `trainer.evaluate`, `trainer.predict` and deployment take, copied to
   $AIP_MODEL_DIR too when the run has one (its head.json says it is calibrated);
5. writes calibration.json in the run directory (the offsets, what they came from, the
   coverage) and adds metrics.json's `calibration`: the windows, the levels and the coverage and
   width of every central interval on the valid windows before and after, each measured
   through its SavedModel; metrics.json's `saved_model_path` becomes the calibrated export.
   One log line gives the figures.

It calibrates nothing, and metrics.json says why (`"calibration": {"skipped": ...}`), with
fewer than `CALIBRATION_MIN_WINDOWS` valid windows (a warning says how to get more) or with
`--train_on_valid` and no `--calibration_file`: a model trained on the valid windows has
in-sample residuals there, too small, so its intervals would come out too narrow
(`trainer.refit` gives its refit the calibration.json of the run it refits instead: offsets
from that configuration's held-out residuals).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from trainer.data.schema import FEATURE_KEY
from trainer.model.calibration import (
    CALIBRATION_MIN_WINDOWS,
    Calibration,
    calibrated_head_description,
    fit_calibration,
    interval_coverage,
)
from trainer.model.export_assets import with_calibrated_head
from trainer.model.heads import DEFAULT_QUANTILES, PREDICTIONS_KEY, QUANTILES_KEY, get_head
from trainer.model.model_fn import model_fn
from trainer.model.serving import (
    BEST_EXPORTER,
    EXPORT_DIR,
    SAVED_MODEL_FILE,
    ExportedModel,
    half_written_exports_removed,
    load_exported_model,
)
from trainer.training.config import TrainerConfig
from trainer.training.reporting import (
    best_evaluation,
    publish_best_model,
    read_evaluations,
    read_metrics_json,
    write_metrics_json,
)
from trainer.util.errors import ConfigError
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

CALIBRATION_FILENAME = "calibration.json"
CALIBRATION_KEY = "calibration"  # in metrics.json


def read_calibration_file(path: str, *, levels: Tuple[float, ...], n_outputs: int) -> Calibration:
    """The calibration in the calibration.json at `path`, checked against the run's levels and
    steps (a ConfigError names the file and what differs)."""
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        calibration = Calibration.from_json(json.loads(text), source=path)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--calibration_file {path} is not JSON ({error})") from None
    except ValueError as error:
        raise ConfigError(f"--calibration_file {error}") from None
    if calibration.levels != levels or calibration.n_outputs != n_outputs:
        raise ConfigError(f"--calibration_file {path} calibrates the levels "
                          f"{list(calibration.levels)} over {calibration.n_outputs} steps, this run "
                          f"forecasts {list(levels)} over --n_outputs {n_outputs}: give the "
                          "calibration.json of a run of the same configuration")
    return calibration


def read_valid_windows(eval_input_fn: Callable[[], tf.data.Dataset], model: ExportedModel
                       ) -> Tuple[np.ndarray, Dict[str, np.ndarray], np.ndarray]:
    """Every window of the evaluation input, once: its inputs [windows, n_inputs], the
    covariates `model` takes (by input name) and the actual values [windows, n_outputs]."""
    features: Dict[str, list] = {name: [] for name in model.inputs}
    labels = []
    for batch_features, batch_labels in eval_input_fn():
        for name in features:
            features[name].append(batch_features[name].numpy())
        labels.append(batch_labels.numpy())
    arrays = {name: np.concatenate(parts) for name, parts in features.items()}
    inputs = arrays.pop(FEATURE_KEY)
    return inputs, arrays, np.concatenate(labels).astype(np.float64)


def export_calibrated(estimator: tf.estimator.Estimator, *, calibration: Calibration, export: str,
                      receiver_fn: Callable[[], Any], assets: Dict[str, str],
                      head_description: Dict[str, Any], output_dir: str) -> str:
    """Export the variables of `export` again, with `calibration` in the model's spec, into
    OUTPUT_DIR/export/best (a newer version), its head.json `head_description` (written beside
    the run's own, `trainer.model.export_assets.with_calibrated_head`); returns its path."""
    assets = with_calibrated_head(assets, directory=output_dir, head=head_description)
    calibrated = tf.estimator.Estimator(
        model_fn=model_fn, config=estimator.config,
        params=dataclasses.replace(estimator.params, calibration=calibration))
    best_dir = f"{output_dir}/{EXPORT_DIR}/{BEST_EXPORTER}"
    with half_written_exports_removed(best_dir):
        path = calibrated.export_saved_model(
            best_dir, receiver_fn, assets_extra=assets,
            # An Estimator's SavedModel keeps its variables as a checkpoint of the same names.
            checkpoint_path=f"{export}/variables/variables")
    return path.decode("utf-8") if isinstance(path, bytes) else str(path)


def skip_calibration(output_dir: str, reason: str) -> Dict[str, Any]:
    """Say in metrics.json why the run has no calibration; returns its entry."""
    entry = {"skipped": reason}
    metrics = read_metrics_json(output_dir)
    if metrics is not None:
        write_metrics_json(output_dir, {**metrics, CALIBRATION_KEY: entry})
    return entry


def describe_coverage(before: Optional[Dict[str, float]], after: Dict[str, float]) -> str:
    """The coverage of each central interval before and after calibration, in words (`before`
    None: a point head, which had no interval).

    >>> describe_coverage({"80": 72.44, "50": 46.0}, {"80": 80.06, "50": 50.2})
    '80% interval held 72.4% -> 80.1%, 50% interval held 46.0% -> 50.2%'
    >>> describe_coverage(None, {"80": 80.06})
    '80% interval (none before) held 80.1%'
    """
    parts = [f"{name}% interval held {before[name]:.1f}% -> {value:.1f}%" if before else
             f"{name}% interval (none before) held {value:.1f}%" for name, value in after.items()]
    return ", ".join(parts) or "no central interval among the levels"


def calibrate_run(config: TrainerConfig, *, output_dir: str, model_dir: str,
                  estimator: tf.estimator.Estimator, eval_input_fn: Callable[[], tf.data.Dataset],
                  receiver_fn: Callable[[], Any], assets: Dict[str, str]
                  ) -> Optional[Dict[str, Any]]:
    """Calibrate the intervals of the run's answer on the valid windows (see the module's
    docstring); returns metrics.json's `calibration` entry, None when not asked for.

    `estimator`, `receiver_fn` and `assets` are the run's (its exporters'), `model_dir` its
    $AIP_MODEL_DIR (empty: none).
    """
    if not config.calibrates_intervals:
        return None
    head = get_head(config.loss, config.quantile_levels)
    levels = config.interval_levels
    if not head.levels:
        given = config.quantiles != ",".join(f"{level:g}" for level in DEFAULT_QUANTILES)
        logger.info("--calibrate_intervals %s with --loss %s: intervals at the levels %s%s",
                    config.calibrate_intervals, config.loss, config.quantiles,
                    " of --quantiles" if given else " (the default; --quantiles sets others)")
    best = best_evaluation(read_evaluations(output_dir), config.monitored_metric)
    export = (best or {}).get("saved_model_path")
    if not export or not tf.io.gfile.exists(f"{export}/{SAVED_MODEL_FILE}"):
        reason = "the best evaluation has no export to calibrate"
        logger.warning("no calibration of the intervals: %s", reason)
        return skip_calibration(output_dir, reason)
    calibration = None
    if config.calibration_file:
        calibration = read_calibration_file(config.calibration_file, levels=levels,
                                            n_outputs=config.n_outputs)
    elif config.train_on_valid:
        reason = ("--train_on_valid: the model trained on the valid windows, whose residuals are "
                  "then in-sample and would make the intervals too narrow (trainer.refit "
                  "applies its run's calibration.json instead)")
        logger.info("no calibration of the intervals: %s", reason)
        return skip_calibration(output_dir, reason)

    uncalibrated = load_exported_model(export)
    inputs, covariates, actual = read_valid_windows(eval_input_fn, uncalibrated)
    windows = len(actual)
    if calibration is None and windows < CALIBRATION_MIN_WINDOWS:
        reason = (f"{windows} valid windows, fewer than the {CALIBRATION_MIN_WINDOWS} per step "
                  "that calibration needs")
        logger.warning("no calibration of the intervals: only %d valid windows per step to "
                       "calibrate on (it needs %d); give the valid split more of them: more "
                       "backtest windows (python -m trainer.prepare --valid_windows), or a longer "
                       "valid split (more rows in --eval_data_paths), or set "
                       "--calibrate_intervals off", windows, CALIBRATION_MIN_WINDOWS)
        return skip_calibration(output_dir, reason)
    before = uncalibrated.forecast(inputs, covariates)
    if calibration is None:
        calibration = fit_calibration(actual=actual, inputs=inputs, levels=levels,
                                      point=before[PREDICTIONS_KEY],
                                      quantiles=before.get(QUANTILES_KEY))
    calibrated_path = export_calibrated(
        estimator, calibration=calibration, export=export, receiver_fn=receiver_fn,
        assets=assets, head_description=calibrated_head_description(head, calibration),
        output_dir=output_dir)
    after = load_exported_model(calibrated_path).forecast(inputs, covariates)
    figures_before = (interval_coverage(actual, before[QUANTILES_KEY], levels)
                      if QUANTILES_KEY in before else None)
    figures_after = interval_coverage(actual, after[QUANTILES_KEY], levels)
    entry = {
        "windows": calibration.windows, "levels": list(levels),
        "coverage_before": figures_before["coverage"] if figures_before else None,
        "coverage_after": figures_after["coverage"],
        "width_before": figures_before["width"] if figures_before else None,
        "width_after": figures_after["width"],
        "scored_windows": windows,
        # A refit's valid windows were trained on: its figures there are in-sample.
        "in_sample": config.train_on_valid,
        "calibration_file": config.calibration_file or f"{output_dir}/{CALIBRATION_FILENAME}",
        "uncalibrated_saved_model_path": export,
    }
    record = {**calibration.to_json(),
              "computed_from": ({"calibration_file": config.calibration_file}
                                if config.calibration_file else
                                {"split": "valid", "windows": windows, "saved_model_path": export,
                                 "global_step": best["global_step"],
                                 "monitored_metric": config.monitored_metric}),
              "saved_model_path": calibrated_path,
              **{key: entry[key] for key in ("coverage_before", "coverage_after", "width_before",
                                             "width_after", "in_sample")}}
    write_text_atomically(f"{output_dir}/{CALIBRATION_FILENAME}",
                          json.dumps(record, indent=2, sort_keys=True) + "\n")
    metrics = read_metrics_json(output_dir) or {}
    metrics.update({CALIBRATION_KEY: entry, "saved_model_path": calibrated_path})
    if model_dir:
        publish_best_model({**best, "saved_model_path": calibrated_path}, model_dir)
    write_metrics_json(output_dir, metrics)
    logger.info("calibrated intervals (%s): on the %d valid windows%s, %s; %s (%s)",
                f"the offsets of {config.calibration_file}" if config.calibration_file
                else f"split conformal on {calibration.windows} valid windows per step",
                windows, " (in-sample: trained on)" if config.train_on_valid else "",
                describe_coverage(entry["coverage_before"], entry["coverage_after"]),
                calibrated_path,
                entry["calibration_file"])
    return entry
