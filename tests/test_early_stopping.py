"""Early stopping end to end: a run whose validation error grows with training stops after
--early_stopping_evals evaluations without improvement, and its answer (metrics.json, the
`done:` line, the export that evaluate and predict pick) is its best evaluation."""

import json

import numpy as np
import pytest

from tests.conftest import run_task, run_tool, write_rows
from trainer.model.serving import load_exported_model

pytestmark = pytest.mark.e2e

N_INPUTS, N_OUTPUTS = 8, 2


def flat_windows(rows: int, *, shift: float, seed: int) -> np.ndarray:
    """Flat windows at random levels whose targets are the last value plus `shift`: trained
    on shift 1 and evaluated on shift 0, every step of training makes validation worse."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(-5, 5, size=(rows, 1))
    inputs = level + rng.normal(0, 0.01, size=(rows, N_INPUTS))
    targets = inputs[:, -1:] + shift + rng.normal(0, 0.01, size=(rows, N_OUTPUTS))
    return np.concatenate([inputs, targets], axis=1)


def test_validation_that_gets_worse_stops_training_and_exports_the_best(tmp_path):
    write_rows(tmp_path / "train.csv", flat_windows(2000, shift=1.0, seed=1))
    write_rows(tmp_path / "eval.csv", flat_windows(300, shift=0.0, seed=2))
    output = tmp_path / "run"
    result = run_task([
        "--train_data_paths", str(tmp_path / "train.csv"), "--eval_data_paths",
        str(tmp_path / "eval.csv"), "--output_dir", str(output), "--n_inputs", str(N_INPUTS),
        "--n_outputs", str(N_OUTPUTS), "--model", "linear", "--scaling", "last_value",
        "--optimizer", "adam", "--learning_rate", "0.005", "--train_steps", "3000",
        "--save_checkpoints_steps", "20", "--eval_throttle_secs", "0",
        "--early_stopping_evals", "2", "--progress_interval_secs", "1"])
    assert result.returncode == 0, result.stderr[-4000:]
    evaluations = json.loads((output / "evaluations.json").read_text())["evaluations"]
    # Monitored by mase, the default.
    mases = [e["mase"] for e in evaluations]
    best = int(np.argmin(mases))
    # Stopped long before --train_steps: 2 evaluations after the best (one more at the end).
    assert len(evaluations) - 1 - best in (2, 3), mases
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["last_global_step"] < 500, metrics["last_global_step"]
    assert metrics["monitored_metric"] == "mase"
    assert metrics["mase"] == pytest.approx(min(mases))
    assert metrics["rmse"] == pytest.approx(evaluations[best]["rmse"])
    assert metrics["global_step"] == evaluations[best]["global_step"] < metrics["last_global_step"]
    assert metrics["evaluations"] == len(evaluations)
    assert "early stopping: 2 evaluations without a lower mase" in result.stderr
    assert (f"done: step {metrics['last_global_step']} (the best of {len(evaluations)} "
            f"evaluations by mase: step {metrics['global_step']})") in result.stdout
    # The export that the tools pick is the best evaluation's: it scores what metrics.json says.
    exported = load_exported_model(str(output))
    assert exported.path == metrics["saved_model_path"]
    assert "/export/best/" in exported.path
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(output), "--data_paths",
                          str(tmp_path / "eval.csv"), "--output", str(tmp_path / "eval.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    scored = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert scored["rmse"] == pytest.approx(metrics["rmse"], rel=1e-4)
    assert scored["mase"] == pytest.approx(metrics["mase"], rel=1e-4)
    assert scored["mase"] < max(mases)  # not the last, worse, model
    # A rerun of the same directory has nothing left to do: it stops at once, keeping the answer.
    rerun = run_task(["--train_data_paths", str(tmp_path / "train.csv"), "--eval_data_paths",
                      str(tmp_path / "eval.csv"), "--output_dir", str(output), "--n_inputs",
                      str(N_INPUTS), "--n_outputs", str(N_OUTPUTS), "--model", "linear",
                      "--scaling", "last_value", "--optimizer", "adam", "--learning_rate", "0.005",
                      "--train_steps", "3000", "--save_checkpoints_steps", "20",
                      "--eval_throttle_secs", "0", "--early_stopping_evals", "2"])
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    again = json.loads((output / "metrics.json").read_text())
    assert again["mase"] == pytest.approx(metrics["mase"])
    assert again["last_global_step"] - metrics["last_global_step"] <= 20


def test_a_throttle_given_with_a_step_schedule_skips_evaluations_and_says_so(tmp_path):
    write_rows(tmp_path / "train.csv", flat_windows(400, shift=1.0, seed=1))
    write_rows(tmp_path / "eval.csv", flat_windows(60, shift=0.0, seed=2))
    output = tmp_path / "run"
    result = run_task([
        "--train_data_paths", str(tmp_path / "train.csv"), "--eval_data_paths",
        str(tmp_path / "eval.csv"), "--output_dir", str(output), "--n_inputs", str(N_INPUTS),
        "--n_outputs", str(N_OUTPUTS), "--model", "linear", "--train_steps", "80",
        "--save_checkpoints_steps", "20", "--eval_throttle_secs", "3600",
        "--early_stopping_evals", "2"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert ("WARNING --eval_throttle_secs 3600: a checkpoint saved (every 20 steps) within 3600 s "
            "of the previous evaluation is not evaluated, and --early_stopping_evals 2 counts "
            "only the evaluations that run") in result.stderr
    assert json.loads((output / "config.json").read_text())["eval_throttle_secs"] == 3600
    # The first checkpoint after step 0 is evaluated; those of steps 40, 60 and 80 come within
    # the throttle, each said; the last is evaluated anyway when training ends.
    evaluations = json.loads((output / "evaluations.json").read_text())["evaluations"]
    assert [e["global_step"] for e in evaluations] == [20, 80]
    assert result.stderr.count("INFO Skip the current checkpoint eval due to throttle secs "
                               "(3600 secs).") == 3
