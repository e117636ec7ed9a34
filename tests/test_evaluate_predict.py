"""End to end, as a user runs it: raw series -> prepare -> train -> evaluate -> forecast CSV and PNG."""

import csv
import datetime
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool
from trainer.model.metrics import compute_metrics

pytestmark = pytest.mark.e2e

N_INPUTS, N_OUTPUTS, SEASON = 7, 3, 6
START = datetime.date(2024, 1, 1)


def write_long_series(path: Path) -> Path:
    """Two daily series with a 6-day season, different levels and amplitudes, 150 days each."""
    rng = np.random.default_rng(7)
    lines = ["series_id,timestamp,value"]
    for name, level, amplitude in (("north", 100.0, 10.0), ("south", 40.0, 4.0)):
        for day in range(150):
            value = level + amplitude * np.sin(2 * np.pi * day / SEASON) + rng.normal(0, 0.3)
            lines.append(f"{name},{START + datetime.timedelta(days=day)},{value:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    raw = write_long_series(root / "raw.csv")
    prepared = root / "prepared"
    result = run_tool("trainer.prepare", "--input", str(raw), "--output_dir", str(prepared),
                      "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS),
                      "--season", str(SEASON), "--shards", "2", "--layout", "windows")
    assert result.returncode == 0, result.stderr[-3000:]
    run = root / "run"
    result = run_task([
        "--train_data_paths", str(prepared / "train-*.csv"),
        "--eval_data_paths", str(prepared / "valid-*.csv"), "--output_dir", str(run),
        "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS), "--hidden_units", "8",
        "--batch_size", "16", "--train_steps", "300", "--optimizer", "adam",
        "--learning_rate", "0.02", "--scaling", "window_zscore",
        "--stats_file", str(prepared / "prepare.json"), "--season", str(SEASON),
        "--eval_throttle_secs", "0", "--progress_interval_secs", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "raw": raw, "prepared": prepared, "run": run,
            "summary": json.loads((prepared / "prepare.json").read_text()),
            "metrics": json.loads((run / "metrics.json").read_text())}


def load_rows(pattern_dir: Path, split: str) -> np.ndarray:
    return np.concatenate([np.loadtxt(p, delimiter=",", ndmin=2)
                           for p in sorted(pattern_dir.glob(f"{split}-*.csv"))])


def test_prepare_splits_both_series_at_the_same_dates(pipeline):
    summary = pipeline["summary"]
    # 150 distinct days: 120 train, 15 valid, 15 test.
    assert summary["boundaries"] == {"valid_start": "2024-04-30", "test_start": "2024-05-15"}
    # Per series: train windows 120 - 10 + 1 = 111; valid and test: 15 - 3 + 1 = 13 each.
    assert {s: summary["splits"][s]["windows"] for s in ("train", "valid", "test")} == {
        "train": 222, "valid": 26, "test": 26}
    assert summary["statistics"]["count"] == 240
    assert set(summary["statistics"]["in_sample_naive_mae"]) == {"1", str(SEASON)}


def test_training_reports_every_metric_and_beats_the_naive_forecast(pipeline):
    metrics = pipeline["metrics"]
    for name in ("rmse", "mae", "mape", "smape", "mase", "naive_mase", "seasonal_naive_rmse"):
        assert np.isfinite(metrics[name]), name
    assert metrics["rmse"] < metrics["naive_rmse"]
    assert metrics["mase"] < metrics["naive_mase"]
    # MASE is the MAE over the training split's in-sample seasonal naive MAE.
    scale = pipeline["summary"]["statistics"]["in_sample_naive_mae"][str(SEASON)]
    assert metrics["mase"] == pytest.approx(metrics["mae"] / scale, rel=1e-4)


def test_evaluate_writes_json_that_matches_the_saved_model_and_the_trainer(pipeline, tmp_path):
    output = tmp_path / "valid_metrics.json"
    prepared = pipeline["prepared"]
    result = run_tool("trainer.evaluate", "--model_dir", str(pipeline["run"]),
                      "--data_paths", str(prepared / "valid-*.csv"),
                      "--stats_file", str(prepared / "prepare.json"), "--season", str(SEASON),
                      "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seasonal_naive" in result.stdout and f"written to {output}" in result.stdout
    evaluation = json.loads(output.read_text())
    assert (evaluation["windows"], evaluation["points"]) == (26, 26 * N_OUTPUTS)
    assert evaluation["model"] == pipeline["metrics"]["saved_model_path"]
    # Recompute from the SavedModel by hand.
    rows = load_rows(prepared, "valid")
    serve = tf.saved_model.load(evaluation["model"]).signatures["serving_default"]
    forecast = serve(rawdata=tf.constant(rows[:, :N_INPUTS], tf.float32))["predicted"].numpy()
    actual = rows[:, N_INPUTS:]
    assert evaluation["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean((forecast - actual) ** 2)),
                                                          rel=1e-5)
    assert evaluation["metrics"]["naive_mae"] == pytest.approx(
        np.mean(np.abs(rows[:, N_INPUTS - 1:N_INPUTS] - actual)), rel=1e-9)
    scale = pipeline["summary"]["statistics"]["in_sample_naive_mae"][str(SEASON)]
    assert evaluation["mase_scale"] == scale
    # The trainer evaluated the same split with the same definitions (float32 streaming there).
    for name in ("rmse", "mae", "mape", "smape", "mase", "naive_rmse", "seasonal_naive_mase"):
        assert evaluation["metrics"][name] == pytest.approx(pipeline["metrics"][name], rel=1e-4), name
    assert evaluation["metrics"] == pytest.approx(compute_metrics(
        actual=actual, forecast=forecast, inputs=rows[:, :N_INPUTS], season=SEASON,
        mase_scale=scale, rmsse_scale=pipeline["summary"]["statistics"]["in_sample_naive_mse"]),
        rel=1e-6)


def read_csv(path: Path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def assert_png(path: Path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_from_the_raw_series_writes_forecast_csv_and_png(pipeline, tmp_path):
    output, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    result = run_tool("trainer.predict", "--model_dir", str(pipeline["run"]),
                      "--series", str(pipeline["raw"]), "--output", str(output), "--plot", str(plot))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(output)
    assert [(r["series_id"], r["timestamp"], r["step"]) for r in rows] == [
        (name, str(START + datetime.timedelta(days=150 + k)), str(k + 1))
        for name in ("north", "south") for k in range(N_OUTPUTS)]
    assert all(r["actual"] == "" for r in rows)
    # The forecast is the SavedModel's on the last 7 values of each series.
    values = {name: [] for name in ("north", "south")}
    for line in pipeline["raw"].read_text().splitlines()[1:]:
        name, _, value = line.split(",")
        values[name].append(float(value))
    serve = tf.saved_model.load(pipeline["metrics"]["saved_model_path"]).signatures["serving_default"]
    inputs = np.array([values[name][-N_INPUTS:] for name in ("north", "south")], dtype=np.float32)
    expected = serve(rawdata=tf.constant(inputs))["predicted"].numpy()
    np.testing.assert_allclose(np.array([float(r["forecast"]) for r in rows]).reshape(2, N_OUTPUTS),
                               expected, rtol=1e-6)
    # In the original units: near each series' level, not near 0.
    assert 80 < expected[0].mean() < 120 and 30 < expected[1].mean() < 50
    assert_png(plot)


def test_predict_backtest_and_prepared_rows_carry_the_actual_values(pipeline, tmp_path):
    backtest = tmp_path / "backtest.csv"
    result = run_tool("trainer.predict", "--model_dir", str(pipeline["run"]), "--series",
                      str(pipeline["raw"]), "--backtest", "--output", str(backtest))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(backtest)
    assert [r["timestamp"] for r in rows[:N_OUTPUTS]] == [
        str(START + datetime.timedelta(days=147 + k)) for k in range(N_OUTPUTS)]
    raw_lines = pipeline["raw"].read_text().splitlines()
    assert [float(r["actual"]) for r in rows[:N_OUTPUTS]] == [
        float(line.split(",")[2]) for line in raw_lines[148:151]]
    errors = [abs(float(r["forecast"]) - float(r["actual"])) for r in rows]
    assert np.mean(errors) < 3.0  # amplitudes 10 and 4: a forecast, not noise

    from_rows, plot = tmp_path / "test_forecast.csv", tmp_path / "rows.png"
    result = run_tool("trainer.predict", "--model_dir", str(pipeline["run"]), "--rows",
                      str(pipeline["prepared"] / "test-*.csv"), "--output", str(from_rows),
                      "--plot", str(plot), "--plot_count", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(from_rows)
    test = load_rows(pipeline["prepared"], "test")
    assert len(rows) == len(test) * N_OUTPUTS
    np.testing.assert_allclose([float(r["actual"]) for r in rows], test[:, N_INPUTS:].ravel())
    assert_png(plot)


def test_model_and_rows_of_another_shape_fail_clearly(pipeline, tmp_path):
    other = tmp_path / "other"
    prepared = run_tool("trainer.prepare", "--input", str(pipeline["raw"]), "--output_dir", str(other),
                        "--n_inputs", "9", "--n_outputs", "3", "--layout", "windows")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    first = sorted(other.glob("test-*.csv"))[0]
    for module, flag, expected in (("trainer.evaluate", "--data_paths", "10"),
                                   ("trainer.predict", "--rows", "10 or 7")):
        result = run_tool(module, "--model_dir", str(pipeline["run"]), flag, str(other / "test-*.csv"),
                          "--output", str(tmp_path / "out"))
        assert result.returncode == 1, result.stderr[-2000:]
        assert (f"error: row 1 of {first} has 12 values, expected {expected}: the model at "
                f"{pipeline['metrics']['saved_model_path']} reads n_inputs 7 and forecasts n_outputs 3"
                ) in result.stderr
        assert "Traceback" not in result.stderr
    missing = run_tool("trainer.evaluate", "--model_dir", str(tmp_path), "--data_paths",
                       str(other / "test-*.csv"), "--output", str(tmp_path / "o.json"))
    assert missing.returncode == 1
    assert f"error: --model_dir {tmp_path} holds no saved_model.pb" in missing.stderr


def test_series_too_short_for_the_model(pipeline, tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("timestamp,value\n" + "".join(f"{t},{t}.5\n" for t in range(5)))
    result = run_tool("trainer.predict", "--model_dir", str(pipeline["run"]), "--series", str(short),
                      "--output", str(tmp_path / "f.csv"))
    assert result.returncode == 1
    assert (f"error: series 'value' of {short} has 5 points, fewer than the model's n_inputs 7"
            in result.stderr)
