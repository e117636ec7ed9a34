"""A new user's first hour: the README's worked example, run from the README text itself with the
`forecast` command pip installs, and the commands reading what the earlier ones wrote (the
bad-value policy, the season) instead of asking for it again."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, run_task, run_tool
from tests.docs_pages import section

pytestmark = pytest.mark.e2e

SECTION = section("README.md", "## From a raw series to a forecast")


def fenced_blocks(text: str, language: str = ""):
    """The fenced code blocks of `text` opened with ```LANGUAGE, in order."""
    blocks, current, opened = [], None, ""
    for line in text.splitlines():
        if line.startswith("```") and current is None:
            current, opened = [], line[3:].strip()
        elif line.startswith("```"):
            if opened == language:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package as pip installs it from a clone (setup.py and trainer/ copied), with its
    console scripts, into a directory of its own; run with the interpreter of the tests."""
    clone = tmp_path_factory.mktemp("clone")
    shutil.copy(REPO_ROOT / "setup.py", clone)
    shutil.copytree(REPO_ROOT / "trainer", clone / "trainer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                             "--no-build-isolation", "--no-index", "--target", str(target), str(clone)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (target / "bin" / "forecast").is_file()
    return target


@pytest.fixture(scope="module")
def worked_example(installed, tmp_path_factory):
    """The README's block, run by bash in a fresh directory whose `.venv` is the tests' own."""
    block = fenced_blocks(SECTION, "bash")[0]
    work = tmp_path_factory.mktemp("first_hour")
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    result = run_block(block, work=work, installed=installed)
    return {"block": block, "dir": work, "result": result, "installed": installed}


def run_block(block: str, *, work: Path, installed: Path) -> subprocess.CompletedProcess:
    """Run a block of the docs by bash in `work`, as a user would after the worked example."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "AIP_MODEL_DIR", "PYTHONPATH")}
    # After `source .venv/bin/activate` the package's console script is found on the PATH, and
    # `trainer` is the copy pip installed.
    env.update(PATH=f"{installed / 'bin'}:{env['PATH']}", PYTHONPATH=str(installed))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def docs_block(name: str, heading: str) -> str:
    """The first ```bash block under `heading` of the page `name` (after the activation that
    the worked example's block begins with)."""
    return "source .venv/bin/activate\n" + fenced_blocks(section(name, heading), "bash")[0]


def test_the_closed_form_block_of_the_models_page_runs_on_the_prepared_series(worked_example):
    """docs/models.md's command, as written, in the worked example's directory."""
    block = docs_block("docs/models.md", "### The linear models in closed form (`--solver closed_form`)")
    run_block(block, work=worked_example["dir"], installed=worked_example["installed"])
    run = worked_example["dir"] / "runs" / "nlinear-cf"
    fit = json.loads((run / "closed_form.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["evaluations"] == len(fit["fits"]) == 6, fit
    assert metrics["mase"] < metrics["naive_mase"]
    assert list((run / "export" / "best").iterdir())


def test_the_quantile_block_of_the_quantiles_page_trains_calibrated_intervals(worked_example):
    """docs/quantiles.md's command, as written, in the worked example's directory."""
    block = docs_block("docs/quantiles.md", "## Quantile forecasts and intervals")
    run_block(block, work=worked_example["dir"], installed=worked_example["installed"])
    metrics = json.loads((worked_example["dir"] / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 6000
    assert metrics["calibration"]["levels"] == [0.025, 0.1, 0.5, 0.9, 0.975], metrics["calibration"]
    assert metrics["wql"] < metrics["naive_wql"]


def test_the_block_activates_the_venv_first_and_uses_the_short_commands(worked_example):
    lines = [line for line in worked_example["block"].splitlines() if line.strip()]
    assert lines[0] == "source .venv/bin/activate"
    assert [line.split()[1] for line in lines if line.startswith("forecast ")] == [
        "prepare", "train", "evaluate", "predict"]


def test_prepare_writes_and_prints_what_the_readme_says(worked_example):
    work, out = worked_example["dir"], worked_example["result"].stdout
    quoted = re.search(r"`(windows: train .*? rows dropped\))`", SECTION.replace("\n  ", " ")).group(1)
    assert quoted in out
    assert len((work / "prepared" / "series-00000-of-00001.csv").read_text().splitlines()) == 731
    summary = json.loads((work / "prepared" / "prepare.json").read_text())
    assert (summary["target"], summary["timestamp_column"], summary["season"]) == ("store_a", "date", 7)


def test_training_took_the_window_and_season_from_prepare_json(worked_example):
    run = worked_example["dir"] / "runs" / "store_a"
    config = json.loads((run / "config.json").read_text())
    assert (config["n_inputs"], config["n_outputs"], config["season"]) == (28, 7, 7)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 3000 and metrics["rmse"] < metrics["naive_rmse"] / 2
    out = worked_example["result"].stdout
    assert "SavedModel: runs/store_a/export/best/" in out
    # The metrics as a short table, not one long JSON line.
    assert re.search(r"^model +\d+\.\d{4} +\d+\.\d{4}", out, re.MULTILINE)
    training = out.split("done: ", 1)[1].split(" windows x 7 steps from the test split", 1)[0]
    assert max(len(line) for line in training.splitlines()) < 110, training
    assert not any(line.startswith("metrics: {") for line in out.splitlines())
    data = json.loads(next(run.glob("export/best/*/assets.extra/data.json")).read_text())
    assert data["season"] == 7
    assert data["reading"]["timestamp_column"] == "date" and data["reading"]["target"] == "store_a"


def test_evaluate_prints_the_readmes_table_without_output(worked_example):
    out = worked_example["result"].stdout
    table = fenced_blocks(SECTION)[0].splitlines()
    for line in table[:2] + [line for line in table if line.startswith(("naive ", "seasonal_naive "))]:
        assert line in out, line  # the heading, the columns and the baselines, exactly
    readme_rmse = float(next(line for line in table if line.startswith("model ")).split()[1])
    measured = re.search(r"^model +(\d+\.\d+)", out.split("64 windows x 7 steps", 1)[1], re.MULTILINE)
    # Training order is random: 6.13 and 6.16 in the runs the README reports; far from naive's 30.9.
    assert abs(float(measured.group(1)) - readme_rmse) < 0.3 * readme_rmse
    assert "written to" not in out.split("64 windows x 7 steps", 1)[1]


def test_predict_writes_the_forecast_at_float32_precision_and_the_plot(worked_example):
    work = worked_example["dir"]
    with (work / "forecast.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["series_id", "timestamp", "step", "forecast", "actual"]
    assert [(r["series_id"], r["timestamp"]) for r in rows] == [
        ("store_a", f"2024-12-{day}") for day in (31,)] + [
        ("store_a", f"2025-01-0{day}") for day in range(1, 7)]
    for row in rows:
        assert len(row["forecast"].replace(".", "").replace("-", "").lstrip("0")) <= 9, row
        assert 200 < float(row["forecast"]) < 330
    png = (work / "forecast.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def write_daily(path: Path, *, missing=()) -> Path:
    rng = np.random.default_rng(3)
    lines = ["day,units"]
    for t in range(200):
        value = "" if t in missing else f"{50 + 10 * np.sin(2 * np.pi * t / 5) + rng.normal(0, 1):.2f}"
        lines.append(f"{t},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_and_evaluate_take_the_policy_columns_and_season_of_the_training_run(tmp_path):
    raw = write_daily(tmp_path / "raw.csv", missing=(60, 61, 180))
    prepared = tmp_path / "prepared"
    result = run_tool("trainer.prepare", "--input", str(raw), "--timestamp_column", "day",
                      "--output_dir", str(prepared), "--on_bad_values", "drop", "--season", "5",
                      "--n_inputs", "10", "--n_outputs", "3", "--valid_points", "20",
                      "--test_points", "20", "--shards", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "left out 3 rows with a missing or non-numeric value" in result.stderr
    run = tmp_path / "run"
    result = run_task(["--data_dir", str(prepared), "--output_dir", str(run), "--model", "linear",
                       "--optimizer", "adam", "--learning_rate", "0.05", "--train_steps", "200",
                       "--batch_size", "16"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "a single process (no TF_CONFIG cluster) trains and evaluates" in result.stderr
    assert "parameter servers" not in result.stderr
    # The raw file has an empty value near its end: predict drops it as prepare did, untold.
    forecast = tmp_path / "forecast.csv"
    result = run_tool("trainer.predict", "--model_dir", str(run), "--series", str(raw),
                      "--output", str(forecast))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--timestamp_column day --series_id_column series_id --on_bad_values drop" in result.stderr
    rows = list(csv.DictReader(forecast.open()))
    assert [r["timestamp"] for r in rows] == ["200", "201", "202"]
    # A flag given still wins.
    result = run_tool("trainer.predict", "--model_dir", str(run), "--series", str(raw),
                      "--output", str(forecast), "--on_bad_values", "fail", "--overwrite")
    assert result.returncode == 1
    assert f"error: line 62 of {raw}" in result.stderr and "is missing" in result.stderr
    # evaluate: the training run's season, and the table without --output.
    result = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_dir", str(prepared))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "season 5 (the model's, from its training run)" in result.stdout
    assert re.search(r"^seasonal_naive +\d", result.stdout, re.MULTILINE)
    assert "written to" not in result.stdout
