"""Quantile forecasts end to end: trained on data with known Gaussian noise (and calibrated on
the valid windows, the default), the 80% interval covers about 80% of held-out values and the
median sits near the noise-free value; the SavedModel returns the quantiles; the tuning
service gets wql; evaluate and predict read the levels from the export with no flag; the plot
draws the band."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool, write_rows
from trainer.model.metrics import compute_metrics
from trainer.model.serving import load_exported_model

pytestmark = pytest.mark.e2e

N_INPUTS, N_OUTPUTS = 24, 4
PERIOD = 12
NOISE = 0.3  # the std of the Gaussian noise on every point
LEVELS = (0.1, 0.5, 0.9)
Z_90 = 1.2815515655446004  # the 0.9 quantile of the standard normal


def noisy_windows(rows: int, seed: int):
    """Windows of a sine with period 12 and random phase (the noise-free values) plus N(0, 0.3)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(N_INPUTS + N_OUTPUTS)
    phase = rng.uniform(0, 2 * np.pi, size=(rows, 1))
    clean = np.sin(2 * np.pi * steps / PERIOD + phase)
    return clean + rng.normal(0, NOISE, size=clean.shape), clean


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantiles")
    for name, rows, seed in (("train", 6000, 1), ("eval", 1000, 2)):
        write_rows(root / f"{name}.csv", noisy_windows(rows, seed)[0])
    held_out, clean = noisy_windows(2000, 3)
    write_rows(root / "test.csv", held_out)
    metric_file = root / "hypertune" / "output.metrics"
    result = run_task([
        "--train_data_paths", str(root / "train.csv"), "--eval_data_paths", str(root / "eval.csv"),
        "--output_dir", str(root / "run"), "--n_inputs", str(N_INPUTS),
        "--n_outputs", str(N_OUTPUTS), "--model", "linear", "--loss", "quantile",
        "--quantiles", ",".join(map(str, LEVELS)), "--hypertune_metric", "wql",
        "--optimizer", "adam", "--learning_rate", "0.01", "--batch_size", "128",
        "--train_steps", "1500", "--save_checkpoints_steps", "1500", "--season", str(PERIOD),
        "--progress_interval_secs", "1"], env={"CLOUD_ML_HP_METRIC_FILE": str(metric_file)})
    assert result.returncode == 0, result.stderr[-4000:]
    return {"root": root, "run": root / "run", "stdout": result.stdout, "metric_file": metric_file,
            "held_out": held_out, "clean": clean,
            "metrics": json.loads((root / "run" / "metrics.json").read_text())}


def test_the_80_percent_interval_covers_80_percent_and_the_median_is_the_signal(trained):
    model = load_exported_model(str(trained["run"]))
    assert model.levels == LEVELS
    held_out, clean = trained["held_out"], trained["clean"]
    outputs = model.forecast(held_out[:, :N_INPUTS].astype(np.float32))
    quantiles = outputs["quantiles"]
    assert quantiles.shape == (2000, N_OUTPUTS, 3)
    assert np.all(np.diff(quantiles, axis=-1) > 0)  # never crossing
    actual, signal = held_out[:, N_INPUTS:], clean[:, N_INPUTS:]
    coverage = 100 * np.mean((actual >= quantiles[..., 0]) & (actual <= quantiles[..., 2]))
    assert 76 <= coverage <= 84, coverage
    # The median is the 0.5 column, and it tracks the noise-free value, not the noise.
    np.testing.assert_array_equal(outputs["predicted"], quantiles[..., 1])
    median_error = np.mean(np.abs(quantiles[..., 1] - signal))
    noise_error = np.mean(np.abs(actual - signal))  # about 0.8 * NOISE
    assert median_error < 0.5 * noise_error, (median_error, noise_error)
    # The interval is about as wide as the noise makes it: 2 * 1.28 * 0.3, a little more for
    # the uncertainty of the signal estimated from 24 noisy points.
    width = np.mean(quantiles[..., 2] - quantiles[..., 0])
    assert 2 * Z_90 * NOISE * 0.9 < width < 2 * Z_90 * NOISE * 1.25, width
    # The same metrics as the trainer's definition, and better intervals than the naive ones.
    metrics = compute_metrics(actual=actual, forecast=outputs["predicted"],
                              inputs=held_out[:, :N_INPUTS], season=PERIOD, mase_scale=None,
                              quantiles=quantiles, levels=LEVELS)
    assert metrics["coverage_80"] == pytest.approx(coverage)
    assert metrics["wql"] < 0.5 * metrics["naive_wql"]
    assert metrics["wql"] < metrics["seasonal_naive_wql"]


def test_the_savedmodel_returns_quantiles_and_their_levels(trained):
    export = trained["metrics"]["saved_model_path"]
    serve = tf.saved_model.load(export).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"predicted", "quantiles", "quantile_levels"}
    outputs = serve(rawdata=tf.constant(trained["held_out"][:5, :N_INPUTS], tf.float32))
    assert outputs["quantiles"].shape == (5, N_OUTPUTS, 3)
    assert outputs["predicted"].shape == (5, N_OUTPUTS)
    np.testing.assert_allclose(outputs["quantile_levels"].numpy(), np.tile(LEVELS, (5, 1)))
    # The answer is calibrated on the 1000 valid windows (--calibrate_intervals auto); the
    # export it was calibrated from is the head's own.
    head = json.loads((Path(export) / "assets.extra" / "head.json").read_text())
    calibration = head.pop("calibration")
    assert calibration["levels"] == list(LEVELS) and calibration["windows"] == 1000
    assert len(calibration["offsets"]) == N_OUTPUTS
    assert head == {"loss": "quantile", "quantiles": list(LEVELS),
                    "predicted": "the 0.5 quantile"}
    source = trained["metrics"]["calibration"]["uncalibrated_saved_model_path"]
    assert json.loads((Path(source) / "assets.extra" / "head.json").read_text()) == head


def test_the_tuning_service_gets_wql_as_in_metrics_json(trained):
    metrics = trained["metrics"]
    assert {"wql", "wql_0.1", "wql_0.5", "wql_0.9", "coverage_80", "width_80", "naive_wql",
            "naive_coverage_80", "seasonal_naive_wql"} <= set(metrics)
    assert "msis" not in metrics  # no 0.025 and 0.975 levels
    reports = [json.loads(line) for line in trained["metric_file"].read_text().splitlines()]
    assert reports, "nothing reported to the tuning service"
    assert float(reports[-1]["wql"]) == pytest.approx(metrics["wql"])
    assert "rmse" not in reports[-1]
    assert reports[-1]["global_step"] == str(metrics["global_step"])
    assert f"wql {metrics['wql']:.4f}" in trained["stdout"]
    assert "80% interval holds" in trained["stdout"]


def test_evaluate_and_predict_read_the_levels_from_the_export(trained, tmp_path):
    root = trained["root"]
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(trained["run"]), "--data_paths",
                          str(root / "test.csv"), "--season", str(PERIOD),
                          "--output", str(tmp_path / "test.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    scored = json.loads((tmp_path / "test.json").read_text())
    assert scored["loss"] == "quantile" and scored["quantiles"] == list(LEVELS)
    assert 76 <= scored["metrics"]["coverage_80"] <= 84
    assert "coverage_80" in evaluation.stdout and "naive" in evaluation.stdout

    output = tmp_path / "forecast.csv"
    plot = tmp_path / "forecast.png"
    prediction = run_tool("trainer.predict", "--model_dir", str(trained["run"]), "--rows",
                          str(root / "test.csv"), "--output", str(output), "--plot", str(plot),
                          "--plot_count", "2")
    assert prediction.returncode == 0, prediction.stderr[-3000:]
    assert "columns q0.1, q0.5, q0.9; forecast is the 0.5 quantile" in prediction.stdout
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["row", "step", "forecast", "q0.1", "q0.5", "q0.9", "actual"]
    assert len(rows) == 2000 * N_OUTPUTS
    for row in rows[:40]:
        assert float(row["q0.1"]) < float(row["q0.5"]) == float(row["forecast"]) < float(row["q0.9"])
    assert_band_drawn(plot)


def assert_band_drawn(path: Path):
    """The 80% band is pale blue (tab:blue at alpha 0.15 over white): such pixels are there."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))[..., :3]
    band = np.array([0.871, 0.914, 0.957])  # (31, 119, 180) / 255 at 0.15 over white
    pale_blue = np.all(np.abs(pixels - band) < 0.03, axis=-1)
    assert pale_blue.sum() > 500, pale_blue.sum()
