"""What a chief restores when it starts in a cluster with parameter servers.

The Estimator's chief restores its newest checkpoint every time it creates a session. In a
new job that is right, and after a parameter server restarted it is right too: the server
came back empty. After the chief itself restarted it is wrong: the parameter servers still
hold the variables, and the workers went on training them while the chief was down (on the
cloud, while a new VM starts: minutes). Restoring the checkpoint would throw all of that away.

`KeepNewerSaver` is the chief's saver (saving exactly as the Estimator's own does), whose
restore first asks the parameter servers. When every variable is initialized there and their
global step is at or past the checkpoint's, it keeps them; otherwise it restores the
checkpoint. It logs which it did and why. `with_chief_restore` gives the model function of a
cluster with parameter servers that saver; a single process keeps the Estimator's own.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from trainer.training.run_dir import checkpoint_global_step
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

KEPT = "keeping the parameter servers' variables"
RESTORED = "restoring the checkpoint"


class KeepNewerSaver(tf.compat.v1.train.Saver):
    """A Saver whose restore keeps the session's variables when they are newer than the file.

    "Newer": every global variable is initialized and the global step is at or past the
    checkpoint's. The check runs in the session given to `restore`, so in a cluster it asks
    the parameter servers, which hold the variables.
    """

    def __init__(self, **kwargs: Any):
        self._uninitialized: Optional[tf.Tensor] = None
        self._global_step: Optional[tf.Variable] = None
        super().__init__(**kwargs)  # builds at once unless defer_build

    def build(self) -> None:
        super().build()
        if self._uninitialized is None:  # the ops the check runs, while the graph can grow
            self._uninitialized = tf.compat.v1.report_uninitialized_variables(
                tf.compat.v1.global_variables(), name="chief_restore_uninitialized")
            if hasattr(self._uninitialized, "mark_used"):  # run only when there is a checkpoint
                self._uninitialized.mark_used()
            self._global_step = tf.compat.v1.train.get_global_step()

    def restore(self, sess: tf.compat.v1.Session, save_path: str) -> None:
        if not self.keeps_what_the_session_holds(sess, save_path):
            super().restore(sess, save_path)

    def keeps_what_the_session_holds(self, sess: tf.compat.v1.Session, save_path: str) -> bool:
        """Whether the variables in `sess` are initialized and at or past `save_path`'s step
        (then they are kept); logs the decision either way."""
        if self._uninitialized is None or self._global_step is None:
            return False  # a graph without a global step: restore as any Saver does
        saved = checkpoint_global_step(save_path)
        uninitialized = [name.decode() if isinstance(name, bytes) else str(name)
                         for name in sess.run(self._uninitialized)]
        if uninitialized:
            logger.info("%s at step %s into the parameter servers: %d of their variables are "
                        "not initialized (a new job, or a parameter server that restarted), "
                        "e.g. %s", RESTORED, saved, len(uninitialized), uninitialized[0])
            return False
        held = int(sess.run(self._global_step))
        if saved is not None and held < saved:
            logger.info("%s at step %d: the parameter servers hold step %d, behind it",
                        RESTORED, saved, held)
            return False
        logger.info("%s at step %d, not the checkpoint at step %s: they are at or past it "
                    "(the workers trained on while this chief was away)", KEPT, held, saved)
        return True


def with_chief_restore(model_fn: Callable[..., tf.estimator.EstimatorSpec], *,
                       keep_checkpoint_max: Optional[int],
                       keep_checkpoint_every_n_hours: float) -> Callable[..., tf.estimator.EstimatorSpec]:
    """`model_fn`, whose TRAIN graph saves and restores with a `KeepNewerSaver` (built as the
    Estimator builds its own saver: sharded, relative paths, the run config's retention)."""

    def model_fn_keeping_newer(features: Any, labels: Any, mode: str,
                               params: Any) -> tf.estimator.EstimatorSpec:
        spec = model_fn(features, labels, mode, params)
        savers = tf.compat.v1.GraphKeys.SAVERS
        if mode == tf.estimator.ModeKeys.TRAIN and not tf.compat.v1.get_collection(savers):
            tf.compat.v1.add_to_collection(savers, KeepNewerSaver(
                sharded=True, max_to_keep=keep_checkpoint_max,
                keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
                defer_build=True, save_relative_paths=True))
        return spec

    return model_fn_keeping_newer
