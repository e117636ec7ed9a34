"""The command-line kit every command uses: dataclass fields to flags, the log set-up, exit codes.

A command declares its flags once, as the fields of a frozen dataclass made with `flag(...)`;
`build_flag_parser` turns them into argparse flags and `run_command` parses them, sets up
logging and runs the command. Exit status, the same for every command (`trainer.task`,
`trainer.prepare`, `trainer.evaluate`, `trainer.predict`):

- 0 on success;
- 2 for a bad flag or flags that conflict (argparse's `usage: ... error: ...`);
- 1 for bad input (a `TrainerError`, printed as one `error: ...` line), and for an error of
  Cloud Storage with gs:// paths (one line naming the flag, the path and what to check:
  `trainer.util.gcs`; the traceback with --verbosity DEBUG);
- 128 + the signal number when a signal stopped it (`Stopped`: 143 for SIGTERM, 130 for
  SIGINT), with one line saying where it stopped;
- any other failure keeps its traceback.
"""

import argparse
import dataclasses
import difflib
import logging
import math
import os
import sys
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from trainer.util.errors import ConfigError, Stopped, TrainerError
from trainer.util.gcs import check_reachable, gcs_paths_by_flag, storage_error_message

# Before TensorFlow loads: keep its C++ log (CUDA plugin registration errors on a machine
# without a GPU, and the like) out of the log. Every command imports this module, and TensorFlow
# loads only when a command first uses it (`trainer.util.lazy`), after this line. Real
# failures still reach Python as exceptions. Set TF_CPP_MIN_LOG_LEVEL=0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

logger = logging.getLogger(__name__)

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


# What --model_dir takes, in every command that loads an export (`trainer.model.serving`'s
# `resolve_saved_model` finds the export in it).
MODEL_DIR_HELP = ("SavedModel directory, or a training output directory (its best export, "
                  "export/best/<timestamp>, else its newest export/latest/).")


def model_dir_flag(help: str = MODEL_DIR_HELP) -> Any:
    """The field of --model_dir, the exported model a command loads (`help`: a command's own
    words for it)."""
    return flag("", help)


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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's help with its default, except where there is none to show: a flag whose
    default is empty (a path to give, a value that comes from elsewhere) shows no
    "(default: )"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in ("", None):
            return action.help or ""
        return super()._get_help_string(action)


class FlagParser(argparse.ArgumentParser):
    """argparse's parser, whose "unrecognized arguments" error says what to type instead: the
    parser's own flag closest to a mistyped one ("did you mean --n_inputs?"), or the quotes an
    unquoted pattern needed. Every command's parser is one (`build_flag_parser`, and the
    launcher's and the upload tool's)."""

    def parse_args(self, args: Optional[Sequence[str]] = None,  # type: ignore[override]
                   namespace: Optional[argparse.Namespace] = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized_arguments_message(
                list(sys.argv[1:] if args is None else args), extras, parser=self))
        return parsed


def build_flag_parser(config_class: type, *, prog: str, description: str,
                      aliases: Optional[Dict[str, List[str]]] = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the frozen dataclass `config_class`.

    Each field is declared with `flag(default, help)`; booleans become `--flag/--no-flag`. The
    trainer's `TrainerConfig` and the configs of `trainer.prepare`, `trainer.evaluate` and
    `trainer.predict` are all parsed this way, so a flag is declared exactly once.
    """
    parser = FlagParser(prog=prog, description=description, formatter_class=HelpFormatter,
                        allow_abbrev=False)
    # The fields' types, also where the module has `from __future__ import annotations` (its
    # annotations are text then: `trainer.util.lazy`).
    types = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        names = ["--" + field.name] + list((aliases or {}).get(field.name, []))
        kwargs = dict(field.metadata)
        if types[field.name] is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif "type" not in kwargs:
            kwargs["type"] = types[field.name]
        parser.add_argument(*names, dest=field.name, default=field.default, **kwargs)
    return parser


_NOT_GIVEN = object()  # a flag's value until the command line gives it one


def parse_flags(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
                make_config: Callable[..., Any]) -> Any:
    """Parse `argv` and build the config with `make_config(**flags)`, passing the flags given on
    the command line only: the others keep their declared defaults, and a `make_config` that
    fills some from elsewhere (the trainer's, from prepare.json) knows which were typed.

    A `ConfigError` from `make_config` (flags that conflict) exits 2 with argparse's message,
    like a bad flag value; so do words that are no flag, with the flag meant or a hint when they
    are the files of a pattern the shell expanded (`FlagParser`).
    """
    return build_config(parser, make_config, given_flags(parser, argv))


def given_flags(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> Dict[str, Any]:
    """The flags on the command line `argv`, by name, parsed (words that are no flag exit 2)."""
    namespace = argparse.Namespace(**{action.dest: _NOT_GIVEN for action in parser._actions
                                      if action.dest != "help"})
    args = parser.parse_args(argv, namespace)  # words that are no flag: `FlagParser`
    return {name: value for name, value in vars(args).items() if value is not _NOT_GIVEN}


def build_config(parser: argparse.ArgumentParser, make_config: Callable[..., Any],
                 given: Dict[str, Any]) -> Any:
    """`make_config(**given)`; its ConfigError exits 2 with argparse's message."""
    try:
        return make_config(**given)
    except ConfigError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def unrecognized_arguments_message(argv: Sequence[str], extras: Sequence[str], *,
                                   parser: Optional[argparse.ArgumentParser] = None) -> str:
    """argparse's "unrecognized arguments: ...", and what to do instead: the flag of `parser`
    meant by a mistyped one, or, when they are the files of an unquoted pattern, the quotes:
    the shell expands `--data_paths prepared/test-*.csv` into one file for the flag and the
    others as stray words (that hint only when they all exist: the shell expands a pattern
    into existing files only).

    >>> parser = FlagParser(prog="p")
    >>> _ = parser.add_argument("--n_inputs")
    >>> unrecognized_arguments_message(["--n_input", "28"], ["--n_input", "28"], parser=parser)
    'unrecognized arguments: --n_input 28 (did you mean --n_inputs?)'
    """
    message = f"unrecognized arguments: {' '.join(extras)}"
    suggestions = flag_suggestions(extras, parser) if parser is not None else ""
    if suggestions:
        return f"{message} ({suggestions})"
    first = next((index for index, word in enumerate(argv) if word == extras[0]), None)
    if first is None or first < 1 or extras[0].startswith("-"):
        return message
    if argv[first - 1].startswith("--") and "=" in argv[first - 1]:
        flag_name, value = argv[first - 1].split("=", 1)
    elif first >= 2 and argv[first - 2].startswith("--") and not argv[first - 1].startswith("-"):
        flag_name, value = argv[first - 2], argv[first - 1]
    else:
        return message
    files = [value] + [word for word in argv[first:] if not word.startswith("-")]
    files = files[:files.index(extras[-1]) + 1] if extras[-1] in files else files
    if not all(os.path.exists(path) for path in files):
        return message  # not what a shell's expansion gives: only existing files
    return (f"{message}. {flag_name} got {len(files)} files ({files[0]}, {files[1]}, ...): the "
            f"shell expanded an unquoted pattern. Quote it, e.g. {flag_name} "
            f"'{_pattern_of(files)}', so that the command reads every file itself")


def flag_suggestions(words: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """'did you mean --a?' for each of `words` that looks like a flag and is close to one of
    `parser`'s own (or its subcommands'); empty when none is.

    >>> parser = FlagParser(prog="p")
    >>> _ = parser.add_argument("--n_inputs"), parser.add_argument("--season")
    >>> flag_suggestions(["--n_input", "28", "--seasons=7", "--zzz"], parser)
    'did you mean --n_inputs? did you mean --season?'
    """
    options = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                options.update(subparser._option_string_actions)
    options = {option for option in options if option.startswith("--") and option != "--help"}
    found = []
    for word in words:
        if not word.startswith("--"):
            continue
        name = word.split("=", 1)[0]
        close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.75)
        if close:
            found.append(f"did you mean {close[0]}?")
    return " ".join(found)


def _pattern_of(files: Sequence[str]) -> str:
    """A glob pattern matching `files`: their common beginning and end around a `*`.

    >>> _pattern_of(["p/test-00000-of-00004.csv", "p/test-00003-of-00004.csv"])
    'p/test-*-of-00004.csv'
    """
    prefix = os.path.commonprefix(list(files))
    suffix = os.path.commonprefix([path[len(prefix):][::-1] for path in files])[::-1]
    return prefix.rstrip("0123456789") + "*" + suffix.lstrip("0123456789")


# TensorFlow's INFO lines that are shown at INFO too: each says that something the user asked
# for did not happen. The Estimator's after a checkpoint it does not evaluate, because it came
# within --eval_throttle_secs of the previous evaluation (early stopping does not count it).
TENSORFLOW_INFO_SHOWN = ("Skip the current checkpoint eval due to throttle secs",)


class _QuietTensorFlow(logging.Filter):
    """TensorFlow's records below DEBUG verbosity: its warnings, except deprecations (TF 2.15
    warns about every tf.compat.v1 / estimator call it will remove; the package pins TF < 2.16
    precisely for that API, so those warnings tell the user nothing), and of its INFO lines only
    those of TENSORFLOW_INFO_SHOWN."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno < logging.WARNING:
            return message.startswith(TENSORFLOW_INFO_SHOWN)
        return "deprecat" not in message.lower() and "is not available in TF2" not in message


_QUIET_TENSORFLOW = _QuietTensorFlow()


def setup_logging(verbosity: str) -> None:
    """Every command logs at `verbosity`; TensorFlow's own INFO lines only with DEBUG, but for
    those of TENSORFLOW_INFO_SHOWN."""
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
        tf_logger.removeFilter(_QUIET_TENSORFLOW)
    else:
        tf_logger.setLevel(verbosity)
        tf_logger.addFilter(_QUIET_TENSORFLOW)


def run_command(main_function: Callable[[Any], str], argv: Optional[Sequence[str]], *,
                parser: argparse.ArgumentParser, make_config: Callable[..., Any],
                quiet_absl: bool = False,
                storage_unused: Callable[[Mapping[str, Any]], bool] = lambda given: False) -> int:
    """Parse flags into a config, set up logging, print `main_function(config)`; the exit status.

    With gs:// paths among the flags given, Cloud Storage must answer first (`check_reachable`),
    and any error of it, from the config's own reads (prepare.json) on, becomes one line
    (`storage_error_message`): the same for every command, except with the flags for which
    `storage_unused(given flags)` says that it reads and writes no gs:// file. `quiet_absl`
    keeps absl's INFO notes (SavedModel fingerprints) out of the log unless DEBUG.
    """
    given = given_flags(parser, argv)
    storage_paths = {} if storage_unused(given) else gcs_paths_by_flag(given)
    try:
        check_reachable(storage_paths)
        config = build_config(parser, make_config, given)
        setup_logging(config.verbosity)
        if quiet_absl and config.verbosity != "DEBUG":
            logging.getLogger("absl").setLevel(logging.WARNING)
        summary = main_function(config)
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Stopped as stop:
        print(str(stop), file=sys.stderr)
        return stop.exit_code
    except Exception as error:
        message = storage_error_message(error, storage_paths)
        if message is None:
            raise
        logger.debug("the Cloud Storage error in full", exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary)
    return EXIT_OK
