"""Series shards: windows cut inside tf.data against hand-made series with known answers.

Every window is checked against a brute-force list of all starts: none spans two series or a
cut, each belongs to the split of its targets, evaluation takes all of them once in order, and
training gives only training windows. The cut windows are also compared with the rows that
`trainer.prepare --layout windows` writes from the same series.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from trainer.data.prepared import SERIES_COLUMNS, open_prepared
from trainer.data.series_pipeline import make_series_input_fn
from trainer.data.series_reads import read_split_windows
from trainer.data.series_survey import survey_series_files
from trainer.prepare import PrepareConfig, prepare
from trainer.util.errors import ConfigError, DataError

HEADER = ",".join(SERIES_COLUMNS)


def write_shard(path: Path, rows) -> Path:
    """rows: (series, segment, split, time, target) tuples."""
    path.write_text(HEADER + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def write_prepared(directory: Path, shards, **summary) -> Path:
    """A prepared directory written by hand: shards of rows and a minimal prepare.json."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, rows in enumerate(shards):
        write_shard(directory / f"series-{index:05d}-of-{len(shards):05d}.csv", rows)
    (directory / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1,
                                                        **summary}))
    return directory


def hand_made_rows():
    """Series 0: 12 points with a cut after point 5 (segment 1 from point 6); series 1: 7
    points. Targets are 100 * series + point index, so a window names where it came from."""
    rows = []
    for point in range(12):
        split = 0 if point < 8 else (1 if point < 10 else 2)
        rows.append((0, 0 if point < 6 else 1, split, float(point), 100 * 0 + point))
    for point in range(7):
        split = 0 if point < 4 else (1 if point < 5 else 2)
        rows.append((1, 0, split, float(point), 100 * 1 + point))
    return rows


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


def test_hand_made_series_known_windows(tmp_path):
    # n_inputs 2, n_outputs 1: series 0 segment 0 is points 0..5 (all train), segment 1 is 6..11
    # (train 6..7, valid 8..9, test 10..11); series 1 is 0..6 (train 0..3, valid 4, test 5..6).
    prepared = open_prepared(str(write_prepared(tmp_path / "p", [hand_made_rows()])))
    windows = {split: read_split_windows(prepared.files, split=split, n_inputs=2, n_outputs=1)
               for split in ("train", "valid", "test")}
    assert windows["train"].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5],
                                         [100, 101, 102], [101, 102, 103]]
    # A valid window takes its inputs from train: its target decides its split.
    assert windows["valid"].tolist() == [[6, 7, 8], [7, 8, 9], [102, 103, 104]]
    assert windows["test"].tolist() == [[8, 9, 10], [9, 10, 11], [103, 104, 105], [104, 105, 106]]
    survey = survey_series_files(prepared.files, n_inputs=2, n_outputs=1)
    assert survey.windows == {"train": 6, "valid": 3, "test": 4}
    assert (survey.series, survey.points, survey.too_short) == (2, 19, 0)


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


def write_long(path: Path, lengths, *, start_hours=None) -> Path:
    """A long CSV: series s{i} of `lengths[i]` hourly points, value 1000 * i + point index."""
    lines = ["series_id,timestamp,value"]
    for index, length in enumerate(lengths):
        first = (start_hours or [0] * len(lengths))[index]
        for point in range(length):
            hour = first + point
            lines.append(f"s{index},2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00,"
                         f"{1000 * index + point}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_per_series_tail_splits_hold_out_the_last_points_of_every_series(tmp_path):
    # Three series that end at different times (and start at different times).
    source = write_long(tmp_path / "raw.csv", [30, 22, 40], start_hours=[0, 10, 5])
    summary = prepare(PrepareConfig(input=str(source), output_dir=str(tmp_path / "p"),
                                    valid_points=3, test_points=2, n_inputs=4, n_outputs=2))
    assert summary["boundaries"] == {"valid_points": 3, "test_points": 2}
    assert summary["splits"]["test"]["points"] == 6 and summary["splits"]["valid"]["points"] == 9
    prepared = open_prepared(str(tmp_path / "p"))
    test = read_split_windows(prepared.files, split="test", n_inputs=4, n_outputs=1)
    valid = read_split_windows(prepared.files, split="valid", n_inputs=4, n_outputs=1)
    ends = {0: 29, 1: 21, 2: 39}
    test_targets = sorted(test[:, -1].tolist())
    assert test_targets == sorted(1000 * s + e - k for s, e in ends.items() for k in (0, 1))
    assert sorted(valid[:, -1].tolist()) == sorted(1000 * s + e - k for s, e in ends.items()
                                                   for k in (2, 3, 4))
    # With 2 outputs, a test window has both targets in the last 2 points: one per series.
    test2 = read_split_windows(prepared.files, split="test", n_inputs=4, n_outputs=2)
    assert sorted(test2[:, -1].tolist()) == sorted(1000 * s + e for s, e in ends.items())


def test_series_layout_cuts_the_windows_that_the_windows_layout_writes(tmp_path):
    source = write_long(tmp_path / "raw.csv", [50, 35, 44], start_hours=[0, 3, 9])
    flags = dict(input=str(source), n_inputs=5, n_outputs=3, valid_fraction=0.2,
                 test_fraction=0.2, season=2)
    series = prepare(PrepareConfig(output_dir=str(tmp_path / "s"), **flags))
    rows = prepare(PrepareConfig(output_dir=str(tmp_path / "w"), layout="windows", **flags))
    assert series["statistics"] == rows["statistics"] and series["boundaries"] == rows["boundaries"]
    prepared = open_prepared(str(tmp_path / "s"))
    for split in ("train", "valid", "test"):
        written = np.concatenate([np.loadtxt(path, delimiter=",", ndmin=2)
                                  for path in rows["splits"][split]["files"]])
        cut = read_split_windows(prepared.files, split=split, n_inputs=5, n_outputs=3)
        assert sorted(map(tuple, cut.tolist())) == sorted(map(tuple, written.tolist()))
        assert series["splits"][split]["windows"] == len(cut)
    shard = (tmp_path / "s" / "series-00000-of-00003.csv").read_text().splitlines()
    assert shard[0] == "series,segment,split,time,target"
    assert series["series_ids"] == ["s0", "s1", "s2"] and series["time_kind"] == "datetime"
    assert series["step"] == 3600.0 and series["layout"] == "series"


def test_series_are_kept_whole_and_time_is_seconds_since_1970(tmp_path):
    source = write_long(tmp_path / "raw.csv", [10, 30, 5, 8])
    summary = prepare(PrepareConfig(input=str(source), output_dir=str(tmp_path / "p"), shards=2,
                                    valid_points=1, test_points=1, n_inputs=2, n_outputs=1))
    assert summary["files"] == ["series-00000-of-00002.csv", "series-00001-of-00002.csv"]
    per_file = []
    for name in summary["files"]:
        data = np.loadtxt(tmp_path / "p" / name, delimiter=",", skiprows=1, ndmin=2)
        per_file.append(sorted(set(data[:, 0].astype(int).tolist())))
        if 0 in per_file[-1]:
            first = data[data[:, 0] == 0][0]
            assert first[3] == 1704067200.0  # 2024-01-01T00:00:00 UTC
    # Longest first to the emptiest shard: 30 alone, then 10 + 8 + 5 in the other.
    assert sorted(per_file) == [[0, 2, 3], [1]]


def test_hand_written_shards_without_prepare_files_or_statistics(tmp_path):
    directory = write_prepared(tmp_path / "p", [hand_made_rows()])
    prepared = open_prepared(str(directory))
    assert [Path(p).name for p in prepared.files] == ["series-00000-of-00001.csv"]
    survey = survey_series_files(prepared.files, n_inputs=2, n_outputs=1)
    assert survey.windows["train"] == 6


@pytest.mark.parametrize("rows,message", [
    ([(0, 0, 0, 0.0, 1.0), (0, 0, 0, 0.0, 2.0)],
     r"line 3 of .*series-00000-of-00001.csv: time 0.0 after 0.0 in series 0; within a series, "
     r"time must increase"),
    ([(0, 0, 0, 0.0, 1.0), (1, 0, 0, 0.0, 2.0), (0, 0, 0, 1.0, 2.0)],
     r"line 4 of .*: series 0 starts again after other series \(it began on line 2\)"),
    ([(0, 0, 1, 0.0, 1.0), (0, 0, 0, 1.0, 2.0)],
     r"line 3 of .*: split 0 after 1 in series 0; within a series, split must never decrease"),
    ([(0, 0, 3, 0.0, 1.0)], r"line 2 of .*: split 3 is not one of 0 \(train\), 1 \(valid\), 2 \(test\)"),
    ([(0, 0, 0, 0.0, "x")], r"line 2 of .*: column 'target' is 'x', not a number"),
    ([(0, 0, 0, 0.0)], r"line 2 of .* has 4 values, expected 5 \(series,segment,split,time,target\)"),
])
def test_bad_shards_name_the_file_and_line(tmp_path, rows, message):
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "series-00000-of-00001.csv").write_text(
        HEADER + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    (directory / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1}))
    with pytest.raises(DataError, match=message):
        survey_series_files(open_prepared(str(directory)).files, n_inputs=1, n_outputs=1)


def test_a_series_index_outside_the_vocabulary_and_a_wrong_header(tmp_path):
    directory = write_prepared(tmp_path / "p", [[(0, 0, 0, 0.0, 1.0), (5, 0, 0, 0.0, 1.0)]],
                               series_ids=["a", "b"])
    files = open_prepared(str(directory)).files
    with pytest.raises(DataError, match=r"line 3 of .*: series 5 is not an index of prepare.json's "
                                        r"series_ids \(0 to 1\)"):
        survey_series_files(files, n_inputs=1, n_outputs=1, series_ids=["a", "b"])
    Path(files[0]).write_text("id,t,v\n0,0,1\n")
    with pytest.raises(DataError, match=r"its first line is 'id,t,v', expected the header "
                                        r"'series,segment,split,time,target'"):
        survey_series_files(files, n_inputs=1, n_outputs=1)


def test_a_directory_of_another_layout_or_version_is_refused(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "prepare.json").write_text(json.dumps({"layout": "windows", "version": 1,
                                                             "statistics": {}}))
    with pytest.raises(ConfigError, match=r"was prepared with --layout windows, not series; give "
                                          r"its files of rows instead \(trainer.evaluate --data_paths"):
        open_prepared(str(tmp_path / "w"))
    write_prepared(tmp_path / "v", [hand_made_rows()])
    (tmp_path / "v" / "prepare.json").write_text(json.dumps({"layout": "series", "version": 7}))
    with pytest.raises(ConfigError, match=r"is a prepared directory of version 7; this trainer reads "
                                          r"version 1: prepare the data again"):
        open_prepared(str(tmp_path / "v"))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1}))
    with pytest.raises(DataError, match=r"holds no series-\*.csv shards"):
        open_prepared(str(tmp_path / "e"))


def test_series_too_short_for_a_window_are_counted(tmp_path):
    rows = [(0, 0, 0, float(t), t) for t in range(10)] + [(1, 0, 0, float(t), t) for t in range(3)]
    directory = write_prepared(tmp_path / "p", [rows], series_ids=["long", "short"])
    survey = survey_series_files(open_prepared(str(directory)).files, n_inputs=3, n_outputs=1,
                                 series_ids=["long", "short"])
    assert survey.too_short == 1 and survey.too_short_examples == ["short"]
    assert survey.windows["train"] == 7


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
