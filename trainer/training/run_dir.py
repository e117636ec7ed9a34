"""The run directory: created, checked for writability, overwritten only when asked, holding
the resolved config.json of the run that owns its checkpoints (saved, and compared on resume
so that a run can never silently continue with another architecture).

Layout (see docs/outputs.md):

    OUTPUT_DIR/
      config.json        the resolved flags of the latest run
      checkpoint, model.ckpt-*   checkpoints (resumed automatically)
      eval/              evaluation summaries (TensorBoard)
      export/latest/<timestamp>/  SavedModel of every evaluation (the newest few kept)
      export/best/<timestamp>/    SavedModel of each evaluation that lowered --monitored_metric
      metrics.json       figures of the best evaluation so far (the run's answer)
      evaluations.json   every evaluation's figures, oldest first (early stopping reads it)
      data/              the synthetic data set, when no data flags were given
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Dict, List, Optional, Sequence

from trainer.data.covariates import Covariate
from trainer.training.config import ARCHITECTURE_KEYS, TrainerConfig
from trainer.util.environment import JOB_ID_VARIABLE
from trainer.util.errors import ConfigError, OutputDirError
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

CONFIG_FILENAME = "config.json"
# Not a flag: the cloud job ($CLOUD_ML_JOB_ID) that wrote config.json, saved beside the flags.
JOB_ID_KEY = "cloud_ml_job_id"
# Not a flag either: where the run writes (`trainer.util.environment.OutputDirs`), as resolved.
DIRECTORIES_KEY = "directories"
# Nor this: the covariates the network reads (from --data_dir's prepare.json), by what shapes its
# variables: name, kind and number of categories (`covariate_shapes`). Checked on resume.
COVARIATES_KEY = "covariates"


def config_path(directory: str) -> str:
    return directory.rstrip("/") + "/" + CONFIG_FILENAME


def covariate_shapes(covariates: Sequence[Covariate]) -> List[Dict[str, Any]]:
    """What of the covariates shapes the network's variables: name, kind, categories (0: numeric).

    >>> covariate_shapes([Covariate("promo", "future", vocabulary=("no", "yes"))])
    [{'name': 'promo', 'kind': 'future', 'categories': 2}]
    """
    return [{"name": c.name, "kind": c.kind, "categories": len(c.vocabulary)} for c in covariates]


def save_config(config: TrainerConfig, directory: str, *, job_id: Optional[str] = None,
                directories: Optional[Dict[str, str]] = None,
                covariates: Optional[List[Dict[str, Any]]] = None) -> str:
    """Write the resolved config as JSON into `directory`; returns the file's path.

    `job_id`, when given, is saved under JOB_ID_KEY, `directories` (where the run writes)
    under DIRECTORIES_KEY and `covariates` (`covariate_shapes`) under COVARIATES_KEY. Written
    through a rename: workers starting beside the chief read it at the same moment.
    """
    path = config_path(directory)
    saved = config.to_dict()
    if job_id:
        saved[JOB_ID_KEY] = job_id
    if directories:
        saved[DIRECTORIES_KEY] = directories
    if covariates is not None:
        saved[COVARIATES_KEY] = covariates
    write_text_atomically(path, json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return path


def load_config_dict(directory: str) -> Optional[Dict[str, Any]]:
    """The saved config of a previous run in `directory`, or None when there is none."""
    path = config_path(directory)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); fix or remove it, or rerun "
                          "with --overwrite") from error


# Keys that older config.json files may lack, with the default they had then.
DEFAULTS_OF_OLDER_RUNS = {"scaling": "none", "loss": "mse", "quantiles": "0.1,0.5,0.9"}


def saved_monitored_metric(saved: Dict[str, Any]) -> str:
    """The metric by which the run of `saved` compared its evaluations: a config.json from
    before --monitored_metric compared them by --hypertune_metric (rmse by default)."""
    return saved.get("monitored_metric", saved.get("hypertune_metric", "rmse"))


def check_resume_compatible(config: TrainerConfig, saved: Dict[str, Any], *, where: str,
                            covariates: Optional[List[Dict[str, Any]]] = None) -> None:
    """Raise ConfigError naming every architecture key that differs from the saved run, and
    the covariates (`covariate_shapes`) when both the run and `saved` name them (a config.json
    from before they were saved is not compared)."""
    # A key missing from an older config.json had its default then: today's, except where the
    # default changed since (`--scaling` came in with "none" as its default).
    defaults = {field.name: field.default for field in dataclasses.fields(TrainerConfig)}
    defaults.update(DEFAULTS_OF_OLDER_RUNS)
    differences = [
        f"{key}: saved {saved.get(key, defaults[key])!r}, now {getattr(config, key)!r}"
        for key in ARCHITECTURE_KEYS
        if saved.get(key, defaults[key]) != getattr(config, key)
        and not (key == "quantiles" and config.loss != "quantile")  # only the quantile head's
    ]
    if covariates is not None and COVARIATES_KEY in saved and saved[COVARIATES_KEY] != covariates:
        differences.append(f"covariates of the data: saved {describe_covariates(saved[COVARIATES_KEY])}, "
                           f"now {describe_covariates(covariates)}")
    if differences:
        raise ConfigError(
            f"cannot resume the run in {where}: its checkpoints were written with other flags ("
            + "; ".join(differences)
            + "). Use another --output_dir, restore those flags, or pass --overwrite to "
            "delete the old run.")


def describe_covariates(shapes: Sequence[Dict[str, Any]]) -> str:
    """`covariate_shapes` in words: 'none', or 'temp (past), promo (future, 2 categories)'."""
    return ", ".join(f"{c['name']} ({c['kind']}" + (f", {c['categories']} categories)"
                                                    if c["categories"] else ")")
                     for c in shapes) or "none"


def prepare_output_dir(config: TrainerConfig, *, output_dir: str, is_chief: bool,
                       job_id: Optional[str] = None,
                       directories: Optional[Dict[str, str]] = None,
                       covariates: Optional[List[Dict[str, Any]]] = None) -> None:
    """Make `output_dir` ready for this run.

    Only the chief deletes (with --overwrite) and writes config.json (with `job_id`,
    `directories`, where the run writes, and `covariates`, those of the data); every process
    refuses to resume a run whose saved config.json differs from the flags in a key of
    ARCHITECTURE_KEYS or in its covariates (the checkpoint could not be read), and config.json
    is written only after that check. A config.json without any checkpoint beside it (a run
    that failed before its first save) is not compared: the chief replaces it. Another
    --monitored_metric than the saved one is allowed (no variable depends on it); the chief
    says what it changes. With --overwrite:

    - a chief restarted within its cloud job (config.json names the same `job_id`, from
      $CLOUD_ML_JOB_ID) resumes instead of deleting the checkpoints its job has written;
    - the other processes do not compare with the saved config, which the chief replaces.
    """
    if not config.overwrite:
        saved = load_config_dict(output_dir)
        # Without a checkpoint there is nothing to resume: a first run that failed before its
        # first save (data checks, a too-long --n_inputs) must not block the corrected command.
        if saved is not None and not has_checkpoints(output_dir):
            logger.info("%s holds the config.json of a run that saved no checkpoint: nothing to "
                        "resume, so this run replaces it", output_dir)
            saved = None
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
        check_resume_compatible(config, saved, where=output_dir, covariates=covariates)
        before = saved_monitored_metric(saved)
        # Allowed: it changes no variable, only which of the evaluations (all kept, with every
        # metric, in evaluations.json) is the best.
        if is_chief and before != config.monitored_metric:
            logger.warning(
                "--monitored_metric %s: the evaluations so far in %s were compared by %s. From "
                "the next evaluation on, metrics.json and early stopping rank all of them by %s; "
                "export/best keeps the exports chosen by %s until one improves on the best by %s",
                config.monitored_metric, output_dir, before, config.monitored_metric, before,
                config.monitored_metric)
    if is_chief:
        try:
            path = save_config(config, output_dir, job_id=job_id, directories=directories,
                               covariates=covariates)
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


def has_checkpoints(output_dir: str) -> bool:
    """True when `output_dir` holds a checkpoint (its index file, or the Estimator's list of
    checkpoints): what a run there would resume from."""
    prefix = output_dir.rstrip("/") + "/"
    return (tf.io.gfile.exists(prefix + "checkpoint")
            or bool(tf.io.gfile.glob(prefix + "model.ckpt-*.index")))


def checkpoint_global_step(checkpoint_path: str) -> Optional[int]:
    """The global step stored in a checkpoint (None when it holds none)."""
    try:
        return int(tf.train.load_variable(checkpoint_path, "global_step"))
    except (tf.errors.NotFoundError, ValueError):
        return None


def latest_global_step(output_dir: str) -> Optional[int]:
    """Global step of the newest checkpoint in `output_dir`, or None when there is none."""
    checkpoint = tf.train.latest_checkpoint(output_dir)
    return None if checkpoint is None else checkpoint_global_step(checkpoint)
