"""Input pipeline: CSV shards (local or gs://) into batches of features and labels.

A row is `n_inputs` past values followed by `n_outputs` future values, no header:

    0.12,0.35,0.51,...,0.80,0.77

`build_features` is the one transform from raw input values to model features; the training
input function and the serving receiver both call it, so training and serving cannot drift.
Reading is tf.data only (text lines from files read in parallel, decoded a whole batch at a
time); nothing here opens a data path with `open` or `os.path`, so `gs://` works everywhere.
"""

import functools
import logging
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from trainer.errors import DataError

logger = logging.getLogger(__name__)

FEATURE_KEY = "rawdata"  # the serving signature's input name and the model's feature key
MAX_PARALLEL_FILES = 8  # files read at once by one process
CHUNK_ROWS = 1024  # training decodes lines this many at a time
# Training splits a file into lines one piece of this size at a time (see `read_lines`),
# reading ahead a larger block per request (few requests on gs://).
READ_PIECE_BYTES = 128 << 10
READ_AHEAD_BYTES = 1 << 20


def build_features(rawdata: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Raw past values [batch, n_inputs] -> the model's features dict (training and serving)."""
    return {FEATURE_KEY: tf.cast(rawdata, tf.float32)}


def expand_file_patterns(patterns: Sequence[str], *, flag: str) -> List[str]:
    """Every file matched by the patterns, in sorted order; an error names a pattern matching none.

    For example ["data/train-*.csv"] -> ["data/train-0.csv", "data/train-1.csv"].
    """
    if not patterns:
        raise DataError(f"{flag} is empty; give one or more file patterns")
    files: List[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise DataError(f"{flag}: pattern {pattern!r} matches no file; check the path "
                            "(and the bucket, for gs://)")
        files.extend(path for path in matched if path not in files)
    return files


def describe_row_problem(line: str, *, n_inputs: int, n_outputs: int) -> Optional[str]:
    """What is wrong with one CSV line, or None when it is a valid row.

    >>> describe_row_problem("1,2,x", n_inputs=2, n_outputs=1)
    "value 3 is 'x', not a number"
    """
    expected = n_inputs + n_outputs
    if not line.strip():
        return "is empty"
    fields = line.rstrip("\r\n").split(",")
    if len(fields) != expected:
        return (f"has {len(fields)} values, expected {expected} "
                f"(--n_inputs {n_inputs} + --n_outputs {n_outputs})")
    for position, field in enumerate(fields, start=1):
        try:
            value = float(field)
        except ValueError:
            return f"value {position} is {field!r}, not a number"
        if not math.isfinite(value):
            return f"value {position} is {field.strip()!r}; NaN and infinity are not allowed"
    return None


def check_files(files: Sequence[str], *, n_inputs: int, n_outputs: int) -> None:
    """Fail before training on directories, empty files and first rows of the wrong shape.

    Only the first row of each file is read: the full scan happens in `find_first_bad_row`,
    once the pipeline has hit a bad row, so that good data costs nothing extra.
    """
    for path in files:
        stat = tf.io.gfile.stat(path)
        if stat.is_directory:
            raise DataError(f"{path} is a directory; use a file pattern such as {path}/*.csv")
        if stat.length == 0:
            raise DataError(f"{path} is empty (0 bytes); remove it or narrow the file pattern")
        with tf.io.gfile.GFile(path, "r") as handle:
            first_line = handle.readline()
        problem = describe_row_problem(first_line, n_inputs=n_inputs, n_outputs=n_outputs)
        if problem:
            raise DataError(f"row 1 of {path} {problem}. Rows must be {n_inputs} inputs then "
                            f"{n_outputs} outputs, comma-separated, with no header")


def find_first_bad_row(files: Sequence[str], *, n_inputs: int, n_outputs: int) -> Optional[str]:
    """Scan the files for the first row that cannot be decoded: 'row R of FILE has ...' or None."""
    for path in files:
        with tf.io.gfile.GFile(path, "r") as handle:
            for row_number, line in enumerate(handle, start=1):
                problem = describe_row_problem(line, n_inputs=n_inputs, n_outputs=n_outputs)
                if problem:
                    return f"row {row_number} of {path} {problem}"
    return None


def decode_csv_values(lines: tf.Tensor, *, n_values: int) -> tf.Tensor:
    """CSV lines [rows] -> values [rows, n_values], float32, in one vectorized op.

    A line with another number of values, a field that is no number, NaN or inf fails the op
    (InvalidArgumentError); the caller then finds the file and row with `find_first_bad_row`.
    """
    required_float = tf.constant([], dtype=tf.float32)  # empty default: a missing value is an error
    columns = tf.io.decode_csv(lines, record_defaults=[required_float] * n_values)
    return tf.debugging.check_numerics(tf.stack(columns, axis=1), "CSV rows hold NaN or inf")


def split_features_and_labels(values: tf.Tensor, *, n_inputs: int
                              ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """Rows [..., n_inputs + n_outputs] -> (features, labels [..., n_outputs])."""
    return build_features(values[..., :n_inputs]), values[..., n_inputs:]


def cut_into_batches(leftover: tf.Tensor, rows: tf.Tensor, *, batch_size: int, n_inputs: int,
                     batches_per_element: int = 1
                     ) -> Tuple[tf.Tensor, Tuple[Dict[str, tf.Tensor], tf.Tensor]]:
    """Rows left from before, then new rows -> (rows left now, whole batches of them).

    The batches are (features [batches, batch_size, n_inputs], labels [...]): `unbatch`
    hands them on one batch at a time, without touching single rows. With
    `batches_per_element` > 1 they are grouped: [groups, batches_per_element, batch_size, ...].

    >>> left, (features, labels) = cut_into_batches(
    ...     tf.constant([[1., 10.]]), tf.constant([[2., 20.], [3., 30.], [4., 40.]]),
    ...     batch_size=3, n_inputs=1)
    >>> features["rawdata"].numpy().tolist(), labels.numpy().tolist(), left.numpy().tolist()
    ([[[1.0], [2.0], [3.0]]], [[[10.0], [20.0], [30.0]]], [[4.0, 40.0]])
    """
    rows = tf.concat([leftover, rows], axis=0)
    group_rows = batches_per_element * batch_size
    whole = tf.shape(rows)[0] // group_rows * group_rows
    group_shape = [batches_per_element] if batches_per_element > 1 else []
    batches = tf.reshape(rows[:whole], [-1, *group_shape, batch_size, rows.shape[-1]])
    return rows[whole:], split_features_and_labels(batches, n_inputs=n_inputs)


def read_lines(path: tf.Tensor, size: tf.Tensor, *, piece_bytes: int = READ_PIECE_BYTES
               ) -> tf.data.Dataset:
    """The lines of one file of `size` bytes, as string vectors of up to `CHUNK_ROWS` lines.

    Unlike TextLineDataset, no line becomes a dataset element of its own: the file is read
    `piece_bytes` at a time, each piece is split into lines by one op, and a line cut by a
    piece's end is finished with the next piece. Line ends may be \\n or \\r\\n, and the last
    line needs none. A blank line stays in, as an empty string, so that decoding it fails like
    any other bad row. Chunks never span two files.
    """
    size = tf.cast(size, tf.int64)
    tail = size % piece_bytes
    body = tf.data.FixedLengthRecordDataset(path, record_bytes=piece_bytes, footer_bytes=tail,
                                            buffer_size=READ_AHEAD_BYTES)
    last_piece = tf.data.FixedLengthRecordDataset(  # the shorter rest; none when tail is 0
        path, record_bytes=tf.maximum(tail, 1), header_bytes=size - tail
    ).take(tf.cast(tail > 0, tf.int64))
    end = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(True)))
    pieces = body.concatenate(last_piece).map(lambda piece: (piece, tf.constant(False)))

    def split_lines(unfinished: tf.Tensor, piece_and_end: Tuple[tf.Tensor, tf.Tensor]):
        piece, at_end = piece_and_end
        lines = tf.strings.split(tf.strings.join([unfinished, piece]), "\n")
        # The last part may go on in the next piece; at the end of the file it is a line of
        # its own unless empty (the file ended with a line end).
        last_is_whole = at_end & (tf.strings.length(lines[-1]) > 0)
        whole = tf.size(lines) - 1 + tf.cast(last_is_whole, tf.int32)
        unfinished = tf.where(at_end, tf.constant(""), lines[-1])
        return unfinished, tf.strings.strip(lines[:whole])  # strip: \r of \r\n line ends

    return pieces.concatenate(end).scan(tf.constant(""), split_lines).rebatch(CHUNK_ROWS)


def decode_csv_batch(lines: tf.Tensor, *, n_inputs: int, n_outputs: int
                     ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """A batch of CSV lines [batch] -> (features, labels [batch, n_outputs]), vectorized."""
    values = decode_csv_values(lines, n_values=n_inputs + n_outputs)
    return split_features_and_labels(values, n_inputs=n_inputs)


def make_input_fn(*, files: Sequence[str], training: bool, batch_size: int, n_inputs: int,
                  n_outputs: int, shuffle_buffer_size: int = 10000, seed: int = 0,
                  num_workers: int = 1, worker_index: int = 0, steps_per_run: int = 1
                  ) -> Callable[[], tf.data.Dataset]:
    """An Estimator input_fn over `files`.

    Training shuffles and repeats forever and, when there are at least as many files as
    training processes, gives each process (`worker_index` of `num_workers`) its own files.
    With `steps_per_run` > 1, each training element is that many batches stacked
    ([steps_per_run, batch_size, ...], for `trainer.model.train_several_steps`).
    Evaluation makes exactly one ordered pass.

    Training never handles a row on its own: `read_lines` reads up to `MAX_PARALLEL_FILES`
    files at once in pieces and cuts them into chunks of `CHUNK_ROWS` lines, each chunk is
    decoded by one vectorized op, about
    `shuffle_buffer_size` rows from several files are pooled and shuffled by one permutation,
    and the pool is cut into whole batches by one reshape. A per-row pipeline (decode each
    line, shuffle buffer of rows, batch) spends most of its time in per-element overhead; see
    the README's Performance section.
    """
    files = list(files)
    shard_files = training and 1 < num_workers <= len(files)
    if shard_files:
        files = files[worker_index::num_workers]
    decode = functools.partial(decode_csv_batch, n_inputs=n_inputs, n_outputs=n_outputs)
    decode_values = functools.partial(decode_csv_values, n_values=n_inputs + n_outputs)

    def input_fn() -> tf.data.Dataset:
        if shard_files:
            logger.info("training process %d of %d reads %d of the training files", worker_index,
                        num_workers, len(files))
        elif training and num_workers > 1:
            logger.warning("only %d training files for %d training processes: each reads all of "
                           "them, in its own shuffled order; shard the data into at least %d "
                           "files to split it", len(files), num_workers, num_workers)
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if not training:
            dataset = dataset.interleave(
                tf.data.TextLineDataset, cycle_length=min(len(files), MAX_PARALLEL_FILES),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return dataset.batch(batch_size).map(decode, num_parallel_calls=tf.data.AUTOTUNE) \
                .prefetch(tf.data.AUTOTUNE)

        worker_seed = seed + worker_index
        sizes = [tf.io.gfile.stat(path).length for path in files]
        dataset = tf.data.Dataset.from_tensor_slices((files, sizes))
        dataset = dataset.shuffle(len(files), seed=worker_seed).repeat()
        dataset = dataset.interleave(
            read_lines, cycle_length=min(len(files), MAX_PARALLEL_FILES),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        dataset = dataset.map(decode_values, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=False)
        # Chunks come from different files in turn, so a pool mixes several files.
        chunks_per_pool = max(1, -(-shuffle_buffer_size // CHUNK_ROWS))
        dataset = dataset.ragged_batch(chunks_per_pool).map(
            lambda pool: tf.random.shuffle(pool.values, seed=worker_seed),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        # Each pool becomes whole batches in one op; its last rows start the next pool's.
        no_rows = tf.zeros([0, n_inputs + n_outputs], tf.float32)
        dataset = dataset.scan(no_rows, functools.partial(
            cut_into_batches, batch_size=batch_size, n_inputs=n_inputs,
            batches_per_element=steps_per_run))
        # The autotuner sometimes settled, for a whole pass, on a setting that left one of two
        # cores idle: half speed in 4 of 45 passes on a 2-core machine, none of 45 without it.
        # Off, the AUTOTUNE stages run at TensorFlow's default parallelism instead of a tuned one.
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.unbatch().prefetch(tf.data.AUTOTUNE).with_options(options)

    return input_fn


def make_serving_input_receiver_fn(
        *, n_inputs: int) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Serving receiver: float32 `rawdata` [batch, n_inputs] through the same `build_features`."""

    def serving_input_receiver_fn() -> tf.estimator.export.ServingInputReceiver:
        rawdata = tf.compat.v1.placeholder(tf.float32, [None, n_inputs], name=FEATURE_KEY)
        return tf.estimator.export.ServingInputReceiver(build_features(rawdata),
                                                        {FEATURE_KEY: rawdata})

    return serving_input_receiver_fn
