"""What a run trains and evaluates on: a prepared directory, files of rows, or the synthetic set.

- `--data_dir DIR` of the series layout: windows of `--n_inputs` + `--n_outputs` cut from the
  series inside tf.data (`trainer.data.series_pipeline`), the train split for training and
  every window of the valid split for evaluation. Every file is checked and its windows
  counted before training (`trainer.data.series_survey`); series too short for one training
  window are skipped and counted, and a split with no window at all is an error that says what
  to lower.
- `--data_dir DIR` of the windows layout: its `train-*` and `valid-*` shards, as rows.
- `--train_data_paths` / `--eval_data_paths`: files of rows (`trainer.data.pipeline`).
- none of them: the built-in synthetic rows, written by the chief under OUTPUT_DIR/data (the
  other processes of a cluster wait for them).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from trainer.data import synthetic
from trainer.data.covariates import Covariate, covariates_of
from trainer.data.pipeline import make_input_fn, process_files
from trainer.data.prepared import (
    SERIES_LAYOUT,
    WINDOWS_LAYOUT,
    check_layout,
    open_prepared,
    read_summary,
    reading_of,
)
from trainer.data.schema import check_files, expand_file_patterns, find_first_bad_row
from trainer.data.series_decode import TRAIN_AND_VALID
from trainer.data.series_pipeline import make_series_input_fn
from trainer.data.series_scales import ScaleSums, describe_missing, stored_scales
from trainer.data.series_survey import survey_series_files
from trainer.data.windows import evaluation_stride, expected_windows
from trainer.training.config import TrainerConfig
from trainer.util import environment
from trainer.util.cli import split_patterns
from trainer.util.errors import DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

# How long a worker or evaluator waits for the chief to write the synthetic data set.
SYNTHETIC_DATA_WAIT_SECS = 600
TRAIN_SPLIT, EVAL_SPLIT = "train", "valid"  # never the test split: it is for the final verdict
# Windows per batch of the closed-form fit's one pass: large, as it only adds up sums.
FIT_BATCH_SIZE = 1024


@dataclasses.dataclass
class TrainingData:
    """The input_fns of one run, and how to find a bad row when the row decoder fails."""

    train_input_fn: Callable[[], tf.data.Dataset]
    eval_input_fn: Callable[[], tf.data.Dataset]
    find_bad_row: Callable[[], Optional[str]]
    description: str
    series_count: int = 0  # > 0: the evaluation scores each of this many series on its own scale
    # The training windows in one ordered pass (those of --train_on_valid too), for the
    # closed-form fit (`trainer.training.closed_form_fit`).
    fit_input_fn: Optional[Callable[[], tf.data.Dataset]] = None


# Not read yet: the functions below read prepare.json themselves when not handed it.
UNREAD: Dict[str, Any] = {"unread": True}


def read_data_summary(config: TrainerConfig) -> Optional[Dict[str, Any]]:
    """The prepare.json of --data_dir or --stats_file (None for rows or the synthetic set):
    read once by a run and handed to everything that needs it."""
    return read_summary(config.statistics_file) if config.statistics_file else None


def _summary_of(config: TrainerConfig, summary: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return read_data_summary(config) if summary is UNREAD else summary


def data_covariates(config: TrainerConfig, summary: Optional[Dict[str, Any]] = UNREAD
                    ) -> Tuple[Covariate, ...]:
    """The covariates of --data_dir's series (none for rows or the synthetic set); `summary`:
    its prepare.json, when read already (`read_data_summary`)."""
    if not config.data_dir:
        return ()
    summary = _summary_of(config, summary)
    if summary.get("layout", WINDOWS_LAYOUT) != SERIES_LAYOUT:
        return ()
    return tuple(covariates_of(summary, source=f"{config.data_dir}/prepare.json"))


def reading_of_data(config: TrainerConfig, summary: Optional[Dict[str, Any]] = UNREAD
                    ) -> Dict[str, Any]:
    """How trainer.prepare read the raw CSV behind --data_dir or --stats_file (its target,
    columns and bad-value policy); empty for other data."""
    summary = _summary_of(config, summary)
    return reading_of(summary) if summary is not None else {}


def make_train_input_fn(config: TrainerConfig, *, files: List[str], num_workers: int = 1,
                        worker_index: int = 0) -> Callable[[], tf.data.Dataset]:
    """The training input_fn of `config` over files of rows, for one training process of
    `num_workers`."""
    return make_input_fn(files=files, training=True, batch_size=config.batch_size,
                         n_inputs=config.n_inputs, n_outputs=config.n_outputs,
                         shuffle_buffer_size=config.shuffle_buffer_size, seed=config.seed,
                         num_workers=num_workers, worker_index=worker_index,
                         steps_per_run=config.steps_per_run)


def resolve_training_data(config: TrainerConfig, *, output_dir: str, task: environment.TaskInfo,
                          summary: Optional[Dict[str, Any]] = UNREAD) -> TrainingData:
    """The data of `config` for this process of the cluster (see the module's docstring);
    `summary`: the data's prepare.json, when read already."""
    if config.data_dir:
        summary = _summary_of(config, summary)
        if summary.get("layout", WINDOWS_LAYOUT) == SERIES_LAYOUT:
            return _series_data(config, task=task, summary=summary)
        check_layout(summary, layout=WINDOWS_LAYOUT, source=f"{config.data_dir}/prepare.json")
        directory = config.data_dir.rstrip("/")
        return _row_data(config, task=task, train_patterns=[f"{directory}/train-*-of-*.csv"],
                         eval_patterns=[f"{directory}/valid-*-of-*.csv"], flag="--data_dir")
    if config.uses_synthetic_data:
        data_dir = f"{output_dir}/data"
        shape = dict(n_inputs=config.n_inputs, n_outputs=config.n_outputs, seed=config.seed)
        if task.is_chief:
            patterns = synthetic.write_dataset(data_dir, **shape)
        else:
            patterns = synthetic.wait_for_dataset(data_dir, timeout_secs=SYNTHETIC_DATA_WAIT_SECS,
                                                  **shape)
        return _row_data(config, task=task, train_patterns=[patterns["train"]],
                         eval_patterns=[patterns["eval"]], flag="")
    return _row_data(config, task=task, train_patterns=split_patterns(config.train_data_paths),
                     eval_patterns=split_patterns(config.eval_data_paths), flag="")


def _row_data(config: TrainerConfig, *, task: environment.TaskInfo, train_patterns: List[str],
              eval_patterns: List[str], flag: str) -> TrainingData:
    train_files = expand_file_patterns(train_patterns, flag=flag or "--train_data_paths")
    eval_files = expand_file_patterns(eval_patterns, flag=flag or "--eval_data_paths")
    for files in (train_files, eval_files):
        check_files(files, n_inputs=config.n_inputs, n_outputs=config.n_outputs)
    if config.train_on_valid:  # a refit: the evaluation rows are trained on too
        train_files = train_files + [path for path in eval_files if path not in train_files]
    return TrainingData(
        train_input_fn=make_train_input_fn(config, files=train_files, num_workers=task.num_workers,
                                           worker_index=task.worker_index),
        eval_input_fn=make_input_fn(files=eval_files, training=False,
                                    batch_size=config.batch_size, n_inputs=config.n_inputs,
                                    n_outputs=config.n_outputs),
        find_bad_row=lambda: find_first_bad_row(train_files + eval_files,
                                                n_inputs=config.n_inputs,
                                                n_outputs=config.n_outputs),
        description=f"{len(train_files)} training files, {len(eval_files)} evaluation files",
        fit_input_fn=make_input_fn(files=train_files, training=False, batch_size=FIT_BATCH_SIZE,
                                   n_inputs=config.n_inputs, n_outputs=config.n_outputs))


def _series_data(config: TrainerConfig, *, task: environment.TaskInfo,
                 summary: Dict[str, Any]) -> TrainingData:
    prepared = open_prepared(config.data_dir, summary=summary)
    width = config.n_inputs + config.n_outputs
    mine = process_files(prepared.files, num_workers=task.num_workers,
                         worker_index=task.worker_index)
    # The chief and the evaluator survey every file (the totals, and every split there is to
    # evaluate); a worker only the files it trains on, so that N workers do not read the data
    # set N more times before training.
    survey_all = task.is_chief or task.is_evaluator or len(mine) == len(prepared.files)
    surveyed = prepared.files if survey_all else mine
    series_ids = prepared.summary.get("series_ids")
    scale_sums = ScaleSums(series_count=len(series_ids or ()), season=config.season)
    boundaries = prepared.summary.get("boundaries", {})
    stride = evaluation_stride(boundaries, EVAL_SPLIT, n_outputs=config.n_outputs)
    backtest = expected_windows(boundaries, EVAL_SPLIT, n_outputs=config.n_outputs)
    survey = survey_series_files(surveyed, n_inputs=config.n_inputs,
                                 n_outputs=config.n_outputs, series_ids=series_ids,
                                 covariates=prepared.covariates,
                                 scale_sums=scale_sums if survey_all else None,
                                 strides={EVAL_SPLIT: stride},
                                 expected={EVAL_SPLIT: backtest} if backtest else None)
    short = survey.short_of_windows.get(EVAL_SPLIT)
    if short:
        logger.warning("%d of %d series have fewer than %d backtest windows of %d points in the "
                       "%s split (their history is too short for the inputs), for example %s",
                       len(short), survey.series, backtest, width, EVAL_SPLIT,
                       ", ".join(str(series_ids[i]) if series_ids else str(i) for i in short[:5]))
    if survey.too_short:
        logger.warning("%d of %d series have no training window of %d points (--n_inputs %d + "
                       "--n_outputs %d) and are skipped, for example %s", survey.too_short,
                       survey.series, width, config.n_inputs, config.n_outputs,
                       ", ".join(survey.too_short_examples))
    for split, role in ((TRAIN_SPLIT, "train on"), (EVAL_SPLIT, "evaluate on")):
        if survey_all and not survey.windows[split]:
            raise DataError(f"--data_dir {config.data_dir}: no series has a window of {width} "
                            f"points (--n_inputs {config.n_inputs} + --n_outputs "
                            f"{config.n_outputs}) with its targets in the {split} split, so there "
                            f"is nothing to {role}; lower --n_inputs/--n_outputs, or prepare the "
                            f"data with a larger {split} split")
    if task.task_type != "evaluator" and not sum(survey.windows_per_file[path][TRAIN_SPLIT]
                                                 for path in mine):
        raise DataError(f"--data_dir {config.data_dir}: the {len(mine)} series files of training "
                        f"process {task.worker_index} of {task.num_workers} ({', '.join(mine)}) "
                        f"hold no training window of {width} points; prepare the data with "
                        "fewer --shards, or lower --n_inputs/--n_outputs")
    files = (f"{len(prepared.files)} series files" if survey_all else
             f"{len(mine)} of the {len(prepared.files)} series files (this process's; the chief "
             "surveys them all)")
    common = dict(files=prepared.files, n_inputs=config.n_inputs, n_outputs=config.n_outputs,
                  covariates=prepared.covariates)
    train_split = TRAIN_AND_VALID if config.train_on_valid else TRAIN_SPLIT
    scales = None
    if survey_all:  # the processes that evaluate: every series' own in-sample scale
        scales = (stored_scales(prepared.summary, season=config.season, split=EVAL_SPLIT,
                                series_count=survey.series_count)
                  or scale_sums.scales(EVAL_SPLIT))
        missing = describe_missing(scales, series_ids)
        if missing:
            logger.warning("%s", missing)
    return TrainingData(
        train_input_fn=make_series_input_fn(
            split=train_split, training=True, batch_size=config.batch_size, seed=config.seed,
            num_workers=task.num_workers, worker_index=task.worker_index,
            steps_per_run=config.steps_per_run, **common),
        eval_input_fn=make_series_input_fn(split=EVAL_SPLIT, training=False, scales=scales,
                                           stride=stride, batch_size=config.batch_size, **common),
        fit_input_fn=make_series_input_fn(split=train_split, training=False,
                                          batch_size=FIT_BATCH_SIZE, **common),
        find_bad_row=lambda: None,  # the survey has read every row already
        series_count=survey.series_count if scales is not None else 0,
        description=(_covariates_line(prepared.covariates)
                     + f"{files} ({survey.series} series, {survey.points} points): "
                     f"{survey.windows[TRAIN_SPLIT]} training windows"
                     + (" and those whose targets reach into the valid split (--train_on_valid)"
                        if config.train_on_valid else "") + ", "
                     f"{survey.windows[EVAL_SPLIT]} evaluation windows of {width} points"
                     + (f" ({backtest} backtest windows per series, {stride} steps apart)"
                        if backtest else "")))


def _covariates_line(covariates: Sequence[Covariate]) -> str:
    if not covariates:
        return ""
    return "covariates: " + ", ".join(
        f"{c.name} ({c.kind}{', categorical' if c.categorical else ''})" for c in covariates) + "; "
