"""Training goes on when an evaluator falls behind the checkpoints the chief keeps.

A separate evaluator evaluates, then exports, the newest checkpoint while the chief trains on.
When the chief saves faster than that, `--keep_checkpoint_max` can delete the checkpoint
first, and the Estimator's evaluator would die of it. Here:

- `run_train_and_evaluate` redoes an evaluation whose checkpoint is gone on the newest one;
- `SkipDeletedCheckpointExporter` skips (with a warning) an export whose checkpoint is gone;
  the evaluation still counts. An export cut short, by that or by a SIGTERM to the
  evaluator, leaves no half-written `temp-*` folder (`half_written_exports_removed`).

The final checkpoint is never deleted, so the last evaluation and export always happen.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Dict, Optional

from trainer.model.serving import half_written_exports_removed
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)


NOT_EXPORTED = "not exported: its checkpoint was already deleted"


def checkpoint_exists(checkpoint_path: str) -> bool:
    return tf.io.gfile.exists(checkpoint_path + ".index")


def deleted_checkpoint_in(error: Exception) -> Optional[str]:
    """The checkpoint an error names, when that checkpoint no longer exists; else None.

    >>> deleted_checkpoint_in(ValueError("not a valid checkpoint: /nowhere/model.ckpt-7"))
    '/nowhere/model.ckpt-7'
    """
    match = re.search(r"(\S*model\.ckpt-\d+)", str(error))
    if match is None or checkpoint_exists(match.group(1)):
        return None
    return match.group(1)


class SkipDeletedCheckpointExporter(tf.estimator.Exporter):
    """Wraps an exporter: an export whose checkpoint is gone by now is skipped with a warning.

    A separate evaluator exports the checkpoint it has just evaluated; when the chief saves
    faster than that, keep_checkpoint_max may delete it first. That evaluation still counts
    (metrics.json, hypertune); the next one exports, and the last checkpoint is never deleted.
    """

    def __init__(self, exporter: tf.estimator.Exporter):
        self._exporter = exporter

    @property
    def name(self) -> str:
        return self._exporter.name

    def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
               eval_result: Dict[str, Any], is_the_final_export: bool) -> Optional[Any]:
        if checkpoint_exists(checkpoint_path):
            try:
                # The Estimator writes an export to temp-TIMESTAMP first; one cut short (by
                # the checkpoint's deletion, or a SIGTERM to the evaluator) is removed.
                with half_written_exports_removed(export_path):
                    return self._exporter.export(estimator, export_path, checkpoint_path,
                                                 eval_result, is_the_final_export)
            except (ValueError, tf.errors.NotFoundError):  # gone during the export
                if checkpoint_exists(checkpoint_path):
                    raise  # another failure: not ours to hide
        logger.warning("%s: %s was deleted before it could be exported; the next evaluation "
                       "exports (raise --keep_checkpoint_max, or save checkpoints less often, to keep "
                       "every evaluated checkpoint)", self.name, checkpoint_path)
        return None


def run_train_and_evaluate(estimator: tf.estimator.Estimator, train_spec: tf.estimator.TrainSpec,
                           eval_spec: tf.estimator.EvalSpec, *, task_type: str,
                           run: Callable[..., Any] = tf.estimator.train_and_evaluate) -> None:
    """`tf.estimator.train_and_evaluate`, with an evaluator that outlives a deleted checkpoint.

    A separate evaluator evaluates the newest checkpoint while the chief trains on; when the
    chief saves faster than the evaluator evaluates, keep_checkpoint_max can delete that
    checkpoint before or while it is read, and the Estimator's evaluator loop dies with it.
    Here the evaluator says so and goes on with the checkpoint that is newest now. Any other
    error, and any error in another task, is raised.
    """
    while True:
        try:
            run(estimator, train_spec, eval_spec)
            return
        except (ValueError, tf.errors.NotFoundError) as error:
            checkpoint = deleted_checkpoint_in(error) if task_type == "evaluator" else None
            if checkpoint is None:
                raise
            logger.warning("%s was deleted before it could be evaluated; evaluating the newest "
                           "checkpoint instead (raise --keep_checkpoint_max or "
                           "save checkpoints less often, to evaluate more of them)", checkpoint)
            eval_spec = eval_spec._replace(start_delay_secs=0)
