"""The trainer's configuration: every flag, its default and its check, in one place.

`TrainerConfig` is the single source of defaults. `build_parser()` turns its fields into
argparse flags (the flag name is the field name, which is also the `parameterName` that
config.yaml tunes), and `parse_config(argv)` returns a validated, frozen config. The config
is saved as JSON beside the checkpoints (`save_config`) and compared on resume
(`check_resume_compatible`), so a run can never silently continue with another architecture.
"""

import argparse
import dataclasses
import json
import math
from typing import Any, Dict, List, Optional, Sequence

import tensorflow as tf

from trainer.errors import ConfigError
from trainer.files import write_text_atomically
from trainer.scaling import SCHEMES as SCALINGS

MODELS = ("lstm", "lstm2", "gru", "cnn", "dnn", "linear")
OPTIMIZERS = ("sgd", "adam", "adagrad", "rmsprop")
VERBOSITIES = ("DEBUG", "INFO", "WARNING", "ERROR")
CONFIG_FILENAME = "config.json"
# Not a flag: the cloud job ($CLOUD_ML_JOB_ID) that wrote config.json, saved beside the flags.
JOB_ID_KEY = "cloud_ml_job_id"

# Keys that define the graph: resuming a checkpoint with any of them changed cannot work.
ARCHITECTURE_KEYS = ("model", "hidden_units", "n_inputs", "n_outputs", "scaling")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        # Tuning services may send a discrete value as float text ("128.0"): accept whole numbers.
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not number.is_integer() or number < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return int(number)

    parse.__name__ = f"int>={minimum}"
    return parse


def _float_above(minimum: float, *, inclusive: bool = False):
    relation = ">=" if inclusive else ">"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number {relation} {minimum}, got {text!r}") from None
        too_small = value < minimum if inclusive else value <= minimum
        if not math.isfinite(value) or too_small:
            raise argparse.ArgumentTypeError(f"expected a number {relation} {minimum}, got {text!r}")
        return value

    parse.__name__ = f"float{relation}{minimum}"
    return parse


def _flag(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    """A dataclass field that also carries its argparse help and type."""
    return dataclasses.field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Everything a training run depends on. Field name == flag name == tuned parameterName."""

    # Data: comma-separated file patterns, local or gs://; empty means "generate the synthetic set".
    train_data_paths: str = _flag(
        "", "Comma-separated file patterns of training CSV shards, local or gs:// "
        "(e.g. 'gs://bucket/data/train-*.csv'). Empty: generate the built-in synthetic "
        "sine-wave data set under OUTPUT_DIR/data and train on it.")
    eval_data_paths: str = _flag(
        "", "Comma-separated file patterns of evaluation CSV shards. Required when "
        "--train_data_paths is given; empty together with it means synthetic data.")
    # Where checkpoints, config.json, exports and metrics.json go.
    output_dir: str = _flag(
        "", "Directory for checkpoints, config.json, exports and metrics.json (local or gs://). "
        "--job-dir is the same flag. Precedence: this flag, then $AIP_MODEL_DIR, then ./output.")
    # Off by default: never delete a user's checkpoints unless asked.
    overwrite: bool = _flag(
        False, "Delete everything in the output directory (or trial directory) before training, "
        "once per cloud job: a chief restarted within the same job ($CLOUD_ML_JOB_ID) resumes. "
        "Without it, a rerun resumes from the latest checkpoint.")

    # Series shape: each CSV row is n_inputs past values followed by n_outputs future values.
    n_inputs: int = _flag(20, "Number of past values the model reads (leading CSV columns).",
                          type=_int_at_least(1))
    n_outputs: int = _flag(5, "Number of future values the model predicts (trailing CSV columns).",
                           type=_int_at_least(1))

    # Scaling inside the graph (the SavedModel takes and returns original units), and the
    # statistics it and MASE need. Off by default: the paper's model sees raw values.
    scaling: str = _flag(
        "none", "Scaling of each window inside the model, undone on its forecast: none, "
        "global_zscore (training mean and std from --stats_file, or --scale_mean/--scale_std), "
        "last_value (subtract the window's last value) or window_zscore (the window's own mean "
        "and std).", choices=SCALINGS)
    stats_file: str = _flag(
        "", "prepare.json written by python -m trainer.prepare (local or gs://): training mean and "
        "std for --scaling global_zscore, and the in-sample naive MAE that scales MASE. Empty: "
        "MASE is scaled by the naive errors within the evaluated windows' inputs.")
    scale_mean: float = _flag(0.0, "Training mean for --scaling global_zscore without --stats_file.",
                              type=float)
    # 0 means "not given": a std of 0 cannot scale anything.
    scale_std: float = _flag(0.0, "Training std for --scaling global_zscore without --stats_file "
                             "(> 0; 0: not given).", type=_float_above(0.0, inclusive=True))
    season: int = _flag(1, "Season length of the seasonal naive baseline and of the MASE scale "
                        "(1: plain naive; at most --n_inputs).", type=_int_at_least(1))

    # Model: the paper's LSTM by default.
    model: str = _flag("lstm", "Model architecture: lstm (the paper's LSTM cell unrolled over the "
                       "inputs, last output through matmul+bias), lstm2 (two stacked LSTMs), gru, "
                       "cnn, dnn or linear.", choices=MODELS)
    hidden_units: int = _flag(32, "Size of the recurrent state (lstm, lstm2, gru), of the first "
                              "dense layer (dnn) or number of filters (cnn). Ignored by linear.",
                              type=_int_at_least(1))

    # Optimisation: plain SGD as in the paper.
    optimizer: str = _flag("sgd", "Optimizer of the training loss: sgd (plain gradient descent, as "
                           "in the paper), adam, adagrad or rmsprop.", choices=OPTIMIZERS)
    learning_rate: float = _flag(0.1, "Learning rate of the optimizer (> 0).", type=_float_above(0.0))
    # 0 disables clipping; a positive value clips the global gradient norm.
    clip_gradient_norm: float = _flag(
        5.0, "Clip gradients to this global norm (0 turns clipping off).",
        type=_float_above(0.0, inclusive=True))
    batch_size: int = _flag(64, "Examples per training and evaluation batch.", type=_int_at_least(1))
    train_steps: int = _flag(6000, "Total training steps (a resumed run continues up to this "
                             "global step).", type=_int_at_least(1))
    # 0 means one full pass over the evaluation files.
    eval_steps: int = _flag(0, "Evaluation batches per evaluation; 0 evaluates the whole "
                            "evaluation set once.", type=_int_at_least(0))
    eval_start_delay_secs: int = _flag(
        10, "Seconds a separate evaluator waits before its first evaluation (distributed runs).",
        type=_int_at_least(0))
    eval_throttle_secs: int = _flag(
        30, "Minimum seconds between two evaluations (each needs a new checkpoint).",
        type=_int_at_least(0))
    save_checkpoints_steps: int = _flag(1000, "Save a checkpoint every this many steps.",
                                        type=_int_at_least(1))
    keep_checkpoint_max: int = _flag(5, "Number of recent checkpoints to keep (0 keeps all).",
                                     type=_int_at_least(0))
    shuffle_buffer_size: int = _flag(
        10000, "Rows shuffled together in training: read 1024 lines at a time from up to 8 files "
        "in turn, pooled to this size and permuted.", type=_int_at_least(1))
    # Fixed so that two runs with the same flags and data give the same model.
    seed: int = _flag(42, "Random seed for weight initialisation, shuffling and synthetic data.",
                      type=_int_at_least(0))

    # Speed. The networks here are small: an op is too short to be worth splitting over cores,
    # and running independent ops side by side (inter-op) uses them better.
    intra_op_threads: int = _flag(
        1, "Threads one TensorFlow op may use (0: one per core). 1 suits these small networks "
        "best; raise it for large --hidden_units or --batch_size.", type=_int_at_least(0))
    inter_op_threads: int = _flag(
        0, "TensorFlow ops run side by side (0: one per core).", type=_int_at_least(0))
    steps_per_run: int = _flag(
        10, "Training steps taken in one session run, by a loop inside the graph. Each step is "
        "still one batch and one update; only the session, its hooks and Python are run less "
        "often (the progress line, checkpoints and the stop at --train_steps fall on run "
        "boundaries). 1: one step per run.", type=_int_at_least(1))

    # Reporting.
    hypertune_metric_tag: str = _flag(
        "rmse", "Name under which the evaluation RMSE is reported to the tuning service after "
        "each evaluation; must equal hyperparameterMetricTag (AI Platform) or metricId (Vertex AI).")
    progress_interval_secs: float = _flag(
        10.0, "Seconds between two progress lines while training.", type=_float_above(0.0))
    verbosity: str = _flag("INFO", "Log level of the trainer.", choices=VERBOSITIES)

    @property
    def uses_synthetic_data(self) -> bool:
        """True when no data flags were given and the built-in data set is generated."""
        return not self.train_data_paths and not self.eval_data_paths

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one flag per `TrainerConfig` field."""
    return build_flag_parser(
        TrainerConfig, prog="python -m trainer.task",
        description="Train, evaluate and export an LSTM time-series forecaster "
        "(tf.estimator), locally or on Google Cloud training.",
        # The cloud passes --job-dir; accept the underscore spelling too.
        aliases={"output_dir": ["--job-dir", "--job_dir"]})


def build_flag_parser(config_class: type, *, prog: str, description: str,
                      aliases: Optional[Dict[str, List[str]]] = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the frozen dataclass `config_class`.

    Each field is declared with `_flag(default, help)`; booleans become `--flag/--no-flag`. The
    trainer's `TrainerConfig` and the configs of `trainer.prepare`, `trainer.evaluate` and
    `trainer.predict` are all parsed this way, so a flag is declared exactly once.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    for field in dataclasses.fields(config_class):
        names = ["--" + field.name] + list((aliases or {}).get(field.name, []))
        kwargs = dict(field.metadata)
        if field.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif "type" not in kwargs:
            kwargs["type"] = field.type
        parser.add_argument(*names, dest=field.name, default=field.default, **kwargs)
    return parser


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainerConfig:
    """Parse command-line flags into a validated TrainerConfig (exits 2 on a bad flag)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return make_config(**vars(args))
    except ConfigError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def make_config(**overrides: Any) -> TrainerConfig:
    """Build a TrainerConfig from keyword values and check the rules between flags."""
    config = TrainerConfig(**overrides)
    if bool(config.train_data_paths) != bool(config.eval_data_paths):
        given, missing = (("--train_data_paths", "--eval_data_paths") if config.train_data_paths
                          else ("--eval_data_paths", "--train_data_paths"))
        raise ConfigError(f"{given} was given but {missing} was not; give both, or neither to "
                          "train on the built-in synthetic data")
    if config.model == "cnn" and config.n_inputs < 3:
        raise ConfigError(f"--model cnn needs --n_inputs >= 3 (its kernel spans 3 steps), "
                          f"got {config.n_inputs}")
    if config.season > config.n_inputs:
        raise ConfigError(f"--season {config.season} is longer than --n_inputs {config.n_inputs}: "
                          "the seasonal naive forecast repeats the last season of the inputs")
    if config.scaling == "global_zscore" and not config.stats_file and not config.scale_std:
        raise ConfigError("--scaling global_zscore needs the training statistics: give --stats_file "
                          "(the prepare.json of trainer.prepare) or --scale_mean and --scale_std")
    if config.stats_file and (config.scale_std or config.scale_mean):
        raise ConfigError("give either --stats_file or --scale_mean/--scale_std, not both")
    if not config.hypertune_metric_tag.strip():
        raise ConfigError("--hypertune_metric_tag must not be empty")
    return config


def split_patterns(paths: str) -> List[str]:
    """'a*.csv, gs://b/c*' -> ['a*.csv', 'gs://b/c*'] (empty entries dropped)."""
    return [p.strip() for p in paths.split(",") if p.strip()]


def config_path(directory: str) -> str:
    return directory.rstrip("/") + "/" + CONFIG_FILENAME


def save_config(config: TrainerConfig, directory: str, *, job_id: Optional[str] = None) -> str:
    """Write the resolved config as JSON into `directory`; returns the file's path.

    `job_id`, when given, is saved under JOB_ID_KEY. Written through a rename: workers
    starting beside the chief read it at the same moment.
    """
    path = config_path(directory)
    saved = config.to_dict()
    if job_id:
        saved[JOB_ID_KEY] = job_id
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


def check_resume_compatible(config: TrainerConfig, saved: Dict[str, Any], *, where: str) -> None:
    """Raise ConfigError naming every architecture key that differs from the saved run."""
    # A key missing from an older config.json had its default then.
    defaults = {field.name: field.default for field in dataclasses.fields(TrainerConfig)}
    differences = [
        f"{key}: saved {saved.get(key, defaults[key])!r}, now {getattr(config, key)!r}"
        for key in ARCHITECTURE_KEYS
        if saved.get(key, defaults[key]) != getattr(config, key)
    ]
    if differences:
        raise ConfigError(
            f"cannot resume the run in {where}: its architecture differs ("
            + "; ".join(differences)
            + "). Use another --output_dir, restore those flags, or pass --overwrite to "
            "delete the old run.")
