"""Input candidates: rows per second from CSV shards into batches of tensors.

- `trainer`: the trainer's own training input_fn (what `trainer.task` trains from).
- `reference`: the design of the course code this package replaces: every line decoded on its
  own by `decode_csv`, a shuffle buffer of rows, then batching.
- `pyarrow`: `pyarrow.csv.read_csv`, multi-threaded C++ into columns; what parsing CSV can
  cost at best on this machine, not a training pipeline.

The TensorFlow candidates are drained inside the graph (`Dataset.reduce`), so that a Python
loop over batches does not cap what they can deliver.
"""

import dataclasses
import math
import time
from typing import Callable, Dict, Sequence

import tensorflow as tf

from benchmarks.measure import Stopwatch
from trainer.data.schema import build_features
from trainer.training.config import TrainerConfig
from trainer.training.data_source import make_train_input_fn

REFERENCE_SHUFFLE_BATCHES = 10  # the course code's buffer: 10 x batch_size rows
READ_THROUGH_BYTES = 16 << 20


def reference_dataset(files: Sequence[str], *, batch_size: int, n_inputs: int,
                      n_outputs: int) -> tf.data.Dataset:
    """The course code's training pipeline: TextLineDataset -> decode_csv per line -> batch."""
    record_defaults = [[0.0]] * (n_inputs + n_outputs)

    def decode_line(line: tf.Tensor):
        values = tf.stack(tf.io.decode_csv(line, record_defaults=record_defaults))
        return build_features(values[:n_inputs]), values[n_inputs:]

    dataset = tf.data.TextLineDataset(list(files)).map(decode_line)
    dataset = dataset.shuffle(REFERENCE_SHUFFLE_BATCHES * batch_size).repeat()
    return dataset.batch(batch_size)


def drain(dataset: tf.data.Dataset, *, rows: int, rows_per_element: int) -> float:
    """Take elements until `rows` rows have passed; returns rows per second.

    An element is (features, labels [..., n_outputs]): one batch, or with --steps_per_run
    several stacked; its rows are all of the labels' leading dimensions.
    """
    elements = math.ceil(rows / rows_per_element)

    def count_rows(total: tf.Tensor, element) -> tf.Tensor:
        return total + tf.reduce_prod(tf.shape(element[1], out_type=tf.int64)[:-1])

    stopwatch = Stopwatch()
    stopwatch.start()
    seen = int(dataset.take(elements).reduce(tf.constant(0, tf.int64), count_rows))
    seconds = stopwatch.stop()
    if seen < rows:
        raise RuntimeError(f"the pipeline gave {seen} rows, expected at least {rows}")
    return seen / seconds


@dataclasses.dataclass(frozen=True)
class Drained:
    """What `drain_timed` measured: the seconds until the first element was out (iterator,
    first reads, first batch), and rows per second after it and overall."""

    first_batch_secs: float
    rate_after_first: float
    rate: float


def drain_timed(dataset: tf.data.Dataset, *, rows: int, rows_per_element: int) -> Drained:
    """`drain`, with the first element timed apart: a one-off start (a file read and decoded
    whole, a function compiled) is not the rate training then runs at.

    The time of the first element is taken inside the graph (`tf.timestamp`, the same wall
    clock as `time.time`), so the drain stays one `Dataset.reduce`.
    """
    elements = math.ceil(rows / rows_per_element)
    if elements < 2:
        raise ValueError(f"{rows} rows are one element of {rows_per_element}: nothing after the first")

    def step(state, element):
        total, first, first_rows = state
        total = total + tf.reduce_prod(tf.shape(element[1], out_type=tf.int64)[:-1])
        is_first = tf.equal(first, 0.0)
        return (total, tf.where(is_first, tf.timestamp(), first),
                tf.where(is_first, total, first_rows))

    started = time.time()
    zero = tf.constant(0, tf.int64)
    seen, first, first_rows = dataset.take(elements).reduce(
        (zero, tf.constant(0.0, tf.float64), zero), step)
    ended = time.time()
    seen, first, first_rows = int(seen), float(first), int(first_rows)
    if seen < rows:
        raise RuntimeError(f"the pipeline gave {seen} rows, expected at least {rows}")
    return Drained(first_batch_secs=first - started,
                   rate_after_first=(seen - first_rows) / (ended - first), rate=seen / (ended - started))


def pyarrow_rows_per_sec(files: Sequence[str]) -> float:
    """Read every file with pyarrow.csv (all cores); rows per second."""
    from pyarrow import csv  # the `bench` extra; imported here so the rest works without it

    options = csv.ReadOptions(autogenerate_column_names=True)
    stopwatch = Stopwatch()
    stopwatch.start()
    rows = sum(csv.read_csv(path, read_options=options).num_rows for path in files)
    return rows / stopwatch.stop()


def read_through(files: Sequence[str]) -> None:
    """Read every file once, untimed, so that each candidate starts with them in the page cache.

    The machine's kernel reclaims cold page cache eagerly; without this, a varying share of
    each pass came from disk and the figures measured the disk as much as the parsing.
    """
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as handle:
            while handle.read(READ_THROUGH_BYTES):
                pass


def input_candidates(config: TrainerConfig, *, files: Sequence[str],
                     rows: int) -> Dict[str, Callable[[], float]]:
    """name -> a function that reads `rows` rows once and returns rows per second."""
    shape = dict(batch_size=config.batch_size, n_inputs=config.n_inputs,
                 n_outputs=config.n_outputs)
    measurements = {
        "trainer": lambda: drain(make_train_input_fn(config, files=list(files))(), rows=rows,
                                 rows_per_element=config.batch_size * config.steps_per_run),
        # pyarrow right after the trainer: the ratio of the two is the tightest target, and
        # the machine's speed drifts less over seconds than over the reference's minute.
        "pyarrow": lambda: pyarrow_rows_per_sec(files),
        "reference": lambda: drain(reference_dataset(files, **shape), rows=rows,
                                   rows_per_element=config.batch_size),
    }

    def with_files_cached(measurement: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            read_through(files)
            return measurement()
        return run

    return {name: with_files_cached(m) for name, m in measurements.items()}


INPUT_DESCRIPTIONS = {
    "trainer": "trainer.data.pipeline training input_fn (chunked vectorized decode, pooled shuffle)",
    "reference": "course design: TextLineDataset, decode_csv per line, shuffle, batch",
    "pyarrow": "pyarrow.csv.read_csv of every file (multi-threaded C++, parse only)",
}
