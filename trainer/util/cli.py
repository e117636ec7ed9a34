"""The command-line kit every command uses: dataclass fields to flags, the log set-up, exit codes.

A command declares its flags once, as the fields of a frozen dataclass made with `flag(...)`;
`build_flag_parser` turns them into argparse flags and `run_command` parses them, sets up
logging and runs the command. Exit status, the same for every command (`trainer.task`,
`trainer.prepare`, `trainer.evaluate`, `trainer.predict`):

- 0 on success;
- 2 for a bad flag or flags that conflict (argparse's `usage: ... error: ...`);
- 1 for bad input (a `TrainerError`, printed as one `error: ...` line);
- 128 + the signal number when a signal stopped it (`Stopped`: 143 for SIGTERM, 130 for
  SIGINT), with one line saying where it stopped;
- any other failure keeps its traceback.
"""

import argparse
import dataclasses
import logging
import math
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from trainer.util.errors import ConfigError, Stopped, TrainerError

# Before TensorFlow loads: keep its C++ log (CUDA plugin registration errors on a machine
# without a GPU, and the like) out of the log. Every command imports this module first. Real
# failures still reach Python as exceptions. Set TF_CPP_MIN_LOG_LEVEL=0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VERBOSITIES = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_OK, EXIT_BAD_INPUT, EXIT_BAD_FLAG = 0, 1, 2


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`, also from whole-number float text ("128.0")."""
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


def float_above(minimum: float, *, inclusive: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number > `minimum` (>= with `inclusive`)."""
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


def float_range(minimum: float, maximum: float) -> Callable[[str], float]:
    """An argparse type: a number in [`minimum`, `maximum`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not minimum <= value < maximum:  # False for NaN too
            raise argparse.ArgumentTypeError(
                f"expected a number from {minimum} up to (not including) {maximum}, got {text!r}")
        return value

    parse.__name__ = f"float in [{minimum}, {maximum})"
    return parse


def flag(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    """A dataclass field that also carries its argparse help and type."""
    return dataclasses.field(default=default, metadata={"help": help, **argparse_kwargs})


def choices_help(notes: Mapping[str, str]) -> str:
    """'a (note), b or c' for the choices of a registry, each with its note when it has one.

    >>> choices_help({"sgd": "plain gradient descent", "adam": "", "rmsprop": ""})
    'sgd (plain gradient descent), adam or rmsprop'
    """
    items = [f"{name} ({note})" if note else name for name, note in notes.items()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def split_patterns(paths: str) -> List[str]:
    """'a*.csv, gs://b/c*' -> ['a*.csv', 'gs://b/c*'] (empty entries dropped)."""
    return [p.strip() for p in paths.split(",") if p.strip()]


def build_flag_parser(config_class: type, *, prog: str, description: str,
                      aliases: Optional[Dict[str, List[str]]] = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the frozen dataclass `config_class`.

    Each field is declared with `flag(default, help)`; booleans become `--flag/--no-flag`. The
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


def parse_flags(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
                make_config: Callable[..., Any]) -> Any:
    """Parse `argv` and build the config with `make_config(**flags)`.

    A `ConfigError` from `make_config` (flags that conflict) exits 2 with argparse's message,
    like a bad flag value.
    """
    args = parser.parse_args(argv)
    try:
        return make_config(**vars(args))
    except ConfigError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


class _HideDeprecationWarnings(logging.Filter):
    """TF 2.15 warns about every tf.compat.v1 / estimator call it will remove; the package
    pins TF < 2.16 precisely for that API, so those warnings tell the user nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "deprecat" not in message.lower() and "is not available in TF2" not in message


def setup_logging(verbosity: str) -> None:
    """Every command logs at `verbosity`; TensorFlow's own INFO lines only with DEBUG."""
    import tensorflow as tf  # here: the helpers layer does not need TensorFlow to be imported

    logging.basicConfig(level=verbosity, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("trainer").setLevel(verbosity)
    tf_logger = tf.get_logger()
    # One format for everything: TensorFlow's records go through the root handler only.
    for handler in list(tf_logger.handlers):
        tf_logger.removeHandler(handler)
    tf_logger.propagate = True
    if verbosity == "DEBUG":
        tf_logger.setLevel(logging.INFO)
    else:
        tf_logger.setLevel(logging.WARNING)
        tf_logger.addFilter(_HideDeprecationWarnings())


def run_command(main_function: Callable[[Any], str], argv: Optional[Sequence[str]], *,
                parser: argparse.ArgumentParser, make_config: Callable[..., Any],
                quiet_absl: bool = False) -> int:
    """Parse flags into a config, set up logging, print `main_function(config)`; the exit status.

    `quiet_absl` keeps absl's INFO notes (SavedModel fingerprints) out of the log unless DEBUG.
    """
    config = parse_flags(parser, argv, make_config)
    setup_logging(config.verbosity)
    if quiet_absl and config.verbosity != "DEBUG":
        logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        summary = main_function(config)
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Stopped as stop:
        print(str(stop), file=sys.stderr)
        return stop.exit_code
    print(summary)
    return EXIT_OK
