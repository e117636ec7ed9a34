"""The benchmark's data: CSV shards of noisy sine windows in the trainer's format, made once.

The shards are rewritten only when the requested size or shape differs from what a
`benchmark.json` beside them records, so repeated benchmark runs skip the minute of writing.
"""

import json
import logging
from typing import Dict, List

import tensorflow as tf

from trainer.data.schema import format_rows
from trainer.data.synthetic import sine_windows

logger = logging.getLogger(__name__)

SPEC_FILENAME = "benchmark.json"
CSV_DECIMALS = 5  # as the synthetic data set


def shard_paths(data_dir: str, shards: int) -> List[str]:
    return [f"{data_dir}/train-{index:05d}-of-{shards:05d}.csv" for index in range(shards)]


def ensure_dataset(data_dir: str, *, rows: int, shards: int, n_inputs: int, n_outputs: int,
                   seed: int) -> List[str]:
    """Write `rows` rows over `shards` CSV files in `data_dir` unless they are there already.

    Returns the shard paths. Rows are split as evenly as the count allows.
    """
    if rows < shards:
        raise ValueError(f"--rows {rows} is fewer than --shards {shards}; give at least one row "
                         "per shard")
    spec: Dict[str, int] = dict(rows=rows, shards=shards, n_inputs=n_inputs, n_outputs=n_outputs,
                                seed=seed)
    spec_path = f"{data_dir}/{SPEC_FILENAME}"
    paths = shard_paths(data_dir, shards)
    if tf.io.gfile.exists(spec_path) and all(tf.io.gfile.exists(p) for p in paths):
        with tf.io.gfile.GFile(spec_path) as handle:
            if json.load(handle) == spec:
                logger.info("reusing the %d rows in %s", rows, data_dir)
                return paths
    logger.info("writing %d rows of %d values in %d shards to %s", rows, n_inputs + n_outputs,
                shards, data_dir)
    tf.io.gfile.makedirs(data_dir)
    if tf.io.gfile.exists(spec_path):
        tf.io.gfile.remove(spec_path)  # a crash while rewriting must not leave a stale spec
    for index, path in enumerate(paths):
        shard_rows = rows // shards + (1 if index < rows % shards else 0)
        values = sine_windows(rows=shard_rows, n_inputs=n_inputs, n_outputs=n_outputs,
                              seed=seed + index)
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(format_rows(values, decimals=CSV_DECIMALS))
    with tf.io.gfile.GFile(spec_path, "w") as handle:
        json.dump(spec, handle)
    return paths
