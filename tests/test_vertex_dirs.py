"""`python -m trainer.task` under Vertex AI's variables: checkpoints in $AIP_CHECKPOINT_DIR,
TensorBoard events in $AIP_TENSORBOARD_LOG_DIR, the best SavedModel at $AIP_MODEL_DIR itself."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS, N_OUTPUTS, run_task, tiny_trainer_flags
from trainer.model.serving import holds_saved_model, load_exported_model

pytestmark = pytest.mark.e2e


def vertex_variables(base: Path) -> dict:
    """What Vertex AI sets for a job whose baseOutputDirectory is `base` (with the slashes)."""
    return {"AIP_CHECKPOINT_DIR": f"{base}/checkpoints/", "AIP_MODEL_DIR": f"{base}/model/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"}


def flags_without_output_dir(data, steps: int) -> list:
    flags = tiny_trainer_flags(data, Path("unused"), steps=steps)
    at = flags.index("--output_dir")
    return flags[:at] + flags[at + 2:]


def scalars(log_dir: Path, tag: str) -> dict:
    """{step: value of `tag`} in the events files of `log_dir`, as TensorBoard reads them."""
    found = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    found[event.step] = value.simple_value
    return found


def eval_rows(data) -> np.ndarray:
    return np.concatenate([np.loadtxt(p, delimiter=",", dtype=np.float32) for p in data["eval_files"]])


def test_vertex_job_writes_each_directory_where_the_service_looks(tiny_data, tmp_path):
    base = tmp_path / "job"
    result = run_task(flags_without_output_dir(tiny_data, steps=300), env=vertex_variables(base))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"writing to {base}/checkpoints (from $AIP_CHECKPOINT_DIR), TensorBoard events also to " \
           f"{base}/logs, the best model to {base}/model" in result.stderr
    assert sorted(p.name for p in base.iterdir()) == ["checkpoints", "logs", "model"]

    # The run directory: checkpoints, config.json (with the directories), metrics, exports.
    checkpoints = base / "checkpoints"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("model.ckpt-300")
    assert json.loads((checkpoints / "config.json").read_text())["directories"] == {
        "output_dir": str(checkpoints), "output_dir_source": "$AIP_CHECKPOINT_DIR",
        "tensorboard_dir": str(base / "logs"), "model_dir": str(base / "model")}
    metrics = json.loads((checkpoints / "metrics.json").read_text())
    assert Path(metrics["saved_model_path"]).parent == checkpoints / "export" / "best"
    assert metrics["model_dir"] == str(base / "model")
    evaluations = json.loads((checkpoints / "evaluations.json").read_text())["evaluations"]
    assert [e["global_step"] for e in evaluations] == [100, 200, 300]

    # The model directory: the best export itself, nothing else, and it forecasts.
    model = base / "model"
    assert {"saved_model.pb", "variables", "assets.extra"} <= {p.name for p in model.iterdir()}
    assert not [p for p in model.rglob("*") if "ckpt" in p.name or "tmp" in p.name or p.name == "export"]
    assert holds_saved_model(str(model), metrics["saved_model_path"])
    exported = load_exported_model(str(model))
    assert exported.path == str(model) and (exported.n_inputs, exported.n_outputs) == (N_INPUTS, N_OUTPUTS)
    rows = eval_rows(tiny_data)
    forecast = exported.predict(rows[:, :N_INPUTS])
    assert forecast.shape == (len(rows), N_OUTPUTS)
    rmse = math.sqrt(np.mean((forecast - rows[:, N_INPUTS:]) ** 2))
    assert rmse == pytest.approx(metrics["rmse"], rel=1e-4)
    assert f"model for import (gcloud ai models upload --artifact-uri): {model}" in result.stdout

    # TensorBoard: the training loss (train/) and every evaluation (eval/) under the log dir.
    loss = scalars(base / "logs" / "train", "loss")
    assert max(loss) == 300 and {100, 200} <= set(loss) and all(math.isfinite(v) for v in loss.values())
    assert scalars(base / "logs" / "eval", "rmse") == pytest.approx(
        {e["global_step"]: e["rmse"] for e in evaluations})
    assert set(scalars(base / "logs" / "eval", "naive_rmse")) == {100, 200, 300}
    # The Estimator's own events stay in the run directory, as without Vertex AI.
    assert list(checkpoints.glob("events.out.tfevents.*")) and list((checkpoints / "eval").iterdir())


def test_vertex_trial_directories_get_no_second_trial_folder(tiny_data, tmp_path):
    base = tmp_path / "tuning"
    metric_file = tmp_path / "hypertune.metrics"
    result = run_task(flags_without_output_dir(tiny_data, steps=100),
                      env={**vertex_variables(base / "4"), "CLOUD_ML_TRIAL_ID": "4",
                           "CLOUD_ML_HP_METRIC_FILE": str(metric_file)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (base / "4").iterdir()) == ["checkpoints", "logs", "model"]
    assert not [p for p in base.rglob("trial_*")]
    metrics = json.loads((base / "4" / "checkpoints" / "metrics.json").read_text())
    assert metrics["last_global_step"] == 100
    assert holds_saved_model(str(base / "4" / "model"), metrics["saved_model_path"])
    (report,) = [json.loads(line) for line in metric_file.read_text().splitlines()]
    assert float(report["rmse"]) == pytest.approx(metrics["rmse"])
