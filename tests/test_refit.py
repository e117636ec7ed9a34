"""trainer.refit: a chosen run trained again on train and valid, for its chosen steps."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool
from trainer.data.prepared import open_prepared
from trainer.data.series_reads import read_split_windows
from trainer.training.config import make_config
from trainer.training.data_source import resolve_training_data
from trainer.util.environment import TaskInfo

N_INPUTS, N_OUTPUTS = 12, 3


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Two series whose valid points are 1000 above their train points and test points 5000
    above: where a window's targets come from shows in their values."""
    root = tmp_path_factory.mktemp("refit")
    lines = ["series_id,timestamp,value"]
    for name, length in (("a", 80), ("b", 60)):
        for t in range(length):
            split_at = length - 10 - 6  # valid: the 10 points before the test's 6
            level = 0.0 if t < split_at else 1000.0 if t < length - 6 else 5000.0
            lines.append(f"{name},{t},{level + t % 4}")
    (root / "raw.csv").write_text("\n".join(lines) + "\n")
    result = run_tool("trainer.prepare", "--input", str(root / "raw.csv"), "--output_dir",
                      str(root / "prepared"), "--valid_points", "10", "--test_points", "6",
                      "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS),
                      "--timestamp_column", "timestamp")
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "prepared"


def training_targets(data_dir, *, train_on_valid: bool) -> np.ndarray:
    config = make_config(data_dir=str(data_dir), n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                         batch_size=16, steps_per_run=1, train_on_valid=train_on_valid)
    data = resolve_training_data(config, output_dir="unused", task=TaskInfo())
    batches = data.train_input_fn().take(40)
    return np.concatenate([labels.numpy() for _, labels in batches])


def test_a_refit_trains_on_the_windows_of_the_valid_split_and_a_run_never_does(prepared):
    ordinary = training_targets(prepared, train_on_valid=False)
    refit = training_targets(prepared, train_on_valid=True)
    assert ordinary.max() < 1000  # no valid point among the targets of an ordinary run
    assert 1000 <= refit.max() < 5000  # the most recent points, never the test split's
    # Every valid window's targets are among the refit's.
    valid = read_split_windows(open_prepared(str(prepared)).files, split="valid",
                               n_inputs=N_INPUTS, n_outputs=N_OUTPUTS)[:, N_INPUTS:]
    assert {tuple(row) for row in valid} <= {tuple(row) for row in refit}


@pytest.mark.e2e
def test_refit_trains_the_chosen_configuration_for_the_chosen_steps(prepared, tmp_path):
    run = tmp_path / "run"
    result = run_task(["--data_dir", str(prepared), "--output_dir", str(run), "--model", "dnn",
                       "--hidden_units", "8", "--train_steps", "60", "--save_checkpoints_steps",
                       "20", "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS),
                       "--optimizer", "adam", "--learning_rate", "0.01"])
    assert result.returncode == 0, result.stderr[-3000:]
    best = json.loads((run / "metrics.json").read_text())["global_step"]
    result = run_tool("trainer.refit", "--run_dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    refit = run / "refit"
    config = json.loads((refit / "config.json").read_text())
    assert config["train_on_valid"] is True and config["train_steps"] == best
    assert config["model"] == "dnn" and config["hidden_units"] == 8 and config["early_stopping_evals"] == 0
    record = json.loads((refit / "refit.json").read_text())
    assert record["run_dir"] == str(run) and record["global_step"] == best
    metrics = json.loads((refit / "metrics.json").read_text())
    assert metrics["global_step"] == best and metrics["evaluations"] == 1
    assert f"refit of {run}" in result.stdout and metrics["saved_model_path"] in result.stdout
    assert "those whose targets reach into the valid split (--train_on_valid)" in result.stderr
    serve = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
    forecast = serve(rawdata=tf.zeros([2, N_INPUTS]))["predicted"].numpy()
    assert forecast.shape == (2, N_OUTPUTS)
    # The run's own files are untouched, and a refit of nothing is a clear error.
    assert json.loads((run / "metrics.json").read_text())["global_step"] == best
    missing = run_tool("trainer.refit", "--run_dir", str(tmp_path / "nothing"))
    assert missing.returncode != 0 and "holds no config.json" in missing.stderr
