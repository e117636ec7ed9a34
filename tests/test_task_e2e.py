"""`python -m trainer.task` end to end, as a user runs it: artefacts, serving, resume, bad input."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS, N_OUTPUTS, run_task, sine_windows, tiny_trainer_flags, write_rows

pytestmark = pytest.mark.e2e


def eval_rows(data):
    return np.concatenate([np.loadtxt(p, delimiter=",", dtype=np.float32) for p in data["eval_files"]])


def rmse(forecast, actual):
    return float(np.sqrt(np.mean((forecast - actual) ** 2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 200-step run shared by the tests below (each works on its own copy)."""
    root = tmp_path_factory.mktemp("trained")
    data_dir = root / "data"
    data_dir.mkdir()
    for i in range(3):
        write_rows(data_dir / f"train-{i}.csv", sine_windows(rows=40, n_inputs=N_INPUTS,
                                                             n_outputs=N_OUTPUTS, seed=i))
    for i in range(2):
        write_rows(data_dir / f"eval-{i}.csv", sine_windows(rows=23, n_inputs=N_INPUTS,
                                                            n_outputs=N_OUTPUTS, seed=100 + i))
    data = {"dir": data_dir, "train_pattern": str(data_dir / "train-*.csv"),
            "eval_pattern": str(data_dir / "eval-*.csv"),
            "eval_files": sorted(str(p) for p in data_dir.glob("eval-*.csv"))}
    output = root / "run"
    metric_file = root / "hypertune.metrics"
    result = run_task(tiny_trainer_flags(data, output, steps=300),
                      env={"CLOUD_ML_HP_METRIC_FILE": str(metric_file)})
    assert result.returncode == 0, result.stderr[-3000:]
    return {"data": data, "output": output, "result": result, "metric_file": metric_file}


def copy_run(trained, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(trained["output"], target)
    return target


def test_run_writes_checkpoints_config_metrics_and_exports(trained):
    output = trained["output"]
    assert tf.train.latest_checkpoint(str(output)).endswith("model.ckpt-300")
    config = json.loads((output / "config.json").read_text())
    assert (config["n_inputs"], config["n_outputs"], config["hidden_units"]) == (N_INPUTS, N_OUTPUTS, 8)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["last_global_step"] == 300
    assert 0 < metrics["rmse"] < metrics["naive_rmse"]
    assert 0 < metrics["mae"] < metrics["rmse"]
    assert Path(metrics["saved_model_path"]).parent == output / "export" / "best"
    assert (Path(metrics["saved_model_path"]) / "saved_model.pb").is_file()
    assert len(list((output / "export" / "best").glob("*/saved_model.pb"))) >= 1


def test_progress_lines_and_summary_are_printed(trained):
    result = trained["result"]
    progress = re.findall(r"step (\d+)/300 \(\d+%\)  loss [\d.e+-]+  [\d,]+ examples/s"
                          r"(?:  ETA \d+:\d\d:\d\d)?$",
                          result.stderr, re.MULTILINE)
    assert progress, result.stderr[-2000:]
    assert all(0 < int(step) <= 300 for step in progress)
    assert "done: step 300" in result.stdout
    assert "SavedModel: " in result.stdout


def test_hypertune_gets_rmse_of_the_best_evaluation_by_mase_after_every_evaluation(trained):
    lines = [json.loads(line) for line in trained["metric_file"].read_text().splitlines()]
    steps = [int(line["global_step"]) for line in lines]
    assert steps == [100, 200, 300]
    evaluations = json.loads((trained["output"] / "evaluations.json").read_text())["evaluations"]
    assert [e["global_step"] for e in evaluations] == steps
    for count, line in enumerate(lines, start=1):
        best = min(evaluations[:count], key=lambda evaluation: evaluation["mase"])
        assert float(line["rmse"]) == pytest.approx(best["rmse"])
    metrics = json.loads((trained["output"] / "metrics.json").read_text())
    assert (metrics["monitored_metric"], metrics["hypertune_metric"]) == ("mase", "rmse")
    assert metrics["mase"] == min(e["mase"] for e in evaluations)
    assert float(lines[-1]["rmse"]) == pytest.approx(metrics["rmse"])


def test_a_step_schedule_evaluates_every_checkpoint_without_a_throttle_flag(tiny_data, tmp_path):
    flags = tiny_trainer_flags(tiny_data, tmp_path / "run", steps=80)
    throttle = flags.index("--eval_throttle_secs")
    del flags[throttle:throttle + 2]
    flags[flags.index("--save_checkpoints_steps") + 1] = "20"
    result = run_task(flags)
    assert result.returncode == 0, result.stderr[-3000:]
    output = tmp_path / "run"
    assert json.loads((output / "config.json").read_text())["eval_throttle_secs"] == 0
    # The save at step 0, before any training, is not evaluated; every later one is, once.
    evaluations = json.loads((output / "evaluations.json").read_text())["evaluations"]
    assert [e["global_step"] for e in evaluations] == [20, 40, 60, 80]
    assert "Skip the current checkpoint eval" not in result.stderr
    assert len(re.findall(r"INFO evaluation at step \d+: rmse [\d.]+  mae [\d.]+  naive_rmse "
                          r"[\d.]+  mase [\d.]+  -> ", result.stderr)) == 4


def test_saved_model_serves_forecasts_better_than_naive(trained):
    metrics = json.loads((trained["output"] / "metrics.json").read_text())
    loaded = tf.saved_model.load(metrics["saved_model_path"])
    serve = loaded.signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["rawdata"]
    rows = eval_rows(trained["data"])
    outputs = serve(rawdata=tf.constant(rows[:, :N_INPUTS]))
    assert list(outputs) == ["predicted"]
    forecast = outputs["predicted"].numpy()
    assert forecast.shape == (46, N_OUTPUTS)
    naive = np.repeat(rows[:, N_INPUTS - 1:N_INPUTS], N_OUTPUTS, axis=1)
    actual = rows[:, N_INPUTS:]
    assert rmse(forecast, actual) < rmse(naive, actual)
    assert rmse(forecast, actual) == pytest.approx(metrics["rmse"], rel=1e-4)


def test_rerun_resumes_from_the_checkpoint(trained, tmp_path):
    output = copy_run(trained, tmp_path)
    result = run_task(tiny_trainer_flags(trained["data"], output, steps=500))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from the checkpoint at step 300 (target 500)" in result.stderr
    steps = [int(s) for s in re.findall(r"step (\d+)/500 \(", result.stderr)]
    assert steps and min(steps) > 300
    assert json.loads((output / "metrics.json").read_text())["last_global_step"] == 500
    assert (output / "model.ckpt-300.index").exists()  # nothing deleted on resume


def test_resume_with_another_architecture_stops_and_keeps_the_run(trained, tmp_path):
    output = copy_run(trained, tmp_path)
    before = sorted(p.name for p in output.iterdir())
    flags = tiny_trainer_flags(trained["data"], output, steps=500)
    flags[flags.index("--hidden_units") + 1] = "4"
    result = run_task([*flags, "--model", "gru"])
    assert result.returncode == 1
    assert "error: cannot resume the run in" in result.stderr
    assert "model: saved 'lstm', now 'gru'; hidden_units: saved 8, now 4" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in output.iterdir()) == before


def test_overwrite_deletes_the_old_run_and_starts_again(trained, tmp_path):
    output = copy_run(trained, tmp_path)
    flags = tiny_trainer_flags(trained["data"], output, steps=100)
    flags[flags.index("--hidden_units") + 1] = "4"
    result = run_task([*flags, "--overwrite"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" not in result.stderr
    assert not (output / "model.ckpt-300.index").exists()
    assert json.loads((output / "metrics.json").read_text())["last_global_step"] == 100
    assert json.loads((output / "config.json").read_text())["hidden_units"] == 4


def test_tuning_trial_writes_to_its_own_directory(tiny_data, tmp_path):
    output = tmp_path / "tuning"
    result = run_task(tiny_trainer_flags(tiny_data, output, steps=40),
                      env={"CLOUD_ML_TRIAL_ID": "5",
                           "CLOUD_ML_HP_METRIC_FILE": str(tmp_path / "hp.metrics")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in output.iterdir()] == ["trial_5"]
    metrics = json.loads((output / "trial_5" / "metrics.json").read_text())
    assert metrics["last_global_step"] == 40
    hp_line = json.loads((tmp_path / "hp.metrics").read_text().splitlines()[-1])
    assert hp_line["trial"] == "5"


def corrupt_row(path: str, row: int, new_text: str) -> None:
    lines = Path(path).read_text().splitlines()
    lines[row - 1] = new_text
    Path(path).write_text("\n".join(lines) + "\n")


ROW_WITH_9 = ",".join(["0.5"] * (N_INPUTS + N_OUTPUTS - 1))
ROW_WITH_11 = ",".join(["0.5"] * (N_INPUTS + N_OUTPUTS + 1))


@pytest.mark.parametrize("row, text, message", [
    (3, ROW_WITH_9, "row 3 of {path} has 9 values, expected 10 (--n_inputs 7 + --n_outputs 3)"),
    (12, ROW_WITH_11, "row 12 of {path} has 11 values, expected 10"),
    (5, "0.1,0.2,abc," + ROW_WITH_9[8:], "row 5 of {path} value 3 is 'abc', not a number"),
    (7, "nan," + ROW_WITH_9, "row 7 of {path} value 1 is 'nan'; NaN and infinity are not allowed"),
    (40, ROW_WITH_9 + ",inf", "row 40 of {path} value 10 is 'inf'; NaN and infinity"),
])
def test_bad_row_in_the_middle_of_a_file_is_named(tiny_data, tmp_path, row, text, message):
    path = tiny_data["train_files"][1]
    corrupt_row(path, row, text)
    result = run_task(tiny_trainer_flags(tiny_data, tmp_path / "run", steps=50))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: " + message.format(path=path) in result.stderr


def test_bad_row_in_the_eval_files_is_named(tiny_data, tmp_path):
    path = tiny_data["eval_files"][0]
    corrupt_row(path, 9, ROW_WITH_9)
    result = run_task(tiny_trainer_flags(tiny_data, tmp_path / "run", steps=50))
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"error: row 9 of {path} has 9 values" in result.stderr


def test_first_row_mismatch_stops_before_training(tiny_data, tmp_path):
    flags = tiny_trainer_flags(tiny_data, tmp_path / "run", steps=50)
    flags[flags.index("--n_outputs") + 1] = "4"
    result = run_task(flags)
    assert result.returncode == 1
    assert (f"error: row 1 of {tiny_data['train_files'][0]} has 10 values, expected 11 "
            "(--n_inputs 7 + --n_outputs 4)") in result.stderr
    assert not list((tmp_path / "run").glob("model.ckpt-*"))


def test_a_rerun_after_a_failed_first_run_starts_afresh(tiny_data, tmp_path):
    """A first run that failed before its first checkpoint left config.json alone: the corrected
    command trains, and its flags replace the saved ones (nothing was there to resume)."""
    output = tmp_path / "run"
    flags = tiny_trainer_flags(tiny_data, output, steps=20)
    wrong = list(flags)
    wrong[wrong.index("--n_outputs") + 1] = "4"
    result = run_task(wrong)
    assert result.returncode == 1, result.stderr[-3000:]
    assert json.loads((output / "config.json").read_text())["n_outputs"] == 4
    assert not list(output.glob("model.ckpt-*"))
    result = run_task(flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cannot resume" not in result.stderr and "resuming" not in result.stderr
    assert json.loads((output / "config.json").read_text())["n_outputs"] == 3
    assert (output / "model.ckpt-20.index").exists()
    assert json.loads((output / "metrics.json").read_text())["last_global_step"] == 20


def test_empty_file_is_named(tiny_data, tmp_path):
    Path(tiny_data["eval_files"][1]).write_text("")
    result = run_task(tiny_trainer_flags(tiny_data, tmp_path / "run", steps=50))
    assert result.returncode == 1
    assert f"error: {tiny_data['eval_files'][1]} is empty (0 bytes)" in result.stderr


def test_pattern_matching_nothing_is_named(tiny_data, tmp_path):
    flags = tiny_trainer_flags(tiny_data, tmp_path / "run", steps=50)
    missing = str(tiny_data["dir"] / "validation-*.csv")
    flags[flags.index("--eval_data_paths") + 1] = missing
    result = run_task(flags)
    assert result.returncode == 1
    assert f"error: --eval_data_paths: pattern '{missing}' matches no file" in result.stderr


def test_unwritable_output_directory_is_named(tiny_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_task(tiny_trainer_flags(tiny_data, blocker / "run", steps=50))
    assert result.returncode == 1
    assert f"error: cannot create output directory '{blocker}/run'" in result.stderr


@pytest.mark.parametrize("flag, value, message", [
    ("--n_outputs", "0", "argument --n_outputs: expected an integer >= 1, got '0'"),
    ("--learning_rate", "-1", "argument --learning_rate: expected a number > 0.0, got '-1'"),
    ("--batch_size", "0", "argument --batch_size: expected an integer >= 1, got '0'"),
    ("--no_such_flag", "1", "unrecognized arguments: --no_such_flag 1"),
])
def test_bad_flag_exits_2(tmp_path, flag, value, message):
    result = run_task(["--output_dir", str(tmp_path / "run"), flag, value])
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "run").exists()
