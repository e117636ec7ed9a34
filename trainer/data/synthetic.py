"""The built-in data set: noisy sine waves of varied frequency, amplitude and phase, as CSV shards.

Each row is one window of its own sine wave, `n_inputs` past values then `n_outputs` future
values, in the trainer's CSV format. The same arguments always give the same bytes, so a
resumed run trains on the same data and any process of a cluster can (re)write the shards.

    python -c "from trainer.data.synthetic import write_dataset
    write_dataset('data', n_inputs=20, n_outputs=5)"
"""

from __future__ import annotations

import json
import logging
import time
from typing import Dict, List

import numpy as np

from trainer.data.schema import format_rows
from trainer.util.errors import DataError
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

TRAIN_SHARDS = 8
EVAL_SHARDS = 2
ROWS_PER_SHARD = 2000
NOISE_STDDEV = 0.1
SPEC_FILENAME = "dataset.json"
CSV_DECIMALS = 5  # far below the noise; keeps the shards small


def sine_windows(*, rows: int, n_inputs: int, n_outputs: int, seed: int) -> np.ndarray:
    """`rows` noisy sine windows [rows, n_inputs + n_outputs], float32.

    Frequency 0.1 to 0.6 radians per step, amplitude 0.5 to 1.5, random phase, Gaussian noise.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(n_inputs + n_outputs)
    frequency = rng.uniform(0.1, 0.6, size=(rows, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(rows, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(rows, 1))
    noise = rng.normal(0.0, NOISE_STDDEV, size=(rows, len(steps)))
    return (amplitude * np.sin(frequency * steps + phase) + noise).astype(np.float32)


def _write_csv(path: str, values: np.ndarray) -> None:
    write_text_atomically(path, format_rows(values, decimals=CSV_DECIMALS))


def _spec(*, n_inputs: int, n_outputs: int, seed: int, rows_per_shard: int) -> Dict[str, object]:
    return {"n_inputs": n_inputs, "n_outputs": n_outputs, "seed": seed,
            "rows_per_shard": rows_per_shard, "train_shards": TRAIN_SHARDS,
            "eval_shards": EVAL_SHARDS, "noise_stddev": NOISE_STDDEV}


def _patterns(directory: str) -> Dict[str, str]:
    return {"train": f"{directory}/train-*.csv", "eval": f"{directory}/eval-*.csv"}


def _has_dataset(directory: str, spec: Dict[str, object]) -> bool:
    """True when `directory` holds a complete data set made with `spec` (its spec file is
    written last)."""
    spec_path = f"{directory}/{SPEC_FILENAME}"
    if not tf.io.gfile.exists(spec_path):
        return False
    with tf.io.gfile.GFile(spec_path, "r") as handle:
        return json.loads(handle.read()) == spec


def wait_for_dataset(directory: str, *, n_inputs: int, n_outputs: int, seed: int = 42,
                     rows_per_shard: int = ROWS_PER_SHARD, timeout_secs: float = 600,
                     poll_secs: float = 1.0) -> Dict[str, str]:
    """Wait until another process (the chief) has written the data set; returns its patterns."""
    directory = directory.rstrip("/")
    spec = _spec(n_inputs=n_inputs, n_outputs=n_outputs, seed=seed, rows_per_shard=rows_per_shard)
    deadline = time.time() + timeout_secs
    logged = False
    while not _has_dataset(directory, spec):
        if time.time() > deadline:
            raise DataError(f"the chief has not written the synthetic data set to {directory} "
                            f"within {timeout_secs:.0f} s; check the chief's log")
        if not logged:
            logger.info("waiting for the chief to write the synthetic data set to %s", directory)
            logged = True
        time.sleep(poll_secs)
    return _patterns(directory)


def write_dataset(directory: str, *, n_inputs: int, n_outputs: int, seed: int = 42,
                  rows_per_shard: int = ROWS_PER_SHARD) -> Dict[str, str]:
    """Write train-*.csv and eval-*.csv shards into `directory` (local or gs://).

    Reuses the shards already there when they were made with the same arguments.
    Returns the file patterns: {"train": ".../train-*.csv", "eval": ".../eval-*.csv"}.
    """
    directory = directory.rstrip("/")
    patterns = _patterns(directory)
    spec = _spec(n_inputs=n_inputs, n_outputs=n_outputs, seed=seed, rows_per_shard=rows_per_shard)
    spec_path = f"{directory}/{SPEC_FILENAME}"
    if _has_dataset(directory, spec):
        logger.info("reusing the synthetic data in %s", directory)
        return patterns
    tf.io.gfile.makedirs(directory)
    written: List[str] = []
    for split, shards, offset in (("train", TRAIN_SHARDS, 0), ("eval", EVAL_SHARDS, 1000)):
        for shard in range(shards):
            values = sine_windows(rows=rows_per_shard, n_inputs=n_inputs, n_outputs=n_outputs,
                                  seed=seed * 10007 + offset + shard)
            path = f"{directory}/{split}-{shard:05d}-of-{shards:05d}.csv"
            _write_csv(path, values)
            written.append(path)
    # The spec file last: its presence tells waiting processes that every shard is complete.
    write_text_atomically(spec_path, json.dumps(spec, indent=2, sort_keys=True) + "\n")
    logger.info("wrote %d synthetic shards of %d rows to %s", len(written), rows_per_shard,
                directory)
    return patterns
