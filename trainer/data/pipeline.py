"""Input pipeline: CSV shards of rows (local or gs://) into batches of features and labels.

The rows are those of `trainer.data.schema` (`n_inputs` past values, then `n_outputs` future
values); their features come from its `build_features`, the transform the serving receiver
uses too, so training and serving cannot drift. Reading is tf.data only (text lines from files
read in parallel, decoded a whole batch at a time); nothing here opens a data path with `open`
or `os.path`, so `gs://` works everywhere.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable, Dict, List, Sequence, Tuple

from trainer.data.schema import decode_csv_values, split_features_and_labels
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

MAX_PARALLEL_FILES = 8  # files read at once by one process
CHUNK_ROWS = 1024  # training decodes lines this many at a time
# Training splits a file into lines one piece of this size at a time (see `read_lines`),
# reading ahead a larger block per request (few requests on gs://).
READ_PIECE_BYTES = 128 << 10
READ_AHEAD_BYTES = 1 << 20


def process_files(files: Sequence[str], *, num_workers: int, worker_index: int) -> List[str]:
    """The files training process `worker_index` of `num_workers` reads: one in `num_workers`
    when there are at least as many files as processes, else all of them (in both layouts)."""
    files = list(files)
    return files[worker_index::num_workers] if 1 < num_workers <= len(files) else files


def log_process_files(files: Sequence[str], *, kind: str, num_workers: int, worker_index: int
                      ) -> None:
    """Log the share of `files` (`kind`: "training", "series") that training process
    `worker_index` reads (`process_files`), or warn when there are too few to share out."""
    mine = process_files(files, num_workers=num_workers, worker_index=worker_index)
    if len(mine) < len(files):
        logger.info("training process %d of %d reads %d of the %s files", worker_index,
                    num_workers, len(mine), kind)
    elif num_workers > 1:
        logger.warning("only %d %s files for %d training processes: each reads all of them, in "
                       "its own shuffled order; shard the data into at least %d files to split it",
                       len(files), kind, num_workers, num_workers)


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
    ([steps_per_run, batch_size, ...], for `trainer.model.model_fn.train_several_steps`).
    Evaluation makes exactly one ordered pass.

    Training never handles a row on its own: `read_lines` reads up to `MAX_PARALLEL_FILES`
    files at once in pieces and cuts them into chunks of `CHUNK_ROWS` lines, each chunk is
    decoded by one vectorized op, about
    `shuffle_buffer_size` rows from several files are pooled and shuffled by one permutation,
    and the pool is cut into whole batches by one reshape. A per-row pipeline (decode each
    line, shuffle buffer of rows, batch) spends most of its time in per-element overhead; see
    docs/performance.md.
    """
    all_files = list(files)
    files = (process_files(all_files, num_workers=num_workers, worker_index=worker_index)
             if training else all_files)
    decode = functools.partial(decode_csv_batch, n_inputs=n_inputs, n_outputs=n_outputs)
    decode_values = functools.partial(decode_csv_values, n_values=n_inputs + n_outputs)

    def input_fn() -> tf.data.Dataset:
        if training:
            log_process_files(all_files, kind="training", num_workers=num_workers,
                              worker_index=worker_index)
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
