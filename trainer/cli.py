"""What the command-line tools `trainer.prepare`, `trainer.evaluate` and `trainer.predict` share:
flags into a frozen config, the trainer's log format, and its exit codes.

Exit status: 0 on success, 2 for a bad flag (argparse), 1 for bad input (a `TrainerError`,
printed as one `error: ...` line); any other failure keeps its traceback.
"""

import argparse
import logging
import os
import sys
from typing import Any, Callable, Optional, Sequence

from trainer.errors import TrainerError

# Imported by each tool before TensorFlow logs anything: keep TensorFlow's C++ start-up noise out
# of the log, as trainer.task does. Set TF_CPP_MIN_LOG_LEVEL=0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(main_function: Callable[[Any], str], argv: Optional[Sequence[str]], *,
            parser: argparse.ArgumentParser, config_class: type) -> int:
    """Parse flags into `config_class`, set up logging, print `main_function(config)`."""
    args = parser.parse_args(argv)
    config = config_class(**vars(args))
    from trainer.task import setup_logging  # the trainer's log format and TF log filter

    setup_logging(config.verbosity)
    if config.verbosity != "DEBUG":  # SavedModel loading logs fingerprint notes through absl
        logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        summary = main_function(config)
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0
