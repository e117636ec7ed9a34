"""What an evaluation reports: the history, metrics.json, the tuning service, the log.

`ReportingExporter` is the one exporter of a run: the Estimator calls it after every
evaluation, in the process that evaluates (the evaluator, or the chief when there is none), so
it is the one place where each evaluation's figures leave the process, exactly once. It
exports the latest model, and the best one when the evaluation improved on every earlier one,
then:

- appends the evaluation to `evaluations.json` in the output directory (the history, kept
  across resumed runs; `--overwrite` deletes it with the rest), which early stopping reads;
- writes `metrics.json`: the figures of the **best** evaluation so far by the monitored metric
  (`--monitored_metric`), with its global step and its export (export/best/<timestamp>), plus
  `last_global_step`, `evaluations` (how many there were), `monitored_metric` and
  `hypertune_metric`. That is the run's answer;
- reports the hypertune metric (`--hypertune_metric`) of that best evaluation to the tuning
  service (cloudml-hypertune), so that a trial's final measurement describes the model it
  would deploy;
- with a TensorBoard directory (Vertex AI's $AIP_TENSORBOARD_LOG_DIR), writes the evaluation's
  figures to its eval/ run (`trainer.training.tensorboard`);
- with a model directory (Vertex AI's $AIP_MODEL_DIR), makes it hold the best export itself
  (`trainer.model.serving.copy_saved_model`): copied when the best improves, and again
  whenever it does not hold it (a copy cut short by a preemption, a resumed run).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Dict, List, Optional

import hypertune

from trainer.model.serving import SAVED_MODEL_FILE, copy_export, copy_saved_model, holds_saved_model
from trainer.training.recovery import NOT_EXPORTED
from trainer.training.tensorboard import EVAL_RUN, ScalarWriter
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

METRICS_FILENAME = "metrics.json"
EVALUATIONS_FILENAME = "evaluations.json"

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


def read_evaluations(directory: str) -> List[Dict[str, Any]]:
    """Every evaluation of the run in DIRECTORY so far, oldest first (none: an empty list)."""
    path = directory.rstrip("/") + "/" + EVALUATIONS_FILENAME
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())["evaluations"]


def write_evaluations(directory: str, evaluations: List[Dict[str, Any]]) -> None:
    path = directory.rstrip("/") + "/" + EVALUATIONS_FILENAME
    write_text_atomically(path, json.dumps({"evaluations": evaluations}, indent=1) + "\n")


def _value(evaluation: Dict[str, Any], metric: str) -> float:
    value = evaluation.get(metric)
    return float(value) if value is not None and math.isfinite(value) else math.inf


def best_evaluation(evaluations: List[Dict[str, Any]], metric: str) -> Optional[Dict[str, Any]]:
    """The evaluation with the lowest `metric` (the earliest of equals) among those that were
    exported (an evaluation whose checkpoint was deleted before its export cannot be the
    answer: there is no model to load), or among all when none was; None without any.

    >>> best_evaluation([{"rmse": 2.0, "saved_model_path": "a"}, {"rmse": 1.0, "saved_model_path": None},
    ...                  {"rmse": 1.5, "saved_model_path": "c"}], "rmse")
    {'rmse': 1.5, 'saved_model_path': 'c'}
    """
    if not evaluations:
        return None
    candidates = [e for e in evaluations if e.get("saved_model_path")] or evaluations
    return min(candidates, key=lambda evaluation: _value(evaluation, metric))


def evaluations_since_best(evaluations: List[Dict[str, Any]], metric: str) -> int:
    """How many evaluations came after the best one: each failed to improve on it.

    >>> evaluations_since_best([{"rmse": 2.0}, {"rmse": 1.0}, {"rmse": 1.5}, {"rmse": 1.0}], "rmse")
    2
    """
    best = best_evaluation(evaluations, metric)
    return 0 if best is None else len(evaluations) - 1 - evaluations.index(best)


def early_stopping_reason(evaluations: List[Dict[str, Any]], *, metric: str, patience: int
                          ) -> Optional[str]:
    """Why the run stops early, the one rule of `--early_stopping_evals` (the exporter of a
    separate evaluator and `trainer.training.stopping.EarlyStoppingHook` both follow it): once
    `patience` evaluations in a row after the best did not lower `metric`; None while the run
    goes on, and always with `patience` 0 (never).

    >>> early_stopping_reason([{"mase": 0.8, "global_step": 10}, {"mase": 0.9, "global_step": 20},
    ...                        {"mase": 0.85, "global_step": 30}], metric="mase", patience=2)
    '2 evaluations without a lower mase than 0.8000 at step 10'
    >>> early_stopping_reason([{"mase": 0.8, "global_step": 10}], metric="mase", patience=2) is None
    True
    """
    waited = evaluations_since_best(evaluations, metric)
    if not patience or waited < patience:
        return None
    best = best_evaluation(evaluations, metric)
    return (f"{waited} evaluations without a lower {metric} than {best[metric]:.4f} at step "
            f"{best['global_step']}")


class EarlyStopped(Exception):
    """Raised in a separate evaluator once `--early_stopping_evals` evaluations in a row did not
    improve: it ends the evaluator's loop, which would otherwise wait for the last step."""


def publish_best_model(best: Dict[str, Any], model_dir: str) -> bool:
    """Make `model_dir` hold the export of the evaluation `best`, unless it does already;
    returns whether it was copied."""
    export = best.get("saved_model_path")
    if not export or not tf.io.gfile.exists(f"{export}/{SAVED_MODEL_FILE}"):
        logger.warning("the best evaluation (step %s) has no export to copy to %s", best.get("global_step"),
                       model_dir)
        return False
    if holds_saved_model(model_dir, export):
        return False
    copy_saved_model(export, model_dir)
    logger.info("model dir %s now holds the best model (step %d, %s)", model_dir, best["global_step"],
                export)
    return True


class ReportingExporter(tf.estimator.Exporter):
    """Exports the latest model (and the best by `monitored_metric`), keeps the history, writes
    metrics.json (the best evaluation), reports that evaluation's `hypertune_metric` to
    hypertune (under `metric_tag`, by default the metric's name), and fills the TensorBoard and
    model directories of the service when it has them."""

    def __init__(self, exporter: tf.estimator.Exporter, *, output_dir: str, monitored_metric: str,
                 hypertune_metric: str, metric_tag: str = "",
                 best: Optional[tf.estimator.Exporter] = None, early_stopping_evals: int = 0,
                 stop_after_patience: bool = False, tensorboard_dir: str = "", model_dir: str = ""):
        self._exporter = exporter
        self._best = best
        self._output_dir = output_dir
        self._monitored_metric = monitored_metric
        self._hypertune_metric = hypertune_metric
        self._metric_tag = metric_tag or hypertune_metric
        self._early_stopping_evals = early_stopping_evals
        self._stop_after_patience = stop_after_patience
        self._tensorboard_dir = tensorboard_dir
        self._model_dir = model_dir
        self._events: Optional[ScalarWriter] = None

    @property
    def name(self) -> str:
        return self._exporter.name

    def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
               eval_result: Dict[str, Any], is_the_final_export: bool) -> Optional[str]:
        export_args = (estimator, export_path, checkpoint_path, eval_result, is_the_final_export)
        saved_model_path = _as_text(self._exporter.export(*export_args))
        evaluations = read_evaluations(self._output_dir)
        summary = evaluation_summary(eval_result, saved_model_path=saved_model_path)
        if self._best is not None and self._improves(evaluations, summary):
            summary["saved_model_path"] = self._export_best(*export_args, latest=saved_model_path)
        evaluations = self._record(evaluations, summary)
        best = best_evaluation(evaluations, self._monitored_metric)
        if self._model_dir:
            publish_best_model(best, self._model_dir)
        self._write_metrics(best, summary=summary, evaluations=len(evaluations))
        if self._tensorboard_dir:
            self._write_events(summary)
        self._report_to_hypertune(best, summary=summary)
        self._log(best, summary=summary)
        if self._stop_after_patience:
            self._stop_when_patience_ran_out(evaluations)
        return saved_model_path

    def _improves(self, evaluations: List[Dict[str, Any]], summary: Dict[str, Any]) -> bool:
        """Whether the evaluation `summary` has a lower monitored metric than every earlier one."""
        metric = self._monitored_metric
        # Compared with the exported evaluations only: one whose checkpoint went before its
        # export holds no model, and a better one after it must still reach export/best, or
        # the answer would be a latest export, which the latest exports' clean-up deletes.
        previous = best_evaluation([e for e in evaluations if e.get("saved_model_path")], metric)
        return previous is None or _value(summary, metric) < _value(previous, metric)

    def _export_best(self, estimator: tf.estimator.Estimator, export_path: str,
                     checkpoint_path: str, eval_result: Dict[str, Any], is_the_final_export: bool,
                     *, latest: Optional[str]) -> Optional[str]:
        """Export the evaluated model to export/best, or copy its export `latest` there; returns
        the best export's path (`latest` when there is neither)."""
        best_dir = export_path.rstrip("/").rsplit("/", 1)[0] + "/" + self._best.name
        best_path = _as_text(self._best.export(
            estimator, best_dir, checkpoint_path, eval_result, is_the_final_export))
        if not best_path and latest:
            # The checkpoint went between the two exports (the chief deleted it): the latest
            # export is this model, and a copy in best_dir outlives the latest exports' clean-up.
            best_path = copy_export(latest, best_dir)
            logger.info("%s: copied %s to %s", self._best.name, latest, best_path)
        return best_path or latest

    def _record(self, evaluations: List[Dict[str, Any]], summary: Dict[str, Any]
                ) -> List[Dict[str, Any]]:
        """The history with the evaluation `summary` at its end, written to evaluations.json."""
        evaluations = [*evaluations, summary]
        write_evaluations(self._output_dir, evaluations)
        return evaluations

    def _write_metrics(self, best: Dict[str, Any], *, summary: Dict[str, Any], evaluations: int
                       ) -> None:
        """metrics.json: the best evaluation, the last step, how many `evaluations` there were,
        the metrics, and the model directory that holds the best model."""
        answer = dict(best, last_global_step=summary["global_step"], evaluations=evaluations,
                      monitored_metric=self._monitored_metric,
                      hypertune_metric=self._hypertune_metric)
        if self._model_dir:
            answer["model_dir"] = self._model_dir
        write_metrics_json(self._output_dir, answer)

    def _report_to_hypertune(self, best: Dict[str, Any], *, summary: Dict[str, Any]) -> None:
        # The tag is the name the tuning job expects (--hypertune_metric_tag); the value is the
        # best evaluation's, by the monitored metric: the model the trial would deploy.
        report_to_hypertune(tag=self._metric_tag, value=best[self._hypertune_metric],
                            global_step=summary["global_step"])

    def _log(self, best: Dict[str, Any], *, summary: Dict[str, Any]) -> None:
        """The evaluation's line: the usual figures, the monitored metric's among them, and a
        quantile head's; its export; the best so far when this is not it."""
        metric = self._monitored_metric
        shown = list(dict.fromkeys(["rmse", "mae", "naive_rmse", metric] + [
            key for key in ("wql", "naive_wql", "coverage_80", "msis") if key in summary]))
        logger.info("evaluation at step %d: %s  -> %s%s", summary["global_step"],
                    "  ".join(f"{key} {summary.get(key, float('nan')):.4f}" for key in shown),
                    summary["saved_model_path"] or NOT_EXPORTED,
                    "" if best is summary else f"  (best {metric} {best[metric]:.4f} "
                    f"at step {best['global_step']})")

    def _stop_when_patience_ran_out(self, evaluations: List[Dict[str, Any]]) -> None:
        """Raise `EarlyStopped` once --early_stopping_evals evaluations did not improve."""
        reason = early_stopping_reason(evaluations, metric=self._monitored_metric,
                                       patience=self._early_stopping_evals)
        if reason is not None:
            raise EarlyStopped(reason)

    def _write_events(self, summary: Dict[str, Any]) -> None:
        """The evaluation's figures (every number but the step) to TENSORBOARD_DIR/eval."""
        if self._events is None:
            self._events = ScalarWriter(f"{self._tensorboard_dir}/{EVAL_RUN}")
            logger.info("TensorBoard: the evaluations go to %s", self._events.log_dir)
        self._events.write(summary["global_step"], {
            key: value for key, value in summary.items()
            if isinstance(value, float) and key != "global_step"})
        self._events.flush()
