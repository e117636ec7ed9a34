"""Estimator wiring: model spec, run config, train and eval specs, exporters, and one training
process in three steps: `set_up_run` (directories, role, run directory), `build_run` (data,
Estimator, hooks, specs) and `run_built` (train and evaluate, the error translation, then the
calibration of the answer's intervals, `trainer.training.calibrate`); `train_and_evaluate`
calls them in turn, and a parameter server serves its variables after the first.

    from trainer.training.config import make_config
    from trainer.training.experiment import train_and_evaluate
    metrics = train_and_evaluate(make_config(output_dir="/tmp/run", train_steps=500))
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Dict, List, NamedTuple, NoReturn, Optional

from trainer.model.export_assets import ExportAssets, data_description, write_export_assets
from trainer.model.heads import get_head
from trainer.model.model_fn import model_fn
from trainer.model.scaling import resolve_statistics
from trainer.model.serving import (
    BEST_EXPORTER,
    EXPORT_DIR,
    LATEST_EXPORTER,
    make_serving_input_receiver_fn,
)
from trainer.model.spec import ModelSpec
from trainer.training.calibrate import calibrate_run
from trainer.training.chief_restore import with_chief_restore
from trainer.training.closed_form_fit import fit_closed_form
from trainer.training.config import TrainerConfig
from trainer.training.data_source import (
    UNREAD,
    TrainingData,
    data_covariates,
    read_data_summary,
    reading_of_data,
    resolve_training_data,
)
from trainer.training.progress import ProgressHook
from trainer.training.recovery import SkipDeletedCheckpointExporter, run_train_and_evaluate
from trainer.training.reporting import EarlyStopped, ReportingExporter, read_metrics_json
from trainer.training.run_dir import covariate_shapes, latest_global_step, prepare_output_dir
from trainer.training.stopping import (
    DivergenceHook,
    EarlyStoppingHook,
    SignalStop,
    StopOnSignalHook,
)
from trainer.training.tensorboard import TRAIN_RUN, LossSummaryHook
from trainer.util import environment, gcs
from trainer.util.cli import split_patterns
from trainer.util.errors import DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

EXPORTS_TO_KEEP = 5
# The ModelSpec fields that are flags of the same name and meaning, copied as given; the others
# are resolved in `model_spec` (quantiles from --quantiles, the statistics from prepare.json).
RESOLVED_IN_MODEL_SPEC = frozenset({"head", "quantiles", "scale_mean", "scale_std", "mase_scale",
                                    "rmsse_scale", "series_count", "covariates", "calibration"})
FLAGS_OF_THE_MODEL = tuple(field.name for field in dataclasses.fields(ModelSpec)
                           if field.name not in RESOLVED_IN_MODEL_SPEC)


def model_spec(config: TrainerConfig, *, series_count: int = 0,
               summary: Optional[Dict[str, Any]] = UNREAD) -> ModelSpec:
    """The model of `config`: its flags, with the statistics resolved from --stats_file or
    --data_dir (`summary`: that prepare.json, when read already); `series_count` > 0 when the
    evaluation scores that many series one by one."""
    summary = read_data_summary(config) if summary is UNREAD else summary
    statistics = resolve_statistics(scaling=config.scaling, stats_file=config.statistics_file,
                                    scale_mean=config.scale_mean, scale_std=config.scale_std,
                                    season=config.season, summary=summary)
    return ModelSpec(
        **{name: getattr(config, name) for name in FLAGS_OF_THE_MODEL},
        head=config.loss, quantiles=config.quantile_levels,
        scale_mean=statistics["scale_mean"], scale_std=statistics["scale_std"],
        mase_scale=statistics["mase_scale"], rmsse_scale=statistics["rmsse_scale"],
        series_count=series_count, covariates=data_covariates(config, summary))


def make_run_config(config: TrainerConfig, *, output_dir: str) -> tf.estimator.RunConfig:
    """RunConfig: checkpoints in `output_dir`; the cluster comes from TF_CONFIG."""
    run_config = tf.estimator.RunConfig(
        model_dir=output_dir,
        tf_random_seed=config.seed,
        save_checkpoints_steps=config.save_checkpoints_steps or None,
        save_checkpoints_secs=None if config.save_checkpoints_steps else config.save_checkpoints_secs,
        keep_checkpoint_max=config.keep_checkpoint_max,
        # The progress hook reports loss and speed. TF's own step counter and loss logger would
        # only add noise, and in asynchronous training warn that the global step "has not been
        # increased" whenever another worker's update is not yet visible.
        log_step_count_steps=None,
    )
    return run_config.replace(session_config=make_session_config(
        run_config.session_config, intra_op_threads=config.intra_op_threads,
        inter_op_threads=config.inter_op_threads))


def make_session_config(default: Optional[tf.compat.v1.ConfigProto], *, intra_op_threads: int,
                        inter_op_threads: int) -> tf.compat.v1.ConfigProto:
    """The Estimator's own session config (in a cluster: the device filters that let a task run
    while another is down) with the thread counts of the flags."""
    session_config = tf.compat.v1.ConfigProto()
    if default is not None:
        session_config.CopyFrom(default)
    else:  # what the Estimator uses when given none
        session_config.allow_soft_placement = True
        session_config.graph_options.rewrite_options.meta_optimizer_iterations = 1  # ONE
    session_config.intra_op_parallelism_threads = intra_op_threads
    session_config.inter_op_parallelism_threads = inter_op_threads
    return session_config


def make_estimator(config: TrainerConfig, *, output_dir: str, series_count: int = 0,
                   summary: Optional[Dict[str, Any]] = UNREAD) -> tf.estimator.Estimator:
    """The trainer's Estimator: `model_fn` with the run config and params of `config` (and
    the number of series its evaluation scores one by one; `summary`: the data's prepare.json)."""
    run_config = make_run_config(config, output_dir=output_dir)
    # With parameter servers, a restarted chief keeps their newer variables (chief_restore).
    model = model_fn if not run_config.num_ps_replicas else with_chief_restore(
        model_fn, keep_checkpoint_max=run_config.keep_checkpoint_max,
        keep_checkpoint_every_n_hours=run_config.keep_checkpoint_every_n_hours)
    return tf.estimator.Estimator(model_fn=model, config=run_config,
                                  params=model_spec(config, series_count=series_count,
                                                    summary=summary))


def make_progress_hook(config: TrainerConfig) -> ProgressHook:
    """The progress line of `config`: every --progress_interval_secs, towards --train_steps."""
    return ProgressHook(target_step=config.train_steps, batch_size=config.batch_size,
                        interval_secs=config.progress_interval_secs)


def make_early_stopping_hook(config: TrainerConfig, *, output_dir: str,
                             is_distributed: bool) -> EarlyStoppingHook:
    """The stop after --early_stopping_evals evaluations without a lower --monitored_metric."""
    # Alone, this process evaluates between runs: read its history before every run. In a
    # cluster the evaluator writes it, perhaps to Cloud Storage: every few seconds.
    return EarlyStoppingHook(output_dir=output_dir, metric=config.monitored_metric,
                             patience=config.early_stopping_evals,
                             interval_secs=5.0 if is_distributed else 0.0)


class ExportSignature(NamedTuple):
    """What every export of a run serves with: its receiver, and its assets ({asset name: file
    in the run directory}), as `tf.estimator.Exporter`s take them."""

    receiver_fn: Callable[[], tf.estimator.export.ServingInputReceiver]
    assets: Dict[str, str]


def export_signature(config: TrainerConfig, *, output_dir: str,
                     summary: Optional[Dict[str, Any]] = UNREAD) -> ExportSignature:
    """The serving receiver of every export of the run and its assets ({asset name: file in
    `output_dir`}, written here); `summary`: the data's prepare.json, when read already."""
    summary = read_data_summary(config) if summary is UNREAD else summary
    covariates = data_covariates(config, summary)
    receiver_fn = make_serving_input_receiver_fn(n_inputs=config.n_inputs,
                                                 n_outputs=config.n_outputs,
                                                 covariates=covariates)
    # Every export carries its head (loss and quantile levels: assets.extra/head.json), and a
    # model with covariates their names, kinds, vocabularies and statistics (covariates.json),
    # so that trainer.evaluate and trainer.predict need no flag to use it; and what it was
    # trained on (data.json: the season, the data and how its raw CSV was read), so that they
    # need not be told again.
    assets = write_export_assets(output_dir, ExportAssets(
        head=get_head(config.loss, config.quantile_levels).describe(),
        data=data_description(season=config.season, data_dir=config.data_dir,
                              stats_file=config.stats_file,
                              reading=reading_of_data(config, summary)),
        covariates=covariates))
    return ExportSignature(receiver_fn, assets)


def make_exporters(config: TrainerConfig, *, output_dir: str, is_evaluator: bool = False,
                   tensorboard_dir: str = "", model_dir: str = "",
                   summary: Optional[Dict[str, Any]] = UNREAD,
                   signature: Optional[ExportSignature] = None
                   ) -> List[tf.estimator.Exporter]:
    """The run's one exporter: the latest export after every evaluation, the best (by
    --monitored_metric) when it improved, the history, metrics.json and the tuning report
    (`trainer.training.reporting.ReportingExporter`), the evaluation's events in
    `tensorboard_dir` and the best model copied to `model_dir` (each when given). A separate
    evaluator (`is_evaluator`) also stops itself after --early_stopping_evals evaluations
    without improvement. `summary`: the data's prepare.json, when read already; `signature`:
    `export_signature`'s result, when made already."""
    receiver_fn, assets = signature or export_signature(config, output_dir=output_dir,
                                                        summary=summary)
    latest = tf.estimator.LatestExporter(LATEST_EXPORTER, receiver_fn, assets_extra=assets,
                                         exports_to_keep=EXPORTS_TO_KEEP)
    # Exported only when an evaluation improves on every earlier one: the newest is the best.
    best = tf.estimator.LatestExporter(BEST_EXPORTER, receiver_fn, assets_extra=assets,
                                       exports_to_keep=EXPORTS_TO_KEEP)
    return [ReportingExporter(SkipDeletedCheckpointExporter(latest), output_dir=output_dir,
                              monitored_metric=config.monitored_metric,
                              hypertune_metric=config.hypertune_metric,
                              metric_tag=config.metric_tag,
                              best=SkipDeletedCheckpointExporter(best),
                              early_stopping_evals=config.early_stopping_evals,
                              stop_after_patience=is_evaluator, tensorboard_dir=tensorboard_dir,
                              model_dir=model_dir)]


def eval_throttle_secs(config: TrainerConfig, *, is_evaluator: bool) -> int:
    """The EvalSpec's throttle: --eval_throttle_secs, and at least 1 s in a separate evaluator.

    There the throttle is the least time between two polls for a new checkpoint: with 0 it
    would poll without a pause, and TensorFlow warns on every poll that finds none. It never
    waits after an evaluation of a second or more, so no checkpoint is skipped for it.
    """
    return max(config.eval_throttle_secs, 1) if is_evaluator else config.eval_throttle_secs


def warn_of_skipped_evaluations(config: TrainerConfig) -> None:
    """Say at the start when --eval_throttle_secs can skip evaluations that early stopping counts."""
    if config.eval_throttle_secs and config.save_checkpoints_steps and config.early_stopping_evals:
        logger.warning(
            "--eval_throttle_secs %d: a checkpoint saved (every %d steps) within %d s of the "
            "previous evaluation is not evaluated, and --early_stopping_evals %d counts only the "
            "evaluations that run; leave --eval_throttle_secs out (0 with "
            "--save_checkpoints_steps) to evaluate every checkpoint", config.eval_throttle_secs,
            config.save_checkpoints_steps, config.eval_throttle_secs, config.early_stopping_evals)


def evaluate_and_export(estimator: tf.estimator.Estimator, eval_spec: tf.estimator.EvalSpec,
                        checkpoint: str = "") -> Dict[str, Any]:
    """One evaluation of `checkpoint` (the latest when not given), then every exporter, as the
    evaluator would; returns the evaluation's figures.

    For a cluster without an evaluator: the Estimator evaluates only in local mode or on an
    evaluator task, so the chief does the final evaluation itself after training. The
    closed-form fit evaluates each checkpoint of its sweep this way.
    """
    checkpoint = checkpoint or estimator.latest_checkpoint()
    eval_result = estimator.evaluate(eval_spec.input_fn, steps=eval_spec.steps,
                                     checkpoint_path=checkpoint)
    for exporter in eval_spec.exporters:
        exporter.export(estimator, f"{estimator.model_dir}/{EXPORT_DIR}/{exporter.name}", checkpoint,
                        eval_result, is_the_final_export=True)
    return eval_result


def serve_parameters(run_config: tf.estimator.RunConfig) -> NoReturn:
    """Run this process's parameter server until a signal stops it (`Stopped`).

    What the Estimator's own parameter server does (start a server, then wait), except that
    it waits in Python, where SIGTERM and SIGINT can reach it: `server.join()` blocks in C++,
    and a signal handler would never run.
    """
    session_config = tf.compat.v1.ConfigProto(log_device_placement=False)
    server = tf.distribute.Server(run_config.cluster_spec, job_name=run_config.task_type,
                                  task_index=run_config.task_id, config=session_config,
                                  protocol=run_config.protocol, start=True)
    logger.info("parameter server %s", server.target)
    while True:
        time.sleep(3600)


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """Where one training process writes, its role in the cluster and the data's prepare.json:
    what `set_up_run` resolved before any data is read."""

    config: TrainerConfig
    dirs: environment.OutputDirs
    task: environment.TaskInfo
    summary: Optional[Dict[str, Any]]  # the data's prepare.json, read once for the run

    @property
    def output_dir(self) -> str:
        return self.dirs.output_dir


@dataclasses.dataclass(frozen=True)
class BuiltRun:
    """The data, Estimator and specs of one training process (`build_run`)."""

    data: TrainingData
    estimator: tf.estimator.Estimator
    train_spec: tf.estimator.TrainSpec
    eval_spec: tf.estimator.EvalSpec
    divergence: DivergenceHook  # turns the Estimator's NaN error into the trainer's own
    signature: ExportSignature  # the exporters' and the calibration's receiver and assets


def has_nothing_to_do(config: TrainerConfig, task: environment.TaskInfo) -> bool:
    """Whether this task of a cluster leaves the run to the others (and says so): with
    --solver closed_form the chief fits, evaluates and exports alone."""
    if config.solver == "closed_form" and task.is_distributed and not task.is_chief:
        logger.info("--solver closed_form: the chief fits, evaluates and exports alone; %s %d has "
                    "nothing to do and exits", task.task_type, task.task_index)
        return True
    return False


def set_up_run(config: TrainerConfig, *, dirs: environment.OutputDirs,
               task: environment.TaskInfo) -> RunSetup:
    """Step 1 of a run: say where it writes and as what, check the buckets, read prepare.json
    once and prepare the run directory (config.json, the resume and --overwrite rules)."""
    output_dir = dirs.output_dir
    where = (f"writing to {output_dir} (from {dirs.output_dir_source})"
             + (f", TensorBoard events also to {dirs.tensorboard_dir}" if dirs.tensorboard_dir else "")
             + (f", the best model to {dirs.model_dir}" if dirs.model_dir else ""))
    if task.is_distributed:
        logger.info("%s %d of a cluster of %d training processes, %d parameter servers%s; %s",
                    task.task_type, task.task_index, task.num_workers, task.num_ps,
                    " and an evaluator" if task.has_evaluator else "", where)
    else:
        logger.info("a single process (no TF_CONFIG cluster) trains and evaluates; %s", where)
    if task.writes_evaluation_outputs:
        warn_of_skipped_evaluations(config)
    gcs.check_buckets({**dirs.by_source(),
                       "--data_dir": [config.data_dir] if config.data_dir else [],
                       "--train_data_paths": split_patterns(config.train_data_paths),
                       "--eval_data_paths": split_patterns(config.eval_data_paths)})
    summary = read_data_summary(config)
    prepare_output_dir(config, output_dir=output_dir, is_chief=task.is_chief,
                       job_id=environment.job_id(), directories=dirs.to_dict(),
                       covariates=covariate_shapes(data_covariates(config, summary)))
    return RunSetup(config=config, dirs=dirs, task=task, summary=summary)


def build_run(setup: RunSetup, *, stop: SignalStop) -> BuiltRun:
    """Step 2 of a training process (not a parameter server's): its data, its Estimator, its
    hooks (progress, divergence, signals, TensorBoard, early stopping) and its train and eval
    specs with their exporters (whose assets are written here, once)."""
    config, task, dirs, output_dir = setup.config, setup.task, setup.dirs, setup.output_dir
    data = resolve_training_data(config, output_dir=output_dir, task=task, summary=setup.summary)
    logger.info("%s", data.description)
    start_step = latest_global_step(output_dir)
    if start_step is not None and task.is_chief and config.solver == "gradient":
        if task.num_ps:  # chief_restore decides when the session starts, and says so
            logger.info("the newest checkpoint is at step %d (target %d): the chief resumes "
                        "from it, or from the parameter servers' variables when they are newer",
                        start_step, config.train_steps)
        else:
            logger.info("resuming from the checkpoint at step %d (target %d)", start_step,
                        config.train_steps)
        if start_step >= config.train_steps:
            logger.warning("the checkpoint is already at step %d >= --train_steps %d: nothing to "
                           "train; raise --train_steps to continue", start_step, config.train_steps)

    estimator = make_estimator(config, output_dir=output_dir, series_count=data.series_count,
                               summary=setup.summary)
    divergence = DivergenceHook(learning_rate=config.learning_rate, scaling=config.scaling,
                                clip_gradient_norm=config.clip_gradient_norm)
    hooks = [make_progress_hook(config), divergence,
             StopOnSignalHook(stop, model_dir=output_dir, is_chief=task.is_chief)]
    if dirs.tensorboard_dir and task.is_chief:  # the chief writes the training summaries
        hooks.append(LossSummaryHook(log_dir=f"{dirs.tensorboard_dir}/{TRAIN_RUN}"))
    if config.early_stopping_evals:
        hooks.append(make_early_stopping_hook(config, output_dir=output_dir,
                                              is_distributed=task.is_distributed))
    train_spec = tf.estimator.TrainSpec(data.train_input_fn, max_steps=config.train_steps,
                                        hooks=hooks)
    signature = export_signature(config, output_dir=output_dir, summary=setup.summary)
    eval_spec = tf.estimator.EvalSpec(
        data.eval_input_fn,
        steps=config.eval_steps or None,
        exporters=make_exporters(config, output_dir=output_dir, is_evaluator=task.is_evaluator,
                                 tensorboard_dir=dirs.tensorboard_dir, model_dir=dirs.model_dir,
                                 summary=setup.summary, signature=signature),
        start_delay_secs=config.eval_start_delay_secs,
        throttle_secs=eval_throttle_secs(config, is_evaluator=task.is_evaluator))
    return BuiltRun(data=data, estimator=estimator, train_spec=train_spec, eval_spec=eval_spec,
                    divergence=divergence, signature=signature)


def run_built(setup: RunSetup, run: BuiltRun) -> Optional[Dict[str, Any]]:
    """Step 3: train and evaluate (or fit in closed form), turning the Estimator's failures
    into the trainer's messages, then calibrate the answer's intervals in the process that
    writes the evaluation outputs; returns metrics.json there, None elsewhere."""
    config, task, output_dir = setup.config, setup.task, setup.output_dir
    estimator, eval_spec = run.estimator, run.eval_spec
    try:
        if config.solver == "closed_form":
            fit_closed_form(config, spec=estimator.params, fit_input_fn=run.data.fit_input_fn,
                            output_dir=output_dir, session_config=estimator.config.session_config,
                            evaluate=lambda path: evaluate_and_export(estimator, eval_spec, path))
        else:
            run_train_and_evaluate(estimator, run.train_spec, eval_spec, task_type=task.task_type)
            if task.is_distributed and task.is_chief and not task.has_evaluator:
                evaluate_and_export(estimator, eval_spec)
    except EarlyStopped as reason:  # a separate evaluator, after its last useful evaluation
        logger.info("early stopping: %s (--early_stopping_evals %d); the evaluator is done",
                    reason, config.early_stopping_evals)
    except tf.compat.v1.train.NanLossDuringTrainingError:  # the Estimator's own check, if first
        raise run.divergence.error(None, float("nan")) from None
    except tf.errors.InvalidArgumentError as error:
        # The vectorized decoder cannot say which file a bad row came from: find it.
        logger.error("the input pipeline failed (%s); scanning the files for the bad row",
                     error.message.splitlines()[0])
        problem = run.data.find_bad_row()
        if problem is None:
            raise
        raise DataError(f"{problem}. Fix or remove that row and rerun: training resumes from "
                        "the last checkpoint") from error
    # The closed form's chief evaluates itself (the other tasks have returned already).
    if not (task.writes_evaluation_outputs or config.solver == "closed_form"):
        return None
    # The answer's intervals, calibrated on the valid windows and exported again (when asked).
    calibrate_run(config, output_dir=output_dir, model_dir=setup.dirs.model_dir,
                  estimator=estimator, eval_input_fn=run.data.eval_input_fn,
                  receiver_fn=run.signature.receiver_fn, assets=run.signature.assets)
    return read_metrics_json(output_dir)


def train_and_evaluate(config: TrainerConfig) -> Optional[Dict[str, Any]]:
    """Train, evaluate and export as one process of the TF_CONFIG cluster (or alone).

    Returns the last evaluation's figures (what metrics.json holds) in the process that
    evaluates, None in the others; that process then calibrates the intervals of the run's
    answer when --calibrate_intervals asks for it (`trainer.training.calibrate`). SIGTERM and
    SIGINT stop it cleanly (`trainer.training.stopping`): it raises `Stopped` after the chief
    has saved a checkpoint. The three steps, `set_up_run`, `build_run` and `run_built`, are
    what a caller that drives many runs can call one by one.
    """
    with SignalStop(role="trainer") as stop:
        dirs = environment.resolve_output_dirs(config.output_dir)
        task = environment.apply_cluster()
        stop.role = task.task_type
        if has_nothing_to_do(config, task):
            return None
        setup = set_up_run(config, dirs=dirs, task=task)
        if task.task_type == "ps":  # a parameter server only holds variables, until stopped
            serve_parameters(make_run_config(config, output_dir=setup.output_dir))
        return run_built(setup, build_run(setup, stop=stop))
