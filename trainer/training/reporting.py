"""What an evaluation reports: metrics.json, the tuning service (cloudml-hypertune), the log.

`ReportingExporter` wraps the latest-model exporter: the Estimator calls exporters after every
evaluation, in the process that evaluates (the evaluator, or the chief when there is none), so
it is the one place where each evaluation's figures leave the process, exactly once.
"""

import json
import logging
from typing import Any, Dict, Optional

import hypertune
import tensorflow as tf

from trainer.training.recovery import NOT_EXPORTED
from trainer.util.files import write_text_atomically

logger = logging.getLogger(__name__)

METRICS_FILENAME = "metrics.json"

_hypertune: Optional[hypertune.HyperTune] = None


def report_to_hypertune(*, tag: str, value: float, global_step: int) -> None:
    """Report one metric value to the tuning service.

    One HyperTune object per process: it rewrites its metric file from its own queue, so a new
    object per report would keep only the last value.
    """
    global _hypertune
    if _hypertune is None:
        _hypertune = hypertune.HyperTune()
    _hypertune.report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag=tag, metric_value=value, global_step=global_step)


def write_metrics_json(directory: str, metrics: Dict[str, Any]) -> str:
    """Write `metrics` to DIRECTORY/metrics.json (via a temporary file and a rename)."""
    path = directory.rstrip("/") + "/" + METRICS_FILENAME
    write_text_atomically(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return path


def read_metrics_json(directory: str) -> Optional[Dict[str, Any]]:
    """The figures in DIRECTORY/metrics.json, or None when no evaluation has written it."""
    path = directory.rstrip("/") + "/" + METRICS_FILENAME
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())


def evaluation_summary(eval_result: Dict[str, Any], *, saved_model_path: Optional[str]) -> Dict[str, Any]:
    """The figures of one evaluation, as plain JSON-ready values."""
    # Every metric of the evaluation (`trainer.model.metrics.metric_names`) and the loss.
    summary: Dict[str, Any] = {key: float(value) for key, value in eval_result.items()
                               if key != "global_step"}
    summary["global_step"] = int(eval_result["global_step"])
    summary["saved_model_path"] = saved_model_path
    return summary


def _as_text(path: Any) -> Optional[str]:
    if path is None:
        return None
    return path.decode("utf-8") if isinstance(path, bytes) else str(path)


class ReportingExporter(tf.estimator.Exporter):
    """Exports the latest model, then writes metrics.json and reports `metric` to hypertune."""

    def __init__(self, exporter: tf.estimator.Exporter, *, output_dir: str, metric: str = "rmse",
                 metric_tag: str = ""):
        self._exporter = exporter
        self._output_dir = output_dir
        self._metric = metric
        self._metric_tag = metric_tag or metric

    @property
    def name(self) -> str:
        return self._exporter.name

    def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
               eval_result: Dict[str, Any], is_the_final_export: bool) -> Optional[str]:
        saved_model_path = _as_text(self._exporter.export(
            estimator, export_path, checkpoint_path, eval_result, is_the_final_export))
        summary = evaluation_summary(eval_result, saved_model_path=saved_model_path)
        write_metrics_json(self._output_dir, summary)
        # The tag is the name the tuning job expects (--hypertune_metric_tag).
        report_to_hypertune(tag=self._metric_tag, value=summary[self._metric],
                            global_step=summary["global_step"])
        shown = ["rmse", "mae", "naive_rmse"] + [
            key for key in ("wql", "naive_wql", "coverage_80", "msis") if key in summary]
        logger.info("evaluation at step %d: %s  -> %s", summary["global_step"],
                    "  ".join(f"{key} {summary.get(key, float('nan')):.4f}" for key in shown),
                    saved_model_path or NOT_EXPORTED)
        return saved_model_path
