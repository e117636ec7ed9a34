"""The input pipeline: shapes per mode, shuffling, sharding, batches of intact rows."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS, N_OUTPUTS, write_rows
from trainer.data.pipeline import (
    cut_into_batches,
    log_process_files,
    make_input_fn,
    process_files,
    read_lines,
)
from trainer.data.schema import FEATURE_KEY

BATCH = 5  # != N_INPUTS != N_OUTPUTS


def make_fn(files, *, training, **kwargs):
    return make_input_fn(files=files, training=training, batch_size=BATCH, n_inputs=N_INPUTS,
                         n_outputs=N_OUTPUTS, **kwargs)


def sorted_rows(values: np.ndarray) -> np.ndarray:
    return values[np.lexsort(values.T[::-1])]


def test_eval_makes_one_deterministic_pass_with_the_right_shapes(tiny_data):
    input_fn = make_fn(tiny_data["eval_files"], training=False)
    batches = list(input_fn())
    rows = np.concatenate([
        np.loadtxt(path, delimiter=",", dtype=np.float32) for path in tiny_data["eval_files"]])
    features = np.concatenate([f[FEATURE_KEY].numpy() for f, _ in batches])
    labels = np.concatenate([label.numpy() for _, label in batches])
    assert features.shape == (46, N_INPUTS) and labels.shape == (46, N_OUTPUTS)
    np.testing.assert_allclose(sorted_rows(np.hstack([features, labels])), sorted_rows(rows))
    assert [f[FEATURE_KEY].shape[0] for f, _ in batches] == [BATCH] * 9 + [1]
    again = np.concatenate([f[FEATURE_KEY].numpy() for f, _ in input_fn()])
    np.testing.assert_array_equal(again, features)


def test_training_repeats_and_shuffles(tiny_data):
    dataset = make_fn(tiny_data["train_files"], training=True, shuffle_buffer_size=40)()
    batches = list(dataset.take(60))  # 300 rows from 120: the data repeats
    features = np.concatenate([f[FEATURE_KEY].numpy() for f, _ in batches])
    assert features.shape == (300, N_INPUTS)
    assert all(label.shape == (BATCH, N_OUTPUTS) for _, label in batches)
    first_file = np.loadtxt(tiny_data["train_files"][0], delimiter=",", dtype=np.float32)
    assert not np.allclose(features[:40], first_file[:, :N_INPUTS])  # not file order
    assert len(np.unique(features[:, 0])) == 120  # every row seen


def test_training_batches_are_whole_and_keep_rows_intact(tiny_data):
    # 120 rows in 3 files, batches of 7: pools do not split into whole batches.
    dataset = make_input_fn(files=tiny_data["train_files"], training=True, batch_size=7,
                            n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, shuffle_buffer_size=40)()
    batches = list(dataset.take(40))
    assert all(f[FEATURE_KEY].shape == (7, N_INPUTS) and y.shape == (7, N_OUTPUTS)
               for f, y in batches)
    rows = np.concatenate([np.concatenate([f[FEATURE_KEY].numpy(), y.numpy()], axis=1)
                           for f, y in batches])
    data = np.concatenate([np.loadtxt(p, delimiter=",", dtype=np.float32)
                           for p in tiny_data["train_files"]])
    data_rows = {tuple(np.round(row, 5)) for row in data}
    seen = {tuple(np.round(row, 5)) for row in rows}
    assert seen <= data_rows  # features and labels stay together, row by row
    assert seen == data_rows  # 280 rows drawn: every row of the data came by


def test_pools_are_cut_into_whole_batches_carrying_the_rest():
    pools = [np.arange(n, dtype=np.float32).reshape(-1, 2) + 100 * i
             for i, n in enumerate((6, 10, 8))]  # 3, 5 and 4 rows of 2 values
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(pools), output_signature=tf.TensorSpec([None, 2], tf.float32))
    dataset = dataset.scan(tf.zeros([0, 2]), lambda left, rows: cut_into_batches(
        left, rows, batch_size=4, n_inputs=1)).unbatch()
    batches = [np.concatenate([f[FEATURE_KEY].numpy(), y.numpy()], axis=1) for f, y in dataset]
    assert [batch.shape for batch in batches] == [(4, 2)] * 3  # 12 rows, none dropped
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(pools))


@pytest.mark.parametrize("text", [
    "1,2\n3,4\n5,6\n",  # ends with a line end
    "1,2\n3,4\n5,6",  # does not
    "1,2\r\n3,4\r\n5,6\r\n",  # \r\n line ends
    "10,20\n\n30,40\n",  # a blank line stays, so that decoding fails on it
    "1.5,2.5\n",  # one line, shorter than a piece
    "1,2\n3,4\n",  # size a multiple of the piece size (4 bytes)
])
@pytest.mark.parametrize("piece_bytes", [4, 5, 7, 1 << 10])
def test_read_lines_gives_the_files_lines_whatever_the_piece_size(tmp_path, text, piece_bytes):
    path = tmp_path / "rows.csv"
    path.write_bytes(text.encode())
    dataset = read_lines(tf.constant(str(path)), tf.constant(len(text.encode()), tf.int64),
                         piece_bytes=piece_bytes)
    lines = [line.decode() for chunk in dataset for line in chunk.numpy()]
    assert lines == text.splitlines()


def test_read_lines_cuts_chunks_of_chunk_rows_within_one_file(tmp_path):
    path = write_rows(tmp_path / "rows.csv", np.arange(2500 * 2).reshape(2500, 2))
    dataset = read_lines(tf.constant(str(path)), tf.constant(path.stat().st_size, tf.int64))
    assert [int(chunk.shape[0]) for chunk in dataset] == [1024, 1024, 452]


def test_workers_read_disjoint_files(tiny_data):
    def first_values(worker_index):
        dataset = make_fn(tiny_data["train_files"], training=True, num_workers=3,
                          worker_index=worker_index, shuffle_buffer_size=10)()
        return {round(float(v), 5) for f, _ in dataset.take(16) for v in f[FEATURE_KEY][:, 0]}

    seen = [first_values(i) for i in range(3)]
    expected = [{round(float(v), 5) for v in np.loadtxt(p, delimiter=",")[:, 0]}
                for p in tiny_data["train_files"]]
    assert seen == expected


def test_fewer_files_than_workers_reads_everything_and_says_so(tiny_data, caplog):
    input_fn = make_fn(tiny_data["train_files"], training=True, num_workers=5, worker_index=4,
                       shuffle_buffer_size=40)
    with caplog.at_level("WARNING"):
        dataset = input_fn()
    values = {round(float(v), 5) for f, _ in dataset.take(80) for v in f[FEATURE_KEY][:, 0]}
    assert len(values) == 120
    assert "only 3 training files for 5 training processes" in caplog.text


def test_both_layouts_share_one_rule_for_the_files_of_a_training_process(caplog):
    files = [f"series-{i}.csv" for i in range(5)]
    assert process_files(files, num_workers=2, worker_index=1) == ["series-1.csv", "series-3.csv"]
    assert process_files(files, num_workers=6, worker_index=1) == files
    assert process_files(files, num_workers=1, worker_index=0) == files
    with caplog.at_level("INFO"):
        log_process_files(files, kind="series", num_workers=2, worker_index=1)
        log_process_files(files, kind="series", num_workers=6, worker_index=1)
    assert "training process 1 of 2 reads 2 of the series files" in caplog.text
    assert ("only 5 series files for 6 training processes: each reads all of them, in its own "
            "shuffled order; shard the data into at least 6 files to split it") in caplog.text


def test_steps_per_run_stacks_whole_batches_of_intact_rows(tiny_data):
    # One file of 40 rows in pools of 40: the first two groups of 4 batches of 5 are one epoch.
    files = tiny_data["train_files"][:1]
    groups = list(make_fn(files, training=True, shuffle_buffer_size=40, steps_per_run=4)().take(2))
    assert all(f[FEATURE_KEY].shape == (4, BATCH, N_INPUTS) and y.shape == (4, BATCH, N_OUTPUTS)
               for f, y in groups)
    rows = np.concatenate([np.concatenate([f[FEATURE_KEY].numpy(), y.numpy()], axis=-1)
                           .reshape(-1, N_INPUTS + N_OUTPUTS) for f, y in groups])
    data = np.loadtxt(files[0], delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(sorted_rows(rows), sorted_rows(data))


def test_training_pipeline_runs_without_the_autotuner(tiny_data):
    # The autotuner sometimes left one of two cores idle for a whole pass (docs/performance.md).
    dataset = make_fn(tiny_data["train_files"], training=True)()
    assert dataset.options().autotune.enabled is False
    assert dataset.element_spec[1].shape.as_list() == [BATCH, N_OUTPUTS]
