"""trainer.prepare: reading, checks, time splits and windows on hand-made series with known answers."""

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from trainer.data.series import read_series
from trainer.data.windows import window_starts
from trainer.prepare import PrepareConfig, prepare
from trainer.util.errors import ConfigError, DataError


def write_wide(path: Path, values, *, columns=("timestamp", "value"), start=0) -> Path:
    lines = [",".join(columns)]
    for offset, value in enumerate(values):
        row = [str(start + offset)] + [str(value)] * (len(columns) - 1)
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def read_split(directory: Path, split: str) -> np.ndarray:
    files = sorted(directory.glob(f"{split}-*-of-*.csv"))
    if not files:
        return np.zeros((0,))
    return np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])


def run_prepare(tmp_path: Path, input_path: Path, **flags) -> dict:
    flags.setdefault("layout", "windows")
    config = PrepareConfig(input=str(input_path), output_dir=str(tmp_path / "prepared"), **flags)
    return prepare(config)


def test_windows_of_a_hand_made_series_respect_the_split_boundaries(tmp_path):
    # Values 100..119 at times 0..19; valid from t=12, test from t=16 (fractions 0.2 / 0.2).
    source = write_wide(tmp_path / "series.csv", [100 + t for t in range(20)])
    summary = run_prepare(tmp_path, source, n_inputs=3, n_outputs=2, stride=1, shards=2,
                          valid_fraction=0.2, test_fraction=0.2)
    out = tmp_path / "prepared"
    assert summary["boundaries"] == {"valid_start": "12", "test_start": "16"}
    train, valid, test = (read_split(out, s) for s in ("train", "valid", "test"))
    # Train: whole windows inside t < 12: first inputs t=0..7.
    np.testing.assert_array_equal(train, [[100 + s + i for i in range(5)] for s in range(8)])
    # Valid: targets (last 2) inside 12..15, inputs may come from train.
    np.testing.assert_array_equal(valid, [[100 + s + i for i in range(5)] for s in (9, 10, 11)])
    # Test: targets inside 16..19: every test point is a target.
    np.testing.assert_array_equal(test, [[100 + s + i for i in range(5)] for s in (13, 14, 15)])
    assert set(test[:, 3:].ravel()) == {116, 117, 118, 119}
    assert set(valid[:, 3:].ravel()) == {112, 113, 114, 115}
    assert valid[:, 3:].max() < 116 and train.max() < 112  # no target crosses into a later split
    assert [summary["splits"][s]["windows"] for s in ("train", "valid", "test")] == [8, 3, 3]
    assert [Path(p).name for p in summary["splits"]["train"]["files"]] == [
        "train-00000-of-00002.csv", "train-00001-of-00002.csv"]
    assert json.loads((out / "prepare.json").read_text()) == summary


def test_stride_anchors_train_at_the_start_and_evaluation_at_the_split_start(tmp_path):
    source = write_wide(tmp_path / "series.csv", list(range(30)))
    summary = run_prepare(tmp_path, source, n_inputs=4, n_outputs=3, stride=3,
                          valid_start="18", test_start="24", shards=1)
    out = tmp_path / "prepared"
    assert summary["boundaries"] == {"valid_start": "18", "test_start": "24"}
    assert read_split(out, "train")[:, 0].tolist() == [0, 3, 6, 9]  # 9+7 <= 18, 12+7 > 18
    # Valid targets start at 18, 21 (covering 18..23); test at 24, 27 (24..29): none skipped.
    assert read_split(out, "valid")[:, 4].tolist() == [18, 21]
    assert read_split(out, "test")[:, 4].tolist() == [24, 27]
    assert read_split(out, "test")[-1].tolist() == list(range(23, 30))


def test_window_starts_adds_a_window_ending_at_the_split_end():
    # Split of 5 points, 2 outputs, stride 2: targets at 10-11, 12-13, then 13-14 for the last point.
    starts = window_starts({"train": (0, 10), "valid": (10, 10), "test": (10, 15)},
                           n_inputs=3, n_outputs=2, stride=2)
    assert starts == {"train": [0, 2, 4], "valid": [], "test": [7, 9, 10]}


def test_evaluation_windows_need_history_inside_the_series():
    starts = window_starts({"train": (0, 2), "valid": (2, 6), "test": (6, 6)},
                           n_inputs=3, n_outputs=1, stride=1)
    assert starts == {"train": [], "valid": [0, 1, 2], "test": []}  # target at 2 has no 3 inputs


def test_training_statistics_and_naive_scale(tmp_path):
    values = [1, 3, 2, 6, 4, 8, 5, 9, 7, 10]  # train: first 6 points
    source = write_wide(tmp_path / "series.csv", values)
    summary = run_prepare(tmp_path, source, n_inputs=2, n_outputs=1, season=2,
                          valid_fraction=0.2, test_fraction=0.2)
    stats = summary["statistics"]
    train = np.array(values[:6], dtype=float)
    assert stats["count"] == 6
    assert stats["mean"] == pytest.approx(train.mean())
    assert stats["std"] == pytest.approx(train.std())
    assert (stats["min"], stats["max"]) == (1, 8)
    # |3-1|, |2-3|, |6-2|, |4-6|, |8-4| -> 13/5; season 2: |2-1|, |6-3|, |4-2|, |8-6| -> 8/4
    assert stats["in_sample_naive_mae"] == {"1": pytest.approx(13 / 5), "2": pytest.approx(2.0)}


def test_long_format_splits_every_series_at_the_same_time(tmp_path):
    lines = ["series_id,timestamp,value"]
    for t in range(10):
        lines.append(f"a,2024-01-{t + 1:02d},{t}")
    for t in range(4, 10):  # b starts later
        lines.append(f"b,2024-01-{t + 1:02d},{100 + t}")
    source = tmp_path / "long.csv"
    source.write_text("\n".join(lines) + "\n")
    summary = run_prepare(tmp_path, source, n_inputs=2, n_outputs=1, valid_fraction=0.2,
                          test_fraction=0.2)
    assert summary["format"] == "long" and summary["series"] == 2
    assert summary["boundaries"] == {"valid_start": "2024-01-07", "test_start": "2024-01-09"}
    test = read_split(tmp_path / "prepared", "test")
    assert sorted(test[:, -1].tolist()) == [8, 9, 108, 109]
    # b has only 2 training points (Jan 5, 6): no training window, but its valid windows
    # take those 2 points as inputs.
    assert sorted(read_split(tmp_path / "prepared", "train")[:, -1].tolist()) == [2, 3, 4, 5]
    assert sorted(read_split(tmp_path / "prepared", "valid")[:, -1].tolist()) == [6, 7, 106, 107]


def test_unsorted_rows_are_sorted_or_refused_with_no_sort(tmp_path):
    source = tmp_path / "unsorted.csv"
    source.write_text("timestamp,value\n" + "".join(f"{t},{t}\n" for t in (0, 1, 3, 2, 4, 5, 6, 7, 8, 9)))
    series, _ = read_series(str(source))
    assert series[0].values.tolist() == list(range(10))
    with pytest.raises(DataError, match=r"is not sorted by time: line 5 \(2\) comes after line 4 \(3\)"):
        read_series(str(source), sort=False)


def test_duplicate_timestamps_fail_naming_both_lines(tmp_path):
    source = tmp_path / "dup.csv"
    source.write_text("timestamp,value\n0,1\n1,2\n1,3\n2,4\n")
    with pytest.raises(DataError, match=r"has the timestamp '1' twice \(lines 3 and 4\)"):
        read_series(str(source))


def test_missing_and_non_numeric_values_fail_with_their_location_or_are_dropped(tmp_path):
    source = tmp_path / "bad.csv"
    rows = [str(v) for v in range(12)]
    rows[4] = ""
    rows[8] = "n/a"
    source.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in enumerate(rows)))
    with pytest.raises(DataError, match=r"line 6 of .*bad.csv \(series 'value' of .*, timestamp 4\): "
                                        r"value '' in column 'value' is missing"):
        read_series(str(source))
    series, report = read_series(str(source), on_bad_values="drop")
    assert report["dropped_count"] == 2
    assert [d["line"] for d in report["dropped"]] == [6, 10]
    assert series[0].segment_starts == [0, 4, 7]  # cut where rows were dropped
    summary = run_prepare(tmp_path, source, n_inputs=2, n_outputs=1, on_bad_values="drop",
                          valid_fraction=0.0, test_fraction=0.0)
    train = read_split(tmp_path / "prepared", "train")
    # Segments 0-3, 5-7, 9-11: no window spans a dropped row.
    assert train.tolist() == [[0, 1, 2], [1, 2, 3], [5, 6, 7], [9, 10, 11]]
    assert summary["splits"]["valid"]["windows"] == 0


def test_time_gaps_fail_or_cut_the_series(tmp_path):
    source = tmp_path / "gap.csv"
    times = [0, 1, 2, 3, 4, 9, 10, 11, 12]
    source.write_text("timestamp,value\n" + "".join(f"{t},{t}\n" for t in times))
    with pytest.raises(DataError, match=r"line 7 .*timestamp 9\): a gap in time: the previous "
                                        r"timestamp is 4, 5 before, while the median step is 1"):
        read_series(str(source))
    series, report = read_series(str(source), on_bad_values="drop")
    assert series[0].segment_starts == [0, 5] and report["cut_count"] == 1
    assert len(series[0].values) == 9


def test_wide_file_with_several_columns_needs_an_existing_target(tmp_path):
    source = write_wide(tmp_path / "wide.csv", range(10), columns=("timestamp", "a", "b"))
    with pytest.raises(ConfigError, match=r"has 2 value columns \(a, b\); pick one with --target"):
        read_series(str(source))
    with pytest.raises(ConfigError, match=r"--target 'c' is not a column of .* \(its value columns: a, b\)"):
        read_series(str(source), target="c")
    assert read_series(str(source), target="b")[0][0].series_id == "b"


def test_too_few_points_for_one_window(tmp_path):
    source = write_wide(tmp_path / "short.csv", range(6))
    with pytest.raises(DataError, match=r"the longest series has 6 points, fewer than one window of "
                                        r"--n_inputs 5 \+ --n_outputs 2 = 7"):
        run_prepare(tmp_path, source, n_inputs=5, n_outputs=2)
    with pytest.raises(DataError, match=r"the test split \(1 point\) has no complete window of 7 "
                                        r"points \(--n_inputs 5 \+ --n_outputs 2; --valid_fraction 0 "
                                        r"--test_fraction 0.1\); give a longer series"):
        run_prepare(tmp_path, write_wide(tmp_path / "s2.csv", range(10)), n_inputs=5, n_outputs=2,
                    valid_fraction=0.0, test_fraction=0.1)


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    source = write_wide(tmp_path / "series.csv", range(40))
    run_prepare(tmp_path, source, n_inputs=3, n_outputs=2, shards=4)
    with pytest.raises(ConfigError, match="already holds prepared data"):
        run_prepare(tmp_path, source, n_inputs=3, n_outputs=2)
    run_prepare(tmp_path, source, n_inputs=3, n_outputs=2, shards=1, overwrite=True)
    assert [p.name for p in sorted((tmp_path / "prepared").glob("train-*"))] == ["train-00000-of-00001.csv"]


def test_cli_exit_codes_and_messages(tmp_path):
    source = write_wide(tmp_path / "series.csv", range(40))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "trainer.prepare", *args], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)

    ok = cli("--input", str(source), "--output_dir", str(tmp_path / "out"), "--n_inputs", "3",
             "--n_outputs", "2")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "windows: train 28  valid 3  test 3  (1 series, 40 points" in ok.stdout
    missing = cli("--input", str(tmp_path / "nope.csv"), "--output_dir", str(tmp_path / "o2"))
    assert missing.returncode == 1 and f"error: --input {tmp_path}/nope.csv does not exist" in missing.stderr
    bad_flag = cli("--input", str(source), "--stride", "0")
    assert bad_flag.returncode == 2 and "argument --stride: expected an integer >= 1" in bad_flag.stderr


def test_gap_check_can_be_turned_off_for_irregular_series(tmp_path):
    source = tmp_path / "business_days.csv"
    days = [d for d in range(1, 29) if d % 7 not in (6, 0)]  # weekends missing
    source.write_text("timestamp,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in days))
    with pytest.raises(DataError, match="a gap in time"):
        read_series(str(source))
    series, report = read_series(str(source), gap_factor=0)
    assert series[0].segment_starts == [0] and len(series[0].values) == 20


def test_boundaries_must_be_of_the_timestamps_kind(tmp_path):
    source = write_wide(tmp_path / "series.csv", range(30))
    with pytest.raises(ConfigError, match=r"--valid_start '2024-01-01' is a date/time but the timestamps "
                                          r"are number \(a time index\)s"):
        run_prepare(tmp_path, source, valid_start="2024-01-01", test_start="2024-02-01")


def test_dropping_says_what_was_dropped_and_the_windows_the_cuts_cost(tmp_path, caplog):
    source = tmp_path / "bad.csv"
    rows = [str(v) for v in range(12)]
    rows[4] = ""
    rows[8] = "n/a"
    source.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in enumerate(rows)))
    with caplog.at_level("WARNING", logger="trainer.prepare"):
        run_prepare(tmp_path, source, n_inputs=2, n_outputs=1, on_bad_values="drop",
                    valid_fraction=0.0, test_fraction=0.0)
    # 10 points kept, cut twice: 4 windows of 3 (segments 0-3, 5-7, 9-11) of the 8 uncut.
    assert (f"--on_bad_values drop: left out 2 rows with a missing or non-numeric value in {source}, "
            "cutting its series at 2 places (no window spans a cut). Of the windows of 3 points "
            "(--n_inputs 2 + --n_outputs 1) the series would hold uncut, that leaves train 4 of 8, "
            "valid 0 of 0, test 0 of 0. Each row is listed under 'dropped' in prepare.json; the "
            "first: line 6 (series 'value', 4): value '' in column 'value' is missing"
            ) in caplog.text
    assert "at 0 gaps" not in caplog.text


def test_prepare_json_says_how_the_raw_csv_was_read(tmp_path):
    source = write_wide(tmp_path / "raw.csv", range(40), columns=("day", "units"))
    summary = run_prepare(tmp_path, source, timestamp_column="day", on_bad_values="drop",
                          gap_factor=0.0, season=4, n_inputs=6, n_outputs=2, layout="series")
    saved = json.loads((tmp_path / "prepared" / "prepare.json").read_text())
    assert {key: saved[key] for key in ("target", "timestamp_column", "series_id_column",
                                        "on_bad_values", "gap_factor", "n_inputs", "n_outputs",
                                        "season")} == {
        "target": "units", "timestamp_column": "day", "series_id_column": "series_id",
        "on_bad_values": "drop", "gap_factor": 0.0, "n_inputs": 6, "n_outputs": 2, "season": 4}
    assert summary["timestamp_column"] == "day"


def test_a_series_too_short_for_its_splits_names_its_length_and_the_flags_given(tmp_path, caplog):
    """20 weekly points: the messages name the split flags the user gave (or the defaults),
    the series' length and what to change; prepare fails instead of writing 0 windows."""
    source = tmp_path / "short.csv"
    source.write_text("timestamp,value\n" + "".join(
        f"{datetime.date(2020, 1, 5) + datetime.timedelta(weeks=week)},{300 + week % 7}.5\n"
        for week in range(20)))
    with pytest.raises(DataError) as error:
        run_prepare(tmp_path, source, layout="series", valid_points=20, test_points=20)
    assert str(error.value) == (f"{source}: --valid_points 20 --test_points 20 leave no point of its "
                                "1 series (the longest has 20 points) to the train split; give "
                                "smaller --valid_points/--test_points or a longer series")
    assert "fraction" not in str(error.value)
    with pytest.raises(DataError) as error:
        run_prepare(tmp_path, source, layout="series")
    assert str(error.value) == (
        f"{source}: the train split has no window of 25 points (--n_inputs 20 + --n_outputs 5): "
        "the longest series has 20 points, 16 of them in train (the default --valid_fraction 0.1 "
        "--test_fraction 0.1). Give --n_inputs and --n_outputs that add up to at most 16 (and "
        "train with them), smaller --valid_fraction/--test_fraction, or a longer series")
    assert not (tmp_path / "prepared").exists()
    # Train has windows, valid and test too few points for one: one warning, naming both.
    with caplog.at_level("WARNING"):
        run_prepare(tmp_path, source, layout="series", n_inputs=12, n_outputs=3)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [f"{source}: the valid split (2 points) and the test split (2 points) have "
                        "no complete window of 15 points (--n_inputs 12 + --n_outputs 3; the "
                        "default --valid_fraction 0.1 --test_fraction 0.1); the trainer needs "
                        "smaller --n_inputs/--n_outputs to use them"]


def test_a_long_file_whose_id_column_has_another_name_is_pointed_at_series_id_column(tmp_path):
    source = tmp_path / "long.csv"
    source.write_text("id,timestamp,value\n" + "".join(
        f"{name},{day},{day % 7}.5\n" for name in ("a", "b") for day in range(30)))
    hint = ("did you mean --series_id_column id? (a long file: one row per series and timestamp, "
            "its series named by the column 'id')")
    with pytest.raises(ConfigError) as error:
        read_series(str(source))
    assert str(error.value) == (f"{source} has 2 value columns (id, value); pick one with --target, "
                                f"or {hint}")
    with pytest.raises(DataError) as error:
        read_series(str(source), target="value")
    assert str(error.value).endswith(f"twice (lines 2 and 32); keep one row per timestamp; {hint}")
    series, report = read_series(str(source), series_id_column="id")
    assert report["format"] == "long" and [s.series_id for s in series] == ["a", "b"]
    # A wide file of two value columns gets no such hint.
    wide = write_wide(tmp_path / "wide.csv", range(10), columns=("timestamp", "a", "b"))
    with pytest.raises(ConfigError, match=r"pick one with --target$"):
        read_series(str(wide))


def test_the_summary_lists_the_covariates(tmp_path):
    from trainer.prepare import summarize

    source = tmp_path / "promo.csv"
    source.write_text("series_id,timestamp,value,promo,load,store\n" + "".join(
        f"{name},2024-01-{day + 1:02d},{day % 7}.5,{day % 2},{day}.25,{name}\n"
        for name in ("a", "b") for day in range(30)))
    summary = run_prepare(tmp_path, source, layout="series", n_inputs=5, n_outputs=2,
                          future_covariates="promo", past_covariates="load",
                          static_covariates="store", calendar_features="auto")
    lines = summarize(summary).splitlines()
    assert lines[2] == ("covariates: past load; future promo, calendar_day_of_week (calendar), "
                        "calendar_day_of_year (calendar); static store (categorical, 2 values)"), lines
