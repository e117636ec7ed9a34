"""Series shards: windows cut inside tf.data against hand-made series with known answers.

Every window is checked against a brute-force list of all starts: none spans two series or a
cut, each belongs to the split of its targets, evaluation takes all of them once in order, and
training gives only training windows.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.series_shards import hand_made_rows, write_prepared
from trainer.data.prepared import open_prepared
from trainer.data.series_pipeline import make_series_input_fn
from trainer.data.series_reads import read_split_windows


def brute_force_windows(rows, *, n_inputs, n_outputs, split_code):
    width = n_inputs + n_outputs
    found = []
    for start in range(len(rows) - width + 1):
        window = rows[start:start + width]
        if len({(r[0], r[1]) for r in window}) != 1:
            continue  # across two series or a cut
        if {r[2] for r in window[n_inputs:]} == {split_code}:
            found.append([r[4] for r in window])
    return np.array(found, dtype=np.float64).reshape(-1, width)


@pytest.mark.parametrize("n_inputs,n_outputs", [(2, 1), (3, 2), (1, 1)])
def test_every_window_of_every_split_and_none_across_a_series_or_a_cut(tmp_path, n_inputs, n_outputs):
    rows = hand_made_rows()
    prepared = open_prepared(str(write_prepared(tmp_path / "p", [rows])))
    for code, split in enumerate(("train", "valid", "test")):
        expected = brute_force_windows(rows, n_inputs=n_inputs, n_outputs=n_outputs, split_code=code)
        got = read_split_windows(prepared.files, split=split, n_inputs=n_inputs, n_outputs=n_outputs)
        np.testing.assert_array_equal(got, expected)
        # The evaluation input_fn: the same windows, in order, as features and labels.
        batches = list(make_series_input_fn(files=prepared.files, split=split, training=False,
                                            batch_size=2, n_inputs=n_inputs,
                                            n_outputs=n_outputs)())
        if len(expected):
            inputs = np.concatenate([f["rawdata"].numpy() for f, _ in batches])
            labels = np.concatenate([labels.numpy() for _, labels in batches])
            np.testing.assert_array_equal(np.hstack([inputs, labels]), expected)
        else:
            assert not batches


def test_training_gives_only_training_windows_shuffled_across_series_and_files(tmp_path):
    rows = hand_made_rows()
    # Series 0 in one file and series 1 in another.
    prepared = open_prepared(str(write_prepared(tmp_path / "p", [rows[:12], rows[12:]])))
    expected = {tuple(w) for w in brute_force_windows(rows, n_inputs=2, n_outputs=1, split_code=0)}
    dataset = make_series_input_fn(files=prepared.files, split="train", training=True, batch_size=4,
                                   n_inputs=2, n_outputs=1, seed=3, steps_per_run=2)()
    seen = []
    for features, labels in dataset.take(20):
        assert features["rawdata"].shape == (2, 4, 2) and labels.shape == (2, 4, 1)
        windows = np.concatenate([features["rawdata"].numpy(), labels.numpy()], axis=-1)
        seen += [tuple(w) for w in windows.reshape(-1, 3).tolist()]
    assert set(seen) == expected  # every training window comes, and nothing else
    # Both series meet within the first batches: the pool mixes the files.
    first = seen[:8]
    assert any(w[0] < 100 for w in first) and any(w[0] >= 100 for w in first)


def test_a_pool_smaller_than_one_batch_is_repeated_to_fill_it(tmp_path):
    rows = [(0, 0, 0, float(t), t) for t in range(4)] + [(0, 0, 1, 4.0, 4)]
    prepared = open_prepared(str(write_prepared(tmp_path / "p", [rows])))
    dataset = make_series_input_fn(files=prepared.files, split="train", training=True,
                                   batch_size=5, n_inputs=2, n_outputs=1)()
    features, labels = next(iter(dataset))
    assert features["rawdata"].shape == (5, 2)
    assert set(labels.numpy().ravel().tolist()) == {2, 3}  # the two training windows only


def test_the_gather_runs_in_graph_mode_as_the_estimator_calls_it(tmp_path):
    # tf.equal, not ==: in a v1 graph == compares identities (this failed once).
    prepared = open_prepared(str(write_prepared(tmp_path / "p", [hand_made_rows()])))
    with tf.Graph().as_default():
        dataset = make_series_input_fn(files=prepared.files, split="valid", training=False,
                                       batch_size=8, n_inputs=2, n_outputs=1)()
        batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        with tf.compat.v1.Session() as session:
            features, labels = session.run(batch)
    assert labels.ravel().tolist() == [8, 9, 104]


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_the_xla_slicer_cuts_the_windows_that_the_index_gather_cuts(channels, shape):
    from trainer.data.series_decode import gather_windows
    from trainer.data.series_pipeline import make_window_slicer

    rng = np.random.default_rng(5)
    points = 50
    values = tf.constant(rng.normal(size=(points,) if channels is None else (points, channels)),
                         tf.float32)
    starts = tf.constant(rng.integers(0, points - 7 + 1, size=shape), tf.int64)
    starts = tf.tensor_scatter_nd_update(tf.reshape(starts, [-1]), [[0]], [points - 7])  # the last
    starts = tf.reshape(starts, shape)
    inputs, targets = make_window_slicer(n_inputs=5, n_outputs=2)(values, starts)
    expected = gather_windows(values, starts, width=7).numpy()
    tail = () if channels is None else (channels,)
    assert inputs.shape == (*shape, 5, *tail) and targets.shape == (*shape, 2, *tail)
    np.testing.assert_array_equal(inputs.numpy(), expected[..., :5, :] if channels else expected[..., :5])
    np.testing.assert_array_equal(targets.numpy(), expected[..., 5:, :] if channels else expected[..., 5:])
