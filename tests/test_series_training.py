"""Training from a prepared directory of series, end to end: `trainer.prepare` once, then
`trainer.task --data_dir` with window sizes chosen at training time, `trainer.evaluate
--data_dir --split`, shards written by hand, and the errors of each."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool
from trainer.data.prepared import open_prepared
from trainer.data.series_reads import read_split_windows, read_windows_and_series

pytestmark = pytest.mark.e2e

SEASON = 8


def write_raw(path: Path) -> Path:
    """Three hourly series with a season of 8 that start and end at different times."""
    rng = np.random.default_rng(3)
    lines = ["series_id,timestamp,value"]
    for index, (length, offset) in enumerate(((300, 0), (260, 30), (220, 70))):
        for point in range(length):
            hour = offset + point
            value = 10 * index + 5 + 3 * np.sin(2 * np.pi * hour / SEASON) + rng.normal(0, 0.1)
            lines.append(f"store{index},2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00,{value:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def train_flags(data_dir: Path, output: Path, *, n_inputs: int, n_outputs: int):
    return ["--data_dir", str(data_dir), "--output_dir", str(output), "--n_inputs", str(n_inputs),
            "--n_outputs", str(n_outputs), "--season", str(SEASON), "--model", "dnn",
            "--hidden_units", "16", "--optimizer", "adam", "--learning_rate", "0.01",
            "--scaling", "window_zscore", "--batch_size", "32", "--train_steps", "400",
            "--save_checkpoints_steps", "400", "--progress_interval_secs", "1"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    result = run_tool("trainer.prepare", "--input", str(write_raw(root / "raw.csv")),
                      "--output_dir", str(root / "prepared"), "--valid_points", "16",
                      "--test_points", "16", "--season", str(SEASON), "--shards", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train with --data_dir" in result.stdout
    return root


@pytest.mark.parametrize("n_inputs,n_outputs", [(16, 4), (24, 8)])
def test_one_preparation_trains_windows_of_any_size(prepared, tmp_path, n_inputs, n_outputs):
    output = tmp_path / "run"
    result = run_task(train_flags(prepared / "prepared", output, n_inputs=n_inputs,
                                  n_outputs=n_outputs))
    assert result.returncode == 0, result.stderr[-4000:]
    files = open_prepared(str(prepared / "prepared")).files
    valid = read_split_windows(files, split="valid", n_inputs=n_inputs, n_outputs=n_outputs)
    assert f"{len(valid)} evaluation windows of {n_inputs + n_outputs} points" in result.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    # Learned the season: far better than the naive forecast on every valid window.
    assert metrics["rmse"] < 0.5 * metrics["naive_rmse"], metrics
    export = metrics["saved_model_path"]
    serve = tf.saved_model.load(export).signatures["serving_default"]
    assert serve.structured_input_signature[1]["rawdata"].shape.as_list() == [None, n_inputs]
    forecast = serve(rawdata=tf.constant(valid[:, :n_inputs], tf.float32))["predicted"].numpy()
    assert forecast.shape == (len(valid), n_outputs)
    # trainer.evaluate scores the test split of the same directory with the model's own sizes.
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(output), "--data_dir",
                          str(prepared / "prepared"), "--split", "test", "--season", str(SEASON),
                          "--output", str(tmp_path / "test.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    test = read_split_windows(files, split="test", n_inputs=n_inputs, n_outputs=n_outputs)
    scored = json.loads((tmp_path / "test.json").read_text())
    assert scored["windows"] == len(test) == 3 * (16 - n_outputs + 1)
    assert scored["split"] == "test"
    assert scored["mase_scale_source"].startswith("each series' own in-sample")
    assert scored["metrics"]["series_evaluated"] == 3
    assert scored["metrics"]["rmse"] < scored["metrics"]["naive_rmse"]
    assert f"{len(test)} windows x {n_outputs} steps from the test split of" in evaluation.stdout


def test_shards_written_by_a_few_lines_of_plain_python_train(tmp_path):
    data = tmp_path / "handmade"
    data.mkdir()
    # Two series, the last 10 points of each valid: no trainer.prepare involved.
    with open(data / "series-00000-of-00001.csv", "w") as shard:
        shard.write("series,segment,split,time,target\n")
        for series in range(2):
            for t in range(120):
                split = 1 if t >= 110 else 0
                shard.write(f"{series},0,{split},{t},{np.sin(t / 3) + series}\n")
    (data / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1,
                                                   "series_ids": ["a", "b"]}))
    output = tmp_path / "run"
    result = run_task(["--data_dir", str(data), "--output_dir", str(output), "--n_inputs", "12",
                       "--n_outputs", "3", "--train_steps", "100", "--hidden_units", "8",
                       "--batch_size", "16", "--save_checkpoints_steps", "100"])
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["last_global_step"] == 100 and np.isfinite(metrics["rmse"])
    assert "16 evaluation windows of 15 points" in result.stderr  # 2 series x (10 - 3 + 1)


def test_windows_too_large_for_the_data_and_conflicting_flags_fail_clearly(prepared, tmp_path):
    # 290 points: longer than every series' training part (the longest has 268), but one series
    # still has a valid window.
    too_long = run_task(train_flags(prepared / "prepared", tmp_path / "r1", n_inputs=280,
                                    n_outputs=10))
    assert too_long.returncode == 1
    assert ("no series has a window of 290 points (--n_inputs 280 + --n_outputs 10) with its "
            "targets in the train split, so there is nothing to train on") in too_long.stderr
    assert "3 of 3 series have no training window of 290 points" in too_long.stderr
    both = run_task(["--data_dir", str(prepared / "prepared"), "--train_data_paths", "x*.csv",
                     "--eval_data_paths", "y*.csv", "--output_dir", str(tmp_path / "r2")])
    assert both.returncode == 2 and "not both" in both.stderr
    stats = run_task(["--data_dir", str(prepared / "prepared"), "--stats_file", "p.json",
                      "--output_dir", str(tmp_path / "r3")])
    assert stats.returncode == 2 and "--data_dir brings its own prepare.json" in stats.stderr
    rows_dir = tmp_path / "rows"
    assert run_tool("trainer.prepare", "--input", str(prepared / "raw.csv"), "--output_dir",
                    str(rows_dir), "--layout", "windows", "--n_inputs", "16", "--n_outputs",
                    "4").returncode == 0
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(tmp_path), "--data_dir",
                          str(rows_dir), "--output", str(tmp_path / "e.json"))
    assert evaluation.returncode == 1
    assert "was prepared with --layout windows, not series" in evaluation.stderr


def test_the_trainer_scores_each_series_on_its_own_scale_as_evaluate_does(tmp_path):
    """Three series around 10, 1000 and 100000: the streaming evaluation's per-series mase,
    rmsse and smape equal trainer.evaluate's on the same split, and its --per_series table
    holds each series' own figures, computed here by hand from the raw values."""
    rng = np.random.default_rng(5)
    levels = {"ten": 10.0, "thousand": 1000.0, "lakh": 1e5}
    raw = {name: level * (1 + 0.2 * np.sin(2 * np.pi * np.arange(120) / SEASON))
           + rng.normal(0, level / 20, 120) for name, level in levels.items()}
    lines = ["series_id,timestamp,value"] + [f"{name},{t},{value:.6f}" for name, values in raw.items()
                                             for t, value in enumerate(values)]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepared_dir = tmp_path / "prepared"
    result = run_tool("trainer.prepare", "--input", str(tmp_path / "raw.csv"), "--output_dir",
                      str(prepared_dir), "--valid_points", "12", "--test_points", "12",
                      "--season", str(SEASON), "--timestamp_column", "timestamp")
    assert result.returncode == 0, result.stderr[-3000:]
    output = tmp_path / "run"
    flags = train_flags(prepared_dir, output, n_inputs=16, n_outputs=4)
    flags[flags.index("--train_steps") + 1] = "60"
    flags[flags.index("--save_checkpoints_steps") + 1] = "60"
    result = run_task(flags)
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((output / "metrics.json").read_text())
    table = tmp_path / "per_series.csv"
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(output), "--data_dir",
                          str(prepared_dir), "--split", "valid", "--per_series", str(table),
                          "--output", str(tmp_path / "valid.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    scored = json.loads((tmp_path / "valid.json").read_text())["metrics"]
    assert metrics["series_evaluated"] == scored["series_evaluated"] == 3
    for name in ("mase", "rmsse", "smape", "seasonal_naive_mase", "naive_rmsse", "mae",
                 "share_beating_seasonal_naive"):
        assert metrics[name] == pytest.approx(scored[name], rel=1e-5), name
    # By hand: each series' valid windows (targets in its last 12 points before the test 12),
    # scaled by the MAE of y[t] - y[t - 8] over its first 96 points (the train split).
    export = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
    rows = {line.split(",")[0]: line.split(",") for line in table.read_text().splitlines()}
    header = rows.pop("series_id")
    by_hand = []
    for name, values in raw.items():
        values = np.round(values, 6).astype(np.float32).astype(np.float64)
        starts = range(96 - 16, 96 + 12 - 4 - 16 + 1)  # first target at 96 .. last at 107
        windows = np.stack([values[s:s + 20] for s in starts])
        forecast = export(rawdata=tf.constant(windows[:, :16], tf.float32))["predicted"].numpy()
        scale = np.mean(np.abs(values[8:96] - values[:88]))
        mase = np.mean(np.abs(forecast - windows[:, 16:])) / scale
        by_hand.append(mase)
        row = dict(zip(header, rows[name]))
        assert int(row["windows"]) == len(windows) == 9
        assert float(row["mase"]) == pytest.approx(mase, rel=1e-4), name
    assert scored["mase"] == pytest.approx(np.mean(by_hand), rel=1e-4)


def test_backtest_windows_are_k_rolling_origins_per_series(tmp_path):
    """prepare --valid_windows 3 --test_windows 2: the valid split is the last 3 horizons before
    the test split's 2, the trainer evaluates 3 windows a horizon apart per series, and a series
    too short for them is named."""
    rng = np.random.default_rng(6)
    lengths = {"long_a": 90, "long_b": 70, "short": 30}  # short: 30 - 2*4 - 12 < 16 inputs
    lines = ["series_id,timestamp,value"] + [
        f"{name},{t},{5 + np.sin(t) + rng.normal(0, 0.1):.5f}"
        for name, length in lengths.items() for t in range(length)]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepared_dir = tmp_path / "prepared"
    result = run_tool("trainer.prepare", "--input", str(tmp_path / "raw.csv"), "--output_dir",
                      str(prepared_dir), "--valid_windows", "3", "--test_windows", "2",
                      "--n_inputs", "16", "--n_outputs", "4", "--timestamp_column", "timestamp")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 of 3 series have fewer than 3 valid windows" in result.stderr
    assert "for example short" in result.stderr
    summary = json.loads((prepared_dir / "prepare.json").read_text())
    assert summary["boundaries"] == {"valid_points": 12, "test_points": 8, "valid_windows": 3,
                                     "test_windows": 2, "horizon": 4}
    # short has 30 - 8 - 12 = 10 training points: its first valid window would need 16 inputs.
    assert summary["splits"]["valid"]["windows"] == 2 * 3 + 1
    assert summary["splits"]["test"]["windows"] == 3 * 2
    output = tmp_path / "run"
    flags = train_flags(prepared_dir, output, n_inputs=16, n_outputs=4)
    flags[flags.index("--train_steps") + 1] = "40"
    flags[flags.index("--save_checkpoints_steps") + 1] = "40"
    flags[flags.index("--season") + 1] = "1"
    result = run_task(flags)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "7 evaluation windows of 20 points (3 backtest windows per series, 4 steps apart)" in \
        result.stderr
    assert "1 of 3 series have fewer than 3 backtest windows" in result.stderr
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(output), "--data_dir",
                          str(prepared_dir), "--split", "valid", "--per_series",
                          str(tmp_path / "valid.csv"), "--output", str(tmp_path / "valid.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert json.loads((tmp_path / "valid.json").read_text())["windows"] == 7
    windows = {line.split(",")[0]: int(line.split(",")[1])
               for line in (tmp_path / "valid.csv").read_text().splitlines()[1:]}
    assert windows == {"long_a": 3, "long_b": 3, "short": 1}
    # The windows end where the split ends and step back one horizon: for long_a (90 points,
    # valid 70..81) the targets start at 70, 74 and 78.
    cut, series = read_windows_and_series(open_prepared(str(prepared_dir)).files, split="valid",
                                          n_inputs=16, n_outputs=4, stride=4)
    values = {name: np.array([float(line.split(",")[2]) for line in lines[1:]
                              if line.startswith(name + ",")]) for name in lengths}
    first = cut[series == list(lengths).index("long_a")]
    np.testing.assert_allclose(first, np.stack([values["long_a"][s:s + 20] for s in (54, 58, 62)]),
                               rtol=1e-6)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["series_evaluated"] == 3
