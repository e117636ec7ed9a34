"""The accuracy benchmark on tiny data of the public files' shapes (no ../shared needed): it runs
the package's commands per data set, model and seed, and scores them as the protocols do."""

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.accuracy import DEFAULTS, M4_NAIVE2, m4_scores, training_flags
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


def write_fake_data_root(root):
    """ETTh2.csv (14,400 hourly rows: a daily season and noise, six load columns) and M4 Weekly
    train and test files of four series, laid out as the real ones are."""
    rng = np.random.default_rng(0)
    hours = np.arange(14400)
    start = np.datetime64("2016-07-01T00:00")
    target = 20 + 5 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.5, hours.size)
    loads = rng.normal(10, 2, (hours.size, 6))
    lines = ["date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT"]
    for hour, row, value in zip(hours, loads, target):
        stamp = str(start + np.timedelta64(int(hour), "h")).replace("T", " ") + ":00"
        lines.append(",".join([stamp, *(f"{v:.3f}" for v in row), f"{value:.3f}"]))
    (root / "ETTh2.csv").write_text("\n".join(lines) + "\n")
    train, test = ['"V1",' + ",".join(f'"V{i}"' for i in range(2, 201))], ['"V1",' + ",".join(
        f'"V{i}"' for i in range(2, 15))]
    for index, length in enumerate((120, 150, 199, 90)):
        values = 100 + 10 * index + np.cumsum(rng.normal(0, 1, length + 13))
        cells = [f'"{v:.2f}"' for v in values[:length]] + ['""'] * (199 - length)
        train.append(f'"W{index + 1}",' + ",".join(cells))
        test.append(f'"W{index + 1}",' + ",".join(f'"{v:.2f}"' for v in values[length:]))
    (root / "M4-Weekly-train.csv").write_text("\n".join(train) + "\n")
    (root / "M4-Weekly-test.csv").write_text("\n".join(test) + "\n")


def test_m4_scores_are_the_competitions_per_series_means():
    actual = np.array([[10.0, 12.0], [100.0, 100.0]])
    forecast = np.array([[11.0, 12.0], [90.0, 110.0]])
    scales = np.array([2.0, 5.0])
    scores = m4_scores(forecast, actual, scales)
    smape = (200 * (1 / 21 + 0 / 24) / 2 + 200 * (10 / 190 + 10 / 210) / 2) / 2
    mase = ((0.5 / 2.0) + (10.0 / 5.0)) / 2
    assert scores["smape"] == pytest.approx(smape)
    assert scores["mase"] == pytest.approx(mase)
    assert scores["owa"] == pytest.approx((smape / M4_NAIVE2["smape"] + mase / M4_NAIVE2["mase"]) / 2)


def run_benchmark(tmp_path, *flags):
    """benchmarks.accuracy on fake data under `tmp_path`: (its output, the JSON it wrote)."""
    root = tmp_path / "data"
    root.mkdir()
    write_fake_data_root(root)
    output = tmp_path / "accuracy.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.accuracy", "--data_root", str(root), "--models",
         "linear", "--train_steps", "40", "--checkpoint_steps", "20", "--work_dir",
         str(tmp_path / "work"), "--output", str(output), *flags],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result, json.loads(output.read_text())


def test_tiny_accuracy_benchmark_writes_figures_per_model_seed_and_baseline(tmp_path):
    result, results = run_benchmark(tmp_path, "--datasets", "etth2,m4_weekly,synthetic",
                                    "--seeds", "1,2", "--synthetic_series", "3")
    assert set(results["datasets"]) == {"etth2", "m4_weekly", "synthetic"}
    expected = {"etth2": {"mse", "mae"}, "m4_weekly": {"smape", "mase", "owa"},
                "synthetic": {"rmse", "mase"}}
    for dataset, metrics in expected.items():
        entry = results["datasets"][dataset]["models"]["linear"]
        assert len(entry["runs"]) == 2
        for run in entry["runs"]:
            assert metrics <= set(run) and all(np.isfinite(run[m]) for m in metrics)
            assert run["best_step"] <= run["last_step"] <= 40
        for metric in metrics:
            figure = entry["summary"][metric]
            assert figure["min"] <= figure["median"] <= figure["max"]
        assert metrics <= set(results["datasets"][dataset]["baselines"]["naive"])
    # The naive figures are the protocols' own: ETTh2 on z-scored values, M4 per series.
    for dataset in ("etth2", "synthetic"):  # hourly: seasonal naive at 24 too
        assert "seasonal_naive" in results["datasets"][dataset]["baselines"]
    etth2 = results["datasets"]["etth2"]["baselines"]
    assert etth2["seasonal_naive"]["mse"] != etth2["naive"]["mse"]
    assert results["datasets"]["m4_weekly"]["models"]["linear"]["runs"][0]["owa"] > 0
    # trainer.evaluate's per-series scoring of the test windows is the competition's.
    for run in results["datasets"]["m4_weekly"]["models"]["linear"]["runs"]:
        assert run["package_mase_difference"] < 1e-6 and run["package_smape_difference"] < 1e-5
    assert "etth2:" in result.stdout and "naive" in result.stdout
    assert results["wall_seconds"] > 0


def test_refit_scores_the_refit_beside_the_run(tmp_path):
    _, results = run_benchmark(tmp_path, "--datasets", "m4_weekly", "--seeds", "1", "--refit")
    run = results["datasets"]["m4_weekly"]["models"]["linear"]["runs"][0]
    assert {"refit_owa", "refit_mase", "refit_smape"} <= set(run) and run["refit_owa"] > 0
    refit = json.loads((tmp_path / "work" / "m4_weekly-linear-seed1" / "refit" / "config.json")
                       .read_text())
    assert refit["train_on_valid"] and refit["train_steps"] == run["best_step"]


def test_the_defaults_row_passes_no_training_flag_and_the_models_their_settings():
    assert training_flags("etth2", DEFAULTS, train_steps=10, checkpoint_steps=5,
                          early_stopping_evals=2) == []
    flags = training_flags("m4_weekly", "tide", train_steps=10, checkpoint_steps=5,
                           early_stopping_evals=2)
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert pairs["--model"] == "tide" and pairs["--train_steps"] == "10"
    assert pairs["--early_stopping_evals"] == "2" and pairs["--scaling"] == "window_zscore"
    assert pairs["--dropout"] == "0.1" and pairs["--optimizer"] == "adam"
    flags = training_flags("etth2", "nlinear", train_steps=10, checkpoint_steps=5,
                           early_stopping_evals=2, extra=["--scaling", "window_zscore"])
    assert flags.index("global_zscore") < flags.index("window_zscore") == len(flags) - 1
    assert training_flags("etth2", DEFAULTS, train_steps=10, checkpoint_steps=5,
                          early_stopping_evals=2, extra=["--scaling", "none"]) == []
