"""The trainer's configuration: every flag, its default and its check, in one place.

`TrainerConfig` is the single source of defaults. `build_parser()` turns its fields into
argparse flags (the flag name is the field name, which is also the `parameterName` that
config.yaml tunes), and `parse_config(argv)` returns a validated, frozen config. The choices
of `--model`, `--optimizer` and `--scaling`, and their help texts, come from the registries
of the model layer. The run directory saves the config as config.json beside the
checkpoints and compares it on resume (`trainer.training.run_dir`).
"""

import argparse
import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

from trainer.data.prepared import prepared_defaults
from trainer.model.calibration import CALIBRATION_MIN_WINDOWS
from trainer.model.closed_form import DEFAULT_PENALTIES, closed_form_models, closed_form_problem
from trainer.model.heads import DEFAULT_HEAD, DEFAULT_QUANTILES, HEADS, parse_quantiles
from trainer.model.metrics import TUNABLE_METRICS, has_msis
from trainer.model.networks import DEFAULT_NETWORK, NETWORKS
from trainer.model.optimizers import DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE, OPTIMIZERS, SCHEDULES
from trainer.model.scaling import DEFAULT_SCHEME, SCHEMES
from trainer.util.cli import (
    VERBOSITIES,
    build_flag_parser,
    choices_help,
    flag,
    float_above,
    float_range,
    int_at_least,
    parse_flags,
)
from trainer.util.errors import ConfigError
from trainer.util.lazy import tf

# Keys that define the checkpoint's variables or what they mean: resuming a checkpoint with any
# of them changed cannot work (another optimizer has other slot variables, such as Adam's).
# The others may change on resume: --monitored_metric, say, only ranks the evaluations again.
ARCHITECTURE_KEYS = ("model", "hidden_units", "n_inputs", "n_outputs", "scaling", "optimizer",
                     "loss", "quantiles")
DEFAULT_CHECKPOINT_SECS = 300
SOLVERS = ("gradient", "closed_form")  # see --solver
# What the metrics of `check_metric_flag` need, for the help of the flags that name a metric.
METRIC_NEEDS = "wql needs --loss quantile, msis also the levels 0.025 and 0.975"
# The choices of --calibrate_intervals, with the note --help shows beside each.
CALIBRATION_CHOICES = {
    "auto": "on with --loss quantile, off with mse and mae",
    "on": "with mse and mae too, which then export quantiles at the levels of --quantiles",
    "off": "the head's own quantiles, if any",
}


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Everything a training run depends on. Field name == flag name == tuned parameterName."""

    # Data: a prepared directory, or comma-separated file patterns of rows, local or gs://; none
    # of them means "generate the synthetic set".
    data_dir: str = flag(
        "", "A directory written by python -m trainer.prepare (local or gs://). Series layout: "
        "windows of --n_inputs + --n_outputs are cut from its series (train on the train split, "
        "evaluate on every valid window); windows layout: its train and valid shards. Its "
        "prepare.json gives the statistics (as --stats_file) and, when they are not given, "
        "--n_inputs, --n_outputs and --season.")
    train_data_paths: str = flag(
        "", "Comma-separated file patterns of training CSV shards, local or gs:// "
        "(e.g. 'gs://bucket/data/train-*.csv'). Empty: generate the built-in synthetic "
        "sine-wave data set under OUTPUT_DIR/data and train on it.")
    eval_data_paths: str = flag(
        "", "Comma-separated file patterns of evaluation CSV shards. Required when "
        "--train_data_paths is given; empty together with it means synthetic data.")
    # Where checkpoints, config.json, exports and metrics.json go.
    output_dir: str = flag(
        "", "Directory for checkpoints, config.json, exports and metrics.json (local or gs://). "
        "--job-dir is the same flag. Precedence: this flag, then $AIP_CHECKPOINT_DIR, then "
        "$AIP_MODEL_DIR, then ./output (trial_<id> below this flag or ./output in a tuning trial). "
        "Whenever Vertex AI sets them, $AIP_TENSORBOARD_LOG_DIR gets the TensorBoard events and "
        "$AIP_MODEL_DIR the best SavedModel itself, with this flag too.")
    # Off by default: never delete a user's checkpoints unless asked.
    overwrite: bool = flag(
        False, "Delete everything in the output directory (or trial directory) before training, "
        "once per cloud job: a chief restarted within the same job ($CLOUD_ML_JOB_ID) resumes. "
        "Without it, a rerun resumes from the latest checkpoint.")
    # Off by default: the valid split is what chooses the model. trainer.refit turns it on.
    train_on_valid: bool = flag(
        False, "Train on the windows of the valid split too (a refit of a chosen configuration, "
        "python -m trainer.refit): the evaluation, still on the valid split, is then in-sample.")

    # Window shape: n_inputs past values followed by n_outputs future values (a CSV row of the
    # windows layout holds one window; the series layout's windows are cut in the pipeline).
    n_inputs: int = flag(20, "Number of past values the model reads per window: the leading CSV "
                          "columns of a row, or the points before each forecast in a series "
                          "(--data_dir of the series layout).", type=int_at_least(1))
    n_outputs: int = flag(5, "Number of future values the model predicts: the trailing CSV columns "
                           "of a row, or the points after each forecast's inputs in a series "
                           "(--data_dir of the series layout).",
                           type=int_at_least(1))

    # Scaling inside the graph (the SavedModel takes and returns original units), and the
    # statistics it and MASE need. Each window's own z-score by default (DEFAULT_SCHEME says why).
    scaling: str = flag(
        DEFAULT_SCHEME, "Scaling of each window inside the model, undone on its forecast: "
        + choices_help(SCHEMES) + ".", choices=tuple(SCHEMES))
    stats_file: str = flag(
        "", "prepare.json written by python -m trainer.prepare (local or gs://): training mean and "
        "std for --scaling global_zscore, and the in-sample naive MAE that scales MASE; when not "
        "given, --n_inputs, --n_outputs (which must match its windows layout) and --season. "
        "Empty: MASE is scaled by the naive errors within the evaluated windows' inputs.")
    scale_mean: float = flag(0.0, "Training mean for --scaling global_zscore without --stats_file.",
                              type=float)
    # 0 means "not given": a std of 0 cannot scale anything.
    scale_std: float = flag(0.0, "Training std for --scaling global_zscore without --stats_file "
                             "(> 0; 0: not given).", type=float_above(0.0, inclusive=True))
    season: int = flag(1, "Season length of the seasonal naive baseline and of the MASE scale "
                        "(1: plain naive; at most --n_inputs).", type=int_at_least(1))

    # Model: the paper's LSTM by default.
    model: str = flag(DEFAULT_NETWORK, "Model architecture: " + choices_help(
        {name: network.flag_note for name, network in NETWORKS.items()}) + ".",
        choices=tuple(NETWORKS))
    # The loss decides the output: one value per step, or one per quantile level.
    loss: str = flag(DEFAULT_HEAD, "Training loss, which decides what the model forecasts: "
                     + choices_help({name: note for name, (_, note) in HEADS.items()}) + ".",
                     choices=tuple(HEADS))
    quantiles: str = flag(
        ",".join(f"{level:g}" for level in DEFAULT_QUANTILES),
        "With --loss quantile: comma-separated, increasing quantile levels in (0, 1). Include "
        "0.5 for the median as the point forecast, and 0.025,0.975 for the 95%% interval that "
        "MSIS scores. With --loss mse or mae and --calibrate_intervals on: the levels of their "
        "calibrated intervals. Ignored otherwise.")
    # auto: on for the quantile head, whose 80%% interval users read as 80%% (a prediction pass
    # over the valid windows after training); off for the point heads, whose export then keeps
    # its signature unless intervals are asked for.
    calibrate_intervals: str = flag(
        "auto", "After training, calibrate the intervals of the chosen model on the valid "
        "windows (split conformal, per step and level: each quantile moves by an offset times "
        "the window's mean |x[t] - x[t-1]|, so that the tau quantile holds about a tau share of "
        "held-out values) and export it again into export/best, the SavedModel applying it: "
        + choices_help(CALIBRATION_CHOICES) + ". Needs at least "
        f"{CALIBRATION_MIN_WINDOWS} valid windows; metrics.json shows the coverage before and "
        "after.", choices=tuple(CALIBRATION_CHOICES))
    calibration_file: str = flag(
        "", "The calibration.json of a run of this configuration, applied instead of one computed "
        "on the valid split (trainer.refit gives its run's: a refit trains on the valid windows, "
        "whose residuals are then in-sample). Empty: computed, unless --train_on_valid.")
    hidden_units: int = flag(32, "Size of the recurrent state (lstm, lstm2, gru), of the first "
                              "dense layer (dnn) or number of filters (cnn), width of every fully "
                              "connected layer (nbeats), of the encoder and decoder (tide), d_model "
                              "(patchtst). Ignored by linear, dlinear and nlinear.",
                              type=int_at_least(1))

    # Off by default: the paper's model has none.
    dropout: float = flag(0.0, "Dropout rate while training (0 to < 1), on the last recurrent "
                          "output (lstm, lstm2, gru), the convolutions' output (cnn), each "
                          "hidden layer (dnn, nbeats), each residual block (tide), the embeddings, "
                          "attention and head (patchtst); linear, dlinear and nlinear have none.",
                          type=float_range(0.0, 1.0))

    # By the optimizer, as in the paper; the closed form is for the models linear in their weights.
    solver: str = flag(
        "gradient", "How the weights are found: gradient (the optimizer, for every model) or "
        "closed_form (" + ", ".join(closed_form_models()) + " with --loss mse: one pass over "
        "the training windows adds up the normal equations, and a ridge solve gives the weights "
        "for each of --ridge_penalties in seconds; each is a checkpoint evaluated on the valid "
        "split and the best by --monitored_metric is the answer; in a cluster the chief does it "
        "alone and the other tasks exit).", choices=SOLVERS)
    ridge_penalties: str = flag(
        ",".join(f"{penalty:g}" for penalty in DEFAULT_PENALTIES),
        "With --solver closed_form: comma-separated ridge penalties (>= 0), each relative to the "
        "mean square of a feature (so a penalty means the same at any scale); each is fitted, "
        "saved as a checkpoint and evaluated. A penalty that leaves the system ill-conditioned "
        "is raised, and the log says so.")

    # Optimisation: plain SGD as in the paper.
    optimizer: str = flag(DEFAULT_OPTIMIZER, "Optimizer of the training loss: " + choices_help(
        {name: optimizer.flag_note for name, optimizer in OPTIMIZERS.items()}) + ".",
        choices=tuple(OPTIMIZERS))
    learning_rate: float = flag(0.1, "Learning rate of the optimizer (> 0).", type=float_above(0.0))
    # Constant, without warm-up, by default: as in the paper.
    lr_schedule: str = flag(DEFAULT_SCHEDULE, "Learning-rate schedule over the global step: "
                            + choices_help(SCHEDULES) + ".", choices=tuple(SCHEDULES))
    warmup_steps: int = flag(0, "Steps over which the learning rate rises linearly to "
                             "--learning_rate before the schedule (0: none).",
                             type=int_at_least(0))
    # 0 disables clipping; a positive value clips the global gradient norm.
    clip_gradient_norm: float = flag(
        5.0, "Clip gradients to this global norm (0 turns clipping off).",
        type=float_above(0.0, inclusive=True))
    batch_size: int = flag(64, "Examples per training and evaluation batch.", type=int_at_least(1))
    train_steps: int = flag(6000, "Total training steps (a resumed run continues up to this "
                             "global step).", type=int_at_least(1))
    # 0 means one full pass over the evaluation files.
    eval_steps: int = flag(0, "Evaluation batches per evaluation; 0 evaluates the whole "
                            "evaluation set once.", type=int_at_least(0))
    # Off by default: a run trains for --train_steps unless asked otherwise.
    early_stopping_evals: int = flag(
        0, "Stop training after this many evaluations in a row without a lower "
        "--monitored_metric than the best so far (0: never); in a cluster the chief and "
        "workers stop on the evaluator's results. metrics.json and export/best are the best "
        "evaluation either way.", type=int_at_least(0))
    eval_start_delay_secs: int = flag(
        10, "Seconds a separate evaluator waits before its first evaluation (distributed runs).",
        type=int_at_least(0))
    # 30 with checkpoints by time; with --save_checkpoints_steps, 0 unless given (`make_config`):
    # early stopping counts evaluations, and each checkpoint of a step schedule should be one.
    eval_throttle_secs: int = flag(
        30, "Minimum seconds between two evaluations (each needs a new checkpoint): a checkpoint "
        "saved sooner after the previous evaluation is not evaluated (the log says so), and "
        "early stopping counts only the evaluations that run. With --save_checkpoints_steps "
        "it is 0 unless given, so that every checkpoint is evaluated.", type=int_at_least(0))
    # By time by default: on a slow cloud VM a step interval can mean an hour of work lost to a
    # crash, and on a fast job a checkpoint every second costs more than it saves. A stop by
    # SIGTERM (preemption) or Ctrl-C saves a checkpoint anyway (trainer.training.stopping).
    save_checkpoints_secs: int = flag(
        DEFAULT_CHECKPOINT_SECS, "Save a checkpoint every this many seconds (unless "
        "--save_checkpoints_steps is given). A stop by SIGTERM or SIGINT saves one too.",
        type=int_at_least(1))
    save_checkpoints_steps: int = flag(
        0, "Save a checkpoint every this many steps instead of every --save_checkpoints_secs "
        "(0: by time).", type=int_at_least(0))
    keep_checkpoint_max: int = flag(5, "Number of recent checkpoints to keep (0 keeps all).",
                                     type=int_at_least(0))
    shuffle_buffer_size: int = flag(
        10000, "Rows shuffled together in training: read 1024 lines at a time from up to 8 files "
        "in turn, pooled to this size and permuted.", type=int_at_least(1))
    # Fixed so that two runs with the same flags and data give the same model.
    seed: int = flag(42, "Random seed for weight initialisation, shuffling and synthetic data.",
                      type=int_at_least(0))

    # Speed. The networks here are small: an op is too short to be worth splitting over cores,
    # and running independent ops side by side (inter-op) uses them better.
    intra_op_threads: int = flag(
        1, "Threads one TensorFlow op may use (0: one per core). 1 suits these small networks "
        "best; raise it for large --hidden_units or --batch_size.", type=int_at_least(0))
    inter_op_threads: int = flag(
        0, "TensorFlow ops run side by side (0: one per core).", type=int_at_least(0))
    steps_per_run: int = flag(
        10, "Training steps taken in one session run, by a loop inside the graph. Each step is "
        "still one batch and one update; only the session, its hooks and Python are run less "
        "often (the progress line, checkpoints and the stop at --train_steps fall on run "
        "boundaries). 1: one step per run.", type=int_at_least(1))

    # Choosing. MASE by default, the M4 and tourism competitions' habit: errors against the
    # in-sample naive error, so that no series decides by its scale alone (RMSE pooled over many
    # series follows the largest).
    monitored_metric: str = flag(
        "mase", "The metric by which evaluations are compared (lower is better for each): it "
        "drives early stopping (--early_stopping_evals), export/best, the answer in "
        "metrics.json and the done: line. mase is the M4 and tourism competitions' habit and "
        "is scale-free: each series is scored against its own in-sample naive error "
        f"({METRIC_NEEDS}).", choices=TUNABLE_METRICS)
    # Reporting. RMSE by default: every loss has it, and tuning jobs were set up for it.
    hypertune_metric: str = flag(
        "rmse", "The metric reported to the tuning service after each evaluation: its value in "
        "the best evaluation so far by --monitored_metric, so that a trial's final measurement "
        f"describes the model it would deploy ({METRIC_NEEDS}).", choices=TUNABLE_METRICS)
    hypertune_metric_tag: str = flag(
        "", "Name under which --hypertune_metric is reported; must equal hyperparameterMetricTag "
        "(AI Platform) or metricId (Vertex AI). Empty: the metric's own name.")
    progress_interval_secs: float = flag(
        10.0, "Seconds between two progress lines while training.", type=float_above(0.0))
    verbosity: str = flag("INFO", "Log level of the trainer.", choices=VERBOSITIES)

    @property
    def uses_synthetic_data(self) -> bool:
        """True when no data flags were given and the built-in data set is generated."""
        return not self.train_data_paths and not self.eval_data_paths and not self.data_dir

    @property
    def quantile_levels(self) -> Tuple[float, ...]:
        """The levels of --quantiles with --loss quantile; none with the other losses."""
        return parse_quantiles(self.quantiles) if self.loss == "quantile" else ()

    @property
    def penalties(self) -> Tuple[float, ...]:
        """The ridge penalties of --ridge_penalties."""
        return parse_penalties(self.ridge_penalties)

    @property
    def calibrates_intervals(self) -> bool:
        """Whether the run calibrates its intervals after training: --calibrate_intervals on,
        or auto with --loss quantile."""
        return self.calibrate_intervals == "on" or (self.calibrate_intervals == "auto"
                                                    and self.loss == "quantile")

    @property
    def interval_levels(self) -> Tuple[float, ...]:
        """The levels of the calibrated intervals: those of --quantiles (the quantile head's, or
        those a point head gains)."""
        return parse_quantiles(self.quantiles)

    @property
    def metric_tag(self) -> str:
        """The name the tuning service gets the metric under."""
        return self.hypertune_metric_tag or self.hypertune_metric

    @property
    def statistics_file(self) -> str:
        """The prepare.json the statistics come from: --stats_file, or --data_dir's."""
        return self.stats_file or (f"{self.data_dir.rstrip('/')}/prepare.json" if self.data_dir
                                   else "")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def build_parser(prog: str = "python -m trainer.task") -> argparse.ArgumentParser:
    """An argparse parser with one flag per `TrainerConfig` field."""
    return build_flag_parser(
        TrainerConfig, prog=prog,
        description="Train, evaluate and export an LSTM time-series forecaster "
        "(tf.estimator), locally or on Google Cloud training.",
        # The cloud passes --job-dir; accept the underscore spelling too.
        aliases={"output_dir": ["--job-dir", "--job_dir"]})


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainerConfig:
    """Parse command-line flags into a validated TrainerConfig (exits 2 on a bad flag): a trainer
    command line read without running it (`benchmarks.run` reads its trainer flags so)."""
    return parse_flags(build_parser(), argv, make_config)


def make_config(**given: Any) -> TrainerConfig:
    """Build a TrainerConfig from the flags `given` and check the rules between flags.

    Of the flags not given, `--n_inputs`, `--n_outputs` and `--season` come from the prepare.json
    of --data_dir (or --stats_file) when it names them (`trainer.data.prepared.prepared_defaults`),
    the others from their defaults; rows of the windows layout fit only the window they were
    cut to, so other sizes given for them are an error naming both.
    """
    data_dir, stats_file = given.get("data_dir", ""), given.get("stats_file", "")
    source = f"{data_dir.rstrip('/')}/prepare.json" if data_dir else stats_file
    from_prepared = prepared_defaults(source, given=given) if source else {}
    resolved = {**from_prepared, **given}
    if resolved.get("save_checkpoints_steps") and "eval_throttle_secs" not in given:
        resolved["eval_throttle_secs"] = 0  # every checkpoint of a step schedule is evaluated
    config = TrainerConfig(**resolved)
    if config.data_dir and (config.train_data_paths or config.eval_data_paths):
        raise ConfigError("give --data_dir (a prepared directory) or --train_data_paths and "
                          "--eval_data_paths (files of rows), not both")
    if config.data_dir and config.stats_file:
        raise ConfigError("--data_dir brings its own prepare.json: drop --stats_file")
    if bool(config.train_data_paths) != bool(config.eval_data_paths):
        given, missing = (("--train_data_paths", "--eval_data_paths") if config.train_data_paths
                          else ("--eval_data_paths", "--train_data_paths"))
        raise ConfigError(f"{given} was given but {missing} was not; give both, or neither to "
                          "train on the built-in synthetic data")
    network = NETWORKS[config.model]
    if config.n_inputs < network.min_n_inputs:
        raise ConfigError(f"--model {config.model} needs --n_inputs >= {network.min_n_inputs} "
                          f"({network.min_n_inputs_reason}), got {config.n_inputs}")
    if config.season > config.n_inputs:
        where = f" (--season from {source})" if "season" in from_prepared else ""
        raise ConfigError(f"--season {config.season} is longer than --n_inputs {config.n_inputs}"
                          f"{where}: the seasonal naive forecast repeats the last season of the "
                          "inputs")
    if config.scaling == "global_zscore" and not config.statistics_file and not config.scale_std:
        raise ConfigError("--scaling global_zscore needs the training statistics: give --stats_file "
                          "(the prepare.json of trainer.prepare) or --scale_mean and --scale_std")
    if config.statistics_file and (config.scale_std or config.scale_mean):
        raise ConfigError(f"give either {'--data_dir' if config.data_dir else '--stats_file'} or "
                          "--scale_mean/--scale_std, not both")
    if config.save_checkpoints_steps and config.save_checkpoints_secs != DEFAULT_CHECKPOINT_SECS:
        raise ConfigError(f"give --save_checkpoints_steps ({config.save_checkpoints_steps}) or "
                          f"--save_checkpoints_secs ({config.save_checkpoints_secs}), not both")
    if config.lr_schedule == "cosine" and config.warmup_steps >= config.train_steps:
        raise ConfigError(f"--warmup_steps {config.warmup_steps} leaves no step of the cosine "
                          f"schedule before --train_steps {config.train_steps}: lower it")
    try:
        levels = parse_quantiles(config.quantiles)
    except ValueError as error:
        raise ConfigError(f"--quantiles {config.quantiles!r}: {error}") from None
    if config.solver == "closed_form":
        check_closed_form(config)
    if config.calibration_file and not config.calibrates_intervals:
        raise ConfigError(f"--calibration_file {config.calibration_file} calibrates intervals, but "
                          f"--calibrate_intervals {config.calibrate_intervals} with --loss "
                          f"{config.loss} calibrates none: give --calibrate_intervals on, or drop "
                          "--calibration_file")
    if config.calibration_file and not tf.io.gfile.exists(config.calibration_file):
        raise ConfigError(f"--calibration_file {config.calibration_file} does not exist; give the "
                          "calibration.json of a run that calibrated its intervals")
    for name in ("monitored_metric", "hypertune_metric"):
        check_metric_flag(name, getattr(config, name), loss=config.loss, levels=levels,
                          quantiles=config.quantiles)
    if config.hypertune_metric_tag != config.hypertune_metric_tag.strip() or (
            config.hypertune_metric_tag and not config.hypertune_metric_tag.strip()):
        raise ConfigError(f"--hypertune_metric_tag {config.hypertune_metric_tag!r} has blanks; "
                          "give the metric's name as the tuning job spells it, or leave it empty")
    return config


def parse_penalties(text: str) -> Tuple[float, ...]:
    """'0,1e-3' -> (0.0, 0.001): ridge penalties, each >= 0, at least one.

    >>> parse_penalties("0, 0.01")
    (0.0, 0.01)
    """
    try:
        penalties = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--ridge_penalties {text!r} are not comma-separated numbers; give "
                          "e.g. 0,0.001,0.01") from None
    negative = [penalty for penalty in penalties if not penalty >= 0]
    if negative:
        raise ConfigError(f"--ridge_penalties {text!r}: {negative[0]:g} is not >= 0; a ridge "
                          "penalty adds a positive multiple of the squared weights")
    return penalties


def check_closed_form(config: TrainerConfig) -> None:
    """The flags --solver closed_form needs: a model linear in its weights, --loss mse."""
    parse_penalties(config.ridge_penalties)
    problem = closed_form_problem(model=config.model, head=config.loss)
    if problem:
        raise ConfigError(problem)


def check_metric_flag(name: str, metric: str, *, loss: str, levels: Sequence[float],
                      quantiles: str) -> None:
    """Raise ConfigError when the flag `name` names a `metric` that the run does not compute:
    wql needs --loss quantile, msis also the levels 0.025 and 0.975 (`levels`, from `quantiles`).
    """
    if metric == "wql" and loss != "quantile":
        raise ConfigError(f"--{name} wql scores quantiles, but --loss {loss} forecasts one value "
                          "per step: add --loss quantile, or choose rmse or mase")
    if metric == "msis" and not (loss == "quantile" and has_msis(levels)):
        raise ConfigError(f"--{name} msis scores the 95% interval: give --loss quantile and "
                          f"--quantiles with 0.025 and 0.975 (got --loss {loss}, --quantiles "
                          f"{quantiles})")
