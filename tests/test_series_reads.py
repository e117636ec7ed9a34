"""Every window of a split read into NumPy (`trainer.data.series_reads`), against hand-made
series with known answers; the windows cut from the series layout are also compared with the
rows that `trainer.prepare --layout windows` writes from the same series.
"""

import numpy as np

from tests.series_shards import hand_made_rows, write_long, write_prepared
from trainer.data.prepared import open_prepared
from trainer.data.series_reads import read_split_windows
from trainer.data.series_survey import survey_series_files
from trainer.prepare import PrepareConfig, prepare


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
