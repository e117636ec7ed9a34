"""Entrypoint: parse flags, set up logging, run `train_and_evaluate(config)`.

    python -m trainer.task                                   # synthetic data, ./output
    python -m trainer.task --train_data_paths 'gs://b/train-*.csv' \\
        --eval_data_paths 'gs://b/eval-*.csv' --output_dir gs://b/runs/1 --train_steps 20000
    python -m trainer.task --help                            # every flag

Exit status: 0 on success, 2 for a bad flag, 1 for bad input (data, TF_CONFIG, output
directory) with a one-line message naming it; any other failure keeps its traceback.
"""

import json
import logging
import os
import sys
from typing import Optional, Sequence

# Before TensorFlow loads: keep its C++ log (CUDA plugin registration errors on a machine
# without a GPU, and the like) out of the progress log. Real failures still reach Python as
# exceptions. Set TF_CPP_MIN_LOG_LEVEL=0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from trainer.config import parse_config  # noqa: E402
from trainer.errors import TrainerError  # noqa: E402
from trainer.experiment import train_and_evaluate  # noqa: E402

logger = logging.getLogger("trainer")


class _HideDeprecationWarnings(logging.Filter):
    """TF 2.15 warns about every tf.compat.v1 / estimator call it will remove; the package
    pins TF < 2.16 precisely for that API, so those warnings tell the user nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "deprecat" not in message.lower() and "is not available in TF2" not in message


def setup_logging(verbosity: str) -> None:
    """The trainer logs at `verbosity`; TensorFlow's own INFO lines only with DEBUG."""
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


def summarize(metrics: Optional[dict]) -> str:
    """The CLI's closing line(s)."""
    if not metrics:
        return "training finished; this process does not evaluate (see the evaluator's output)"
    skill = 1.0 - metrics["rmse"] / metrics["naive_rmse"] if metrics.get("naive_rmse") else 0.0
    return (f"done: step {metrics['global_step']}  rmse {metrics['rmse']:.4f}  "
            f"naive_rmse {metrics['naive_rmse']:.4f}  ({skill:+.0%} vs naive)  "
            f"mae {metrics['mae']:.4f}\nSavedModel: {metrics['saved_model_path']}\n"
            f"metrics: {json.dumps(metrics, sort_keys=True)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    config = parse_config(argv)
    setup_logging(config.verbosity)
    try:
        metrics = train_and_evaluate(config)
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summarize(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
