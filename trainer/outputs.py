"""The output directory: created, checked for writability, overwritten only when asked, and
holding the resolved config.json of the run that owns its checkpoints.

Layout (see README "Output directory"):

    OUTPUT_DIR/
      config.json        the resolved flags of the latest run
      checkpoint, model.ckpt-*   checkpoints (resumed automatically)
      eval/              evaluation summaries (TensorBoard)
      export/latest/<timestamp>/  SavedModel of every evaluation (the newest few kept)
      export/best/<timestamp>/    SavedModel with the lowest evaluation RMSE so far
      metrics.json       figures of the last evaluation
      data/              the synthetic data set, when no data flags were given
"""

import logging
from typing import Any, Dict, Optional

import tensorflow as tf

from trainer.config import (
    JOB_ID_KEY,
    TrainerConfig,
    check_resume_compatible,
    load_config_dict,
    save_config,
)
from trainer.environment import JOB_ID_VARIABLE
from trainer.errors import ConfigError, OutputDirError

logger = logging.getLogger(__name__)


def prepare_output_dir(config: TrainerConfig, *, output_dir: str, is_chief: bool,
                       job_id: Optional[str] = None) -> None:
    """Make `output_dir` ready for this run.

    Only the chief deletes (with --overwrite) and writes config.json; every process refuses to
    resume a run whose saved architecture differs from the flags. With --overwrite:

    - a chief restarted within its cloud job (config.json names the same `job_id`, from
      $CLOUD_ML_JOB_ID) resumes instead of deleting the checkpoints its job has written;
    - the other processes do not compare with the saved config, which the chief replaces.
    """
    if not config.overwrite:
        saved = load_config_dict(output_dir)
    elif is_chief:
        saved = _written_by_this_job(output_dir, job_id)
        # An empty directory may be one that a worker starting first has just created.
        if saved is None and tf.io.gfile.exists(output_dir) and tf.io.gfile.listdir(output_dir):
            logger.warning("--overwrite: deleting everything in %s", output_dir)
            tf.io.gfile.rmtree(output_dir)
    else:
        saved = None
    try:
        tf.io.gfile.makedirs(output_dir)
    except tf.errors.OpError as error:
        raise OutputDirError(f"cannot create output directory {output_dir!r}: {error.message}. "
                             "Pass a writable --output_dir") from error
    if saved is not None:
        check_resume_compatible(config, saved, where=output_dir)
    if is_chief:
        try:
            path = save_config(config, output_dir, job_id=job_id)
        except tf.errors.OpError as error:
            raise OutputDirError(f"cannot write to output directory {output_dir!r}: "
                                 f"{error.message}. Pass a writable --output_dir") from error
        logger.info("configuration saved to %s", path)


def _written_by_this_job(output_dir: str, job_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """The saved config when this same cloud job wrote it (a restarted chief), else None."""
    if not job_id:
        return None
    try:
        saved = load_config_dict(output_dir)
    except ConfigError as error:
        logger.warning("%s; --overwrite replaces it", error)
        return None
    if saved is None or saved.get(JOB_ID_KEY) != job_id:
        return None
    logger.warning("--overwrite: %s was written by this same job (%s=%s), so this is a restarted "
                   "chief: resuming from its checkpoints instead of deleting them", output_dir,
                   JOB_ID_VARIABLE, job_id)
    return saved


def latest_global_step(output_dir: str) -> Optional[int]:
    """Global step of the newest checkpoint in `output_dir`, or None when there is none."""
    checkpoint = tf.train.latest_checkpoint(output_dir)
    if checkpoint is None:
        return None
    return int(tf.train.load_variable(checkpoint, "global_step"))
