"""Real multi-process clusters on 127.0.0.1: chief, workers, parameter servers, evaluator.

Every process is `python -m trainer.task` with its own TF_CONFIG, talking TensorFlow's gRPC
runtime, started by trainer.local_cluster as the cloud would start machines. The fault tests
kill a task with SIGKILL and start it again, as the cloud restarts a failed machine.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS, N_OUTPUTS, REPO_ROOT, run_task, tiny_trainer_flags
from trainer.local_cluster import LocalCluster
from trainer.training.recovery import NOT_EXPORTED
from trainer.training.run_dir import latest_global_step

pytestmark = pytest.mark.distributed

CLUSTER_TIMEOUT_SECS = 300  # every process of a test cluster must have exited by then
CHECKPOINT_EVERY = 200


def cluster_flags(data, output: Path, *, steps: int) -> List[str]:
    flags = tiny_trainer_flags(data, output, steps=steps)
    flags[flags.index("--save_checkpoints_steps") + 1] = str(CHECKPOINT_EVERY)
    return [*flags, "--eval_start_delay_secs", "0", "--eval_throttle_secs", "1"]


def make_cluster(data, tmp_path: Path, *, steps: int, extra_flags: Sequence[str] = (),
                 **kwargs) -> LocalCluster:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "CLOUD_ML_JOB_ID")}
    return LocalCluster(trainer_args=[*cluster_flags(data, tmp_path / "run", steps=steps),
                                      *extra_flags],
                        log_dir=tmp_path / "logs", env=env, **kwargs)


def checkpoint_step(output: Path) -> int:
    checkpoint = tf.train.latest_checkpoint(str(output))
    return int(re.search(r"ckpt-(\d+)$", checkpoint).group(1)) if checkpoint else -1


def checkpointed_step(output: Path) -> int:
    """The global step stored in the newest checkpoint: what a restore continues from.

    With asynchronous workers it can be a little past the step in the file name, which the
    chief reads just before the workers' last updates land.
    """
    step = latest_global_step(str(output))
    return -1 if step is None else step


def wait_for_checkpoint(cluster: LocalCluster, output: Path, step: int, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = checkpoint_step(output)
        if found >= step:
            return found
        failed = {n: c for n, c in cluster.returncodes().items() if c not in (None, 0)}
        assert not failed, f"tasks failed before step {step}: {failed}"
        time.sleep(0.2)
    cluster.stop()
    pytest.fail(f"no checkpoint at step >= {step} within {timeout} s")


def log_text(cluster: LocalCluster, name: str) -> str:
    return (cluster.log_dir / f"{name}.log").read_text()


def progress_steps(text: str, target: int) -> List[int]:
    return [int(s) for s in re.findall(rf"step (\d+)/{target} \(", text)]


def assert_export_serves(output: Path) -> None:
    metrics = json.loads((output / "metrics.json").read_text())
    serve = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
    predicted = serve(rawdata=tf.zeros([4, N_INPUTS]))["predicted"]
    assert predicted.shape == (4, N_OUTPUTS)
    assert np.all(np.isfinite(predicted.numpy()))


def evaluations(text: str) -> List[int]:
    return [int(s) for s in re.findall(r"evaluation at step (\d+):", text)]


def test_cluster_trains_exports_once_and_reports_once_per_evaluation(tiny_data, tmp_path):
    target = 6000  # long enough for every worker to start before the chief finishes
    cluster = make_cluster(tiny_data, tmp_path, steps=target)
    cluster.start()
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert codes == {"chief-0": 0, "worker-0": 0, "worker-1": 0, "evaluator-0": 0, "ps-0": 0}, codes

    output = tmp_path / "run"
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["last_global_step"] >= target
    assert metrics["rmse"] < metrics["naive_rmse"]
    assert_export_serves(output)

    evaluator_log = log_text(cluster, "evaluator-0")
    steps = evaluations(evaluator_log)
    assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] >= target
    for name in ("chief-0", "worker-0", "worker-1", "ps-0"):
        assert not evaluations(log_text(cluster, name)), f"{name} evaluated"
    # Hypertune: only the evaluator's "machine" has a metric file, one line per evaluation.
    assert sorted(p.name for p in cluster.log_dir.glob("*.metrics")) == ["evaluator-0.metrics"]
    metric_lines = (cluster.log_dir / "evaluator-0.metrics").read_text().splitlines()
    reported = [json.loads(line) for line in metric_lines]
    assert [int(line["global_step"]) for line in reported] == steps
    # Exports: one latest export per evaluation (5 kept), all from the evaluator, except for
    # an evaluation whose checkpoint the chief had deleted by then (said in the log).
    exported = len(steps) - evaluator_log.count(NOT_EXPORTED)
    assert exported >= 1
    latest = sorted((output / "export" / "latest").iterdir())
    assert len(latest) == min(exported, 5)
    # The best evaluation's export: export/best's newest (a copy of its latest export when the
    # chief had deleted the checkpoint before the best export).
    best = sorted((output / "export" / "best").iterdir())
    assert metrics["saved_model_path"] == str(best[-1]), metrics
    assert Path(metrics["saved_model_path"], "saved_model.pb").is_file()
    # Each training process read its own one of the 3 training files.
    for index, name in enumerate(("chief-0", "worker-0", "worker-1")):
        text = log_text(cluster, name)
        assert f"training process {index} of 3 reads 1 of the training files" in text, text[-2000:]
        assert re.search(rf"training reached step \d+/{target}", text), f"{name} did not train"
    assert "waiting for" not in log_text(cluster, "chief-0")


def test_cluster_without_evaluator_has_the_chief_evaluate_once(tiny_data, tmp_path):
    cluster = make_cluster(tiny_data, tmp_path, steps=400, workers=1, evaluator=False)
    cluster.start()
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert set(codes.values()) == {0}, codes
    chief_log = log_text(cluster, "chief-0")
    assert len(evaluations(chief_log)) == 1
    assert not evaluations(log_text(cluster, "worker-0"))
    assert sorted(p.name for p in cluster.log_dir.glob("*.metrics")) == ["chief-0.metrics"]
    assert len((cluster.log_dir / "chief-0.metrics").read_text().splitlines()) == 1
    assert len(list((tmp_path / "run" / "export" / "latest").iterdir())) == 1
    assert_export_serves(tmp_path / "run")


def test_closed_form_in_a_cluster_is_the_chiefs_alone(tiny_data, tmp_path):
    """--solver closed_form: the chief fits, evaluates and exports; the worker, the parameter
    server and the evaluator say so and exit at once, and the run is as a local one."""
    cluster = make_cluster(tiny_data, tmp_path, steps=400, workers=1,
                           extra_flags=["--model", "linear", "--solver", "closed_form",
                                        "--ridge_penalties", "0,0.1"])
    cluster.start()
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert codes == {"chief-0": 0, "worker-0": 0, "evaluator-0": 0, "ps-0": 0}, codes
    for name in ("worker-0", "evaluator-0", "ps-0"):
        role, index = name.split("-")
        assert (f"--solver closed_form: the chief fits, evaluates and exports alone; {role} "
                f"{index} has nothing to do and exits") in log_text(cluster, name)
    assert evaluations(log_text(cluster, "chief-0")) == [1, 2]
    assert sorted(p.name for p in cluster.log_dir.glob("*.metrics")) == ["chief-0.metrics"]
    fits = json.loads((tmp_path / "run" / "closed_form.json").read_text())["fits"]
    assert [fit["penalty"] for fit in fits] == [0.0, 0.1]
    assert_export_serves(tmp_path / "run")


def test_cluster_stops_early_on_the_evaluators_results(tmp_path):
    """Validation that gets worse with training (trained on targets shifted by 1, evaluated on
    unshifted ones): the evaluator writes each evaluation, and the chief and the workers stop
    after 2 without improvement, long before --train_steps; the evaluator stops itself."""
    from tests.conftest import write_rows
    from tests.test_early_stopping import flat_windows

    data = tmp_path / "data"
    data.mkdir()
    for index in range(3):
        write_rows(data / f"train-{index}.csv", flat_windows(1000, shift=1.0, seed=index))
    write_rows(data / "eval.csv", flat_windows(200, shift=0.0, seed=9))
    target = 10 ** 6
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "CLOUD_ML_JOB_ID")}
    cluster = LocalCluster(trainer_args=[
        "--train_data_paths", str(data / "train-*.csv"), "--eval_data_paths", str(data / "eval.csv"),
        "--output_dir", str(tmp_path / "run"), "--n_inputs", "8", "--n_outputs", "2",
        "--model", "linear", "--scaling", "last_value", "--optimizer", "adam",
        "--learning_rate", "0.0005", "--batch_size", "16", "--train_steps", str(target),
        # Every checkpoint kept: at about 1000 steps/s the evaluator would find one deleted.
        "--save_checkpoints_steps", "1000", "--keep_checkpoint_max", "0",
        "--eval_start_delay_secs", "0", "--eval_throttle_secs", "1", "--early_stopping_evals", "2",
        "--progress_interval_secs", "1"], log_dir=tmp_path / "logs", env=env)
    cluster.start()
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert set(codes.values()) == {0}, codes
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    evaluations_json = json.loads((tmp_path / "run" / "evaluations.json").read_text())["evaluations"]
    mases = [e["mase"] for e in evaluations_json]  # monitored by mase, the default
    assert metrics["mase"] == pytest.approx(min(mases)) and metrics["last_global_step"] < target
    assert metrics["global_step"] < metrics["last_global_step"]
    assert "the evaluator is done" in log_text(cluster, "evaluator-0")
    for name in ("chief-0", "worker-0", "worker-1"):
        text = log_text(cluster, name)
        assert "early stopping: " in text and "evaluations without a lower mase" in text, name
    assert "/export/best/" in metrics["saved_model_path"]
    serve = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
    assert serve(rawdata=tf.zeros([3, 8]))["predicted"].shape == (3, 2)


def test_cluster_trains_from_series_shards_each_worker_surveying_only_its_own(tmp_path):
    """--data_dir of 3 series shards: each of the 3 training processes reads one; the chief and
    the evaluator survey all three, a worker only its own before training."""
    raw = tmp_path / "series.csv"
    hours = np.arange(400)
    with raw.open("w") as handle:
        handle.write("series_id,timestamp,value\n")
        for index in range(6):
            values = 10 + index + 3 * np.sin(2 * np.pi * hours / 12 + index)
            handle.writelines(f"s{index},{h},{v:.4f}\n" for h, v in zip(hours, values))
    prepared = tmp_path / "prepared"
    result = subprocess.run(
        [sys.executable, "-m", "trainer.prepare", "--input", str(raw), "--output_dir", str(prepared),
         "--valid_points", "40", "--test_points", "40", "--shards", "3", "--n_inputs",
         str(N_INPUTS), "--n_outputs", str(N_OUTPUTS)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(prepared.glob("series-*-of-00003.csv"))) == 3
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "CLOUD_ML_JOB_ID")}
    target = 30000  # long enough for every worker to start before the chief finishes
    cluster = LocalCluster(trainer_args=[
        "--data_dir", str(prepared), "--output_dir", str(tmp_path / "run"), "--model", "linear",
        "--optimizer", "adam", "--learning_rate", "0.01", "--batch_size", "16",
        "--train_steps", str(target), "--save_checkpoints_steps", str(CHECKPOINT_EVERY),
        "--eval_start_delay_secs", "0", "--eval_throttle_secs", "1",
        "--progress_interval_secs", "1"], log_dir=tmp_path / "logs", env=env)
    cluster.start()
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert set(codes.values()) == {0}, codes
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["rmse"] < metrics["naive_rmse"]
    # The evaluator scored every series on its own scale, and chose by it.
    assert metrics["series_evaluated"] == 6 and metrics["monitored_metric"] == "mase"
    assert metrics["mase"] < metrics["seasonal_naive_mase"]
    assert_export_serves(tmp_path / "run")
    for name in ("chief-0", "evaluator-0"):
        assert "3 series files (6 series, 2400 points)" in log_text(cluster, name), name
    for index, name in enumerate(("chief-0", "worker-0", "worker-1")):
        text = log_text(cluster, name)
        assert f"training process {index} of 3 reads 1 of the series files" in text, text[-2000:]
        if name != "chief-0":
            assert "1 of the 3 series files (this process's; the chief surveys them all) " \
                   "(2 series, 800 points)" in text, text[-2000:]


FAULT_TARGET = 8000  # steps: long enough for a killed task to come back before the end
UNTIL_STOPPED = 10 ** 8  # steps: a cluster that trains until the test stops it


def current_start(cluster: LocalCluster, name: str) -> str:
    """The log of the task's latest start only."""
    return log_text(cluster, name).rsplit("=== " + name + " start", 1)[-1]


def wait_for_training(cluster: LocalCluster, name: str, min_step: int = 0, timeout: float = 120,
                      target: int = FAULT_TARGET) -> int:
    """Wait until task `name` (its latest start) logs a progress line at step >= min_step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = progress_steps(current_start(cluster, name), target)
        if steps and max(steps) >= min_step:
            return max(steps)
        failed = {n: c for n, c in cluster.returncodes().items() if c not in (None, 0)}
        assert not failed, f"tasks failed: {failed}"
        time.sleep(0.2)
    cluster.stop()
    pytest.fail(f"{name} logged no progress at step >= {min_step} within {timeout} s")


def newest_step(cluster: LocalCluster, target: int = FAULT_TARGET) -> int:
    """The newest global step that any training process has logged."""
    return max(max(progress_steps(current_start(cluster, name), target), default=-1)
               for name in ("chief-0", "worker-0", "worker-1"))


def seconds(clock: str) -> int:
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + secs


def first_progress_clock(text: str, target: int = FAULT_TARGET) -> str:
    match = re.search(rf"^(\d\d:\d\d:\d\d) INFO step \d+/{target} ", text, re.MULTILINE)
    assert match, "no progress line: the task did not train"
    return match.group(1)


def finish_and_check(cluster: LocalCluster, output: Path) -> None:
    codes = cluster.wait(timeout_secs=CLUSTER_TIMEOUT_SECS)
    assert set(codes.values()) == {0}, codes
    assert json.loads((output / "metrics.json").read_text())["last_global_step"] >= FAULT_TARGET
    assert_export_serves(output)


def test_worker_killed_and_restarted_rejoins(tiny_data, tmp_path):
    """The cluster trains until the restarted worker has rejoined, however long its start takes
    (on a loaded machine it took 15 s, and a fixed target of steps was reached before that),
    and is then stopped with SIGTERM, as the cloud stops a job: the chief saves at that step."""
    output = tmp_path / "run"
    cluster = make_cluster(tiny_data, tmp_path, steps=UNTIL_STOPPED, evaluator=False)
    cluster.start()
    wait_for_training(cluster, "worker-0", target=UNTIL_STOPPED)
    assert cluster.kill("worker", 0) == -signal.SIGKILL
    killed_at = time.strftime("%H:%M:%S")
    cluster.start_task("worker", 0)
    wait_for_training(cluster, "worker-0", target=UNTIL_STOPPED, timeout=240)
    restarted = current_start(cluster, "worker-0")
    rejoined_at = first_progress_clock(restarted, target=UNTIL_STOPPED)
    trained_by_then = newest_step(cluster, target=UNTIL_STOPPED)
    cluster.stop()
    codes = cluster.returncodes()
    assert codes["chief-0"] == codes["worker-0"] == codes["worker-1"] == 143, codes
    stopped = re.search(r"stopped by SIGTERM at step (\d+); checkpoint saved",
                        log_text(cluster, "chief-0"))
    assert stopped, log_text(cluster, "chief-0")[-3000:]
    assert checkpointed_step(output) >= int(stopped.group(1)) >= trained_by_then
    assert "worker stopped by SIGTERM at step" in current_start(cluster, "worker-0")
    print(f"\nworker kill -9 at {killed_at}, restarted worker training at {rejoined_at} "
          f"({seconds(rejoined_at) - seconds(killed_at)} s)")


KEPT = re.compile(r"keeping the parameter servers' variables at step (\d+), not the checkpoint "
                  r"at step (\d+)")
RESTORED = re.compile(r"restoring the checkpoint at step (\d+) into the parameter servers")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_chief_stopped_and_restarted_keeps_what_the_workers_trained(tiny_data, tmp_path, signum):
    """The workers train on while the chief is down; the restarted chief keeps the parameter
    servers' variables instead of restoring its older checkpoint into them. With --overwrite
    too: the restarted chief must not delete what its own job wrote."""
    output = tmp_path / "run"
    cluster = make_cluster(tiny_data, tmp_path, steps=UNTIL_STOPPED, evaluator=False,
                           extra_flags=["--overwrite"])
    cluster.start()
    wait_for_training(cluster, "chief-0", min_step=1100, target=UNTIL_STOPPED)
    at_stop = log_sizes(cluster)
    step_at_stop = newest_step(cluster, target=UNTIL_STOPPED)
    stopped_at = time.strftime("%H:%M:%S")
    code = cluster.kill("chief", 0, signum)
    assert code in (-signum, 128 + signum), code
    last_checkpoint = checkpointed_step(output)
    if signum == signal.SIGTERM:  # the chief saved where it was
        saved = re.search(r"stopped by SIGTERM at step (\d+); checkpoint saved",
                          log_text(cluster, "chief-0")[at_stop["chief-0"]:])
        assert saved and last_checkpoint >= int(saved.group(1)) >= step_at_stop
    # The workers train on without the chief: well past the stop (and its checkpoint).
    deadline = time.time() + 120
    while max(steps_since(cluster, at_stop, UNTIL_STOPPED, ["worker-0", "worker-1"]),
              default=-1) < max(step_at_stop, last_checkpoint) + 2 * CHECKPOINT_EVERY:
        assert time.time() < deadline, "the workers did not train on without the chief"
        assert not {n: c for n, c in cluster.returncodes().items()
                    if c not in (None, 0) and n != "chief-0"}
        time.sleep(0.2)
    before_restart = max(step_at_stop, *steps_since(cluster, at_stop, UNTIL_STOPPED))
    cluster.start_task("chief", 0)
    wait_for_training(cluster, "chief-0", target=UNTIL_STOPPED, timeout=240)
    restarted = current_start(cluster, "chief-0")
    training_at = first_progress_clock(restarted, target=UNTIL_STOPPED)
    cluster.stop()
    codes = cluster.returncodes()
    assert codes["chief-0"] == codes["worker-0"] == codes["worker-1"] == 143, codes
    assert "was written by this same job (CLOUD_ML_JOB_ID=local_cluster_" in restarted
    assert "deleting everything" not in restarted
    kept = KEPT.search(restarted)
    assert kept and not RESTORED.search(restarted), restarted[-3000:]
    held, checkpoint = int(kept.group(1)), int(kept.group(2))
    assert checkpoint == last_checkpoint
    # Nothing the cluster trained before the restart is lost: the chief went on from the
    # parameter servers' step, past every step logged before it restarted.
    assert held >= before_restart > last_checkpoint
    assert min(progress_steps(restarted, UNTIL_STOPPED)) >= held
    # Its checkpoints go on from there: the one saved when its session started, and at the stop.
    assert checkpointed_step(output) >= held
    print(f"\nchief {signal.Signals(signum).name} at {stopped_at} at step {step_at_stop} "
          f"(checkpoint {last_checkpoint}); the workers trained to {before_restart}; the restarted "
          f"chief kept step {held} and trained again at {training_at} "
          f"({seconds(training_at) - seconds(stopped_at)} s)")


def test_parameter_server_killed_and_restarted_recovers_from_the_checkpoint(tiny_data, tmp_path):
    output = tmp_path / "run"
    cluster = make_cluster(tiny_data, tmp_path, steps=FAULT_TARGET, evaluator=False)
    cluster.start()
    wait_for_training(cluster, "chief-0", min_step=1100)
    cluster.kill("ps", 0)
    killed_at = time.strftime("%H:%M:%S")
    step_at_kill = newest_step(cluster)
    chief_log_at_kill = len(log_text(cluster, "chief-0"))
    last_checkpoint = checkpointed_step(output)
    time.sleep(2)
    cluster.start_task("ps", 0)
    finish_and_check(cluster, output)
    after_kill = log_text(cluster, "chief-0")[chief_log_at_kill:]
    assert "=== chief-0 start 2" not in after_kill  # the chief itself never restarted
    # The variables lived on the dead server. A fresh server would start them from zero:
    # the chief restored the last checkpoint into it instead (the new server's variables are
    # not initialized, so the chief's saver does not keep them).
    restore = RESTORED.search(after_kill)
    assert restore and not KEPT.search(after_kill), after_kill[-3000:]
    assert int(restore.group(1)) == last_checkpoint
    assert "of their variables are not initialized" in after_kill
    resumed = progress_steps(after_kill, FAULT_TARGET)[0]
    training_at = first_progress_clock(after_kill)
    print(f"\nps kill -9 at {killed_at} near step {step_at_kill}, restarted 2 s later; training "
          f"continued from step {resumed} (last checkpoint {last_checkpoint}) at {training_at} "
          f"({seconds(training_at) - seconds(killed_at)} s)")
    assert last_checkpoint <= resumed <= last_checkpoint + CHECKPOINT_EVERY + 150


def half_written_exports(output: Path) -> List[Path]:
    return sorted(output.glob("export/*/temp-*"))


def test_evaluator_stopped_by_sigterm_mid_export_leaves_no_half_written_export(tiny_data,
                                                                                tmp_path):
    """SIGTERM as soon as an export's temp-* folder appears (an export takes a fraction of a
    second: tried until one signal lands before its rename); the evaluator removes it, says
    so and exits 143, and every export left is whole."""
    output = tmp_path / "run"
    cluster = make_cluster(tiny_data, tmp_path, steps=UNTIL_STOPPED, workers=1)
    cluster.start()
    landed, tries = None, 0
    while landed is None and tries < 8:
        tries += 1
        deadline = time.time() + 180
        while not half_written_exports(output):
            assert time.time() < deadline, "the evaluator wrote no export"
            failed = {n: c for n, c in cluster.returncodes().items() if c not in (None, 0)}
            assert not failed, failed
            time.sleep(0.003)
        assert cluster.kill("evaluator", 0, signal.SIGTERM) == 143
        stopped = current_start(cluster, "evaluator-0")
        assert "evaluator stopped by SIGTERM" in stopped, stopped[-3000:]
        assert not half_written_exports(output), half_written_exports(output)
        landed = re.search(r"removed the half-written export (\S+/temp-\d+)", stopped)
        if landed is None:
            cluster.start_task("evaluator", 0)  # the export finished first: try the next one
    cluster.stop()
    assert landed, "no SIGTERM landed during an export in 8 tries"
    assert not Path(landed.group(1)).exists()
    exports = [p for p in output.glob("export/*/*")]
    assert all((p / "saved_model.pb").is_file() for p in exports), exports
    print(f"\nSIGTERM landed mid-export on try {tries}: removed {landed.group(1)}")


def test_two_trials_share_a_base_directory_without_touching_each_other(tiny_data, tmp_path):
    base = tmp_path / "tuning"
    processes: Dict[str, subprocess.Popen] = {}
    for trial, model in (("1", "lstm"), ("2", "gru")):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env.update(CLOUD_ML_TRIAL_ID=trial, CLOUD_ML_HP_METRIC_FILE=str(tmp_path / f"hp-{trial}"))
        processes[trial] = subprocess.Popen(
            [sys.executable, "-m", "trainer.task",
             *tiny_trainer_flags(tiny_data, base, steps=300), "--model", model],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {trial: process.communicate(timeout=CLUSTER_TIMEOUT_SECS)[0]
               for trial, process in processes.items()}
    for trial, process in processes.items():
        assert process.returncode == 0, outputs[trial][-3000:]
    assert sorted(p.name for p in base.iterdir()) == ["trial_1", "trial_2"]
    for trial, model in (("1", "lstm"), ("2", "gru")):
        directory = base / f"trial_{trial}"
        assert json.loads((directory / "config.json").read_text())["model"] == model
        assert json.loads((directory / "metrics.json").read_text())["last_global_step"] == 300
        assert checkpoint_step(directory) == 300
        reported = json.loads((tmp_path / f"hp-{trial}").read_text().splitlines()[-1])
        assert reported["trial"] == trial
    assert "gru" in str(tf.train.list_variables(str(base / "trial_2")))
    assert "gru" not in str(tf.train.list_variables(str(base / "trial_1")))


def test_launcher_reports_a_failed_task_and_exits_non_zero(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "trainer.local_cluster", "--workers", "1", "--ps", "1",
         "--no-evaluator", "--log_dir", str(tmp_path / "logs"), "--timeout_secs", "120", "--",
         "--output_dir", str(tmp_path / "run"), "--train_data_paths", str(tmp_path / "none-*.csv"),
         "--eval_data_paths", str(tmp_path / "none-*.csv")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    for name in ("chief-0", "worker-0", "ps-0"):
        assert f"log: {tmp_path / 'logs' / name}.log" in result.stdout
    assert re.search(r"error: (chief|worker)-0 exited with 1", result.stderr), result.stderr
    assert "--train_data_paths: pattern" in result.stderr  # the tail of the failed task's log


def test_launcher_ends_with_the_result_of_the_evaluating_task(tiny_data, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "cluster", "--workers", "1", "--ps", "1",
         "--no-evaluator", "--log_dir", str(tmp_path / "logs"), "--timeout_secs", "240", "--",
         *tiny_trainer_flags(tiny_data, tmp_path / "run", steps=200)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    tail = result.stdout.split("cluster finished: chief-0, worker-0, ps-0; logs in ", 1)[1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (f"\ndone: step 200  mase {metrics['mase']:.4f}  rmse {metrics['rmse']:.4f}  "
            "naive_rmse") in tail
    assert f"\nSavedModel: {metrics['saved_model_path']}\n" in tail
    assert re.search(r"^model +\d+\.\d{4}", tail, re.MULTILINE), tail
    # Each process of the cluster says what it is; none says it is a single process.
    chief = (tmp_path / "logs" / "chief-0.log").read_text()
    assert "chief 0 of a cluster of 2 training processes, 1 parameter servers" in chief
    assert "a single process" not in chief


def test_malformed_tf_config_stops_before_training(tmp_path):
    bad = json.dumps({"cluster": {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]},
                      "task": {"type": "worker", "index": 5}})
    result = run_task(["--output_dir", str(tmp_path / "run")], env={"TF_CONFIG": bad})
    assert result.returncode == 1
    assert ("error: TF_CONFIG task index 5 is out of range: cluster 'worker' has 1 address(es) "
            "['127.0.0.1:2']") in result.stderr
    assert not (tmp_path / "run").exists()


SCHEDULE_SEED = 11
RESUBMIT_STEPS = 1000  # the second submission trains this far past the stop
LONG_RUN_DEADLINE_SECS = 600


TRAINING_TASKS = ("chief-0", "worker-0", "worker-1")


def log_sizes(cluster: LocalCluster) -> Dict[str, int]:
    return {name: len(log_text(cluster, name)) for name in TRAINING_TASKS}


def steps_since(cluster: LocalCluster, sizes: Dict[str, int], target: int,
                names: Sequence[str] = TRAINING_TASKS) -> List[int]:
    """Every global step the tasks `names` logged since their logs had `sizes`."""
    return [step for name in names
            for step in progress_steps(log_text(cluster, name)[sizes[name]:], target)]


def test_random_stops_during_one_run_cost_what_the_readme_says(tiny_data, tmp_path):
    """SIGTERM and SIGKILL to random tasks of one run, each restarted 1 s later, as the cloud
    restarts a machine; then the whole job is stopped with SIGTERM and submitted again with a
    --train_steps a little past where it stopped, which it reaches, exporting once per
    evaluation. (Stopping the first run by hand keeps the test the same on a slow machine,
    where restarts take longer and the cluster trains more steps meanwhile.) Prints what each
    stop cost: the work lost (the highest global step any task reached before the cluster went
    back, minus the step it went back to: the newest checkpoint after a parameter server's
    stop, the parameter servers' own step after the chief's) and the seconds until the stopped
    task trained again."""
    rng = random.Random(SCHEDULE_SEED)
    output = tmp_path / "run"
    cluster = make_cluster(tiny_data, tmp_path, steps=UNTIL_STOPPED)
    deadline = time.time() + LONG_RUN_DEADLINE_SECS
    cluster.start()
    rows = []
    # Every kind of task with each signal, in an order and on workers the seed picks.
    stops = [(task, signum) for task in ("chief", "worker", "ps")
             for signum in (signal.SIGTERM, signal.SIGKILL)]
    rng.shuffle(stops)
    since_recovery = log_sizes(cluster)
    for name_type, signum in stops:
        index = rng.choice([0, 1]) if name_type == "worker" else 0
        name = f"{name_type}-{index}"
        # Stop only a cluster that trains: the chief has logged progress since the last recovery.
        while not steps_since(cluster, since_recovery, UNTIL_STOPPED, ["chief-0"]):
            assert time.time() < deadline, "the cluster did not train again"
            assert not {n: c for n, c in cluster.returncodes().items() if c not in (None, 0)}
            time.sleep(0.2)
        step_at_stop = max(steps_since(cluster, since_recovery, UNTIL_STOPPED))
        checkpoint_at_stop = checkpointed_step(output)
        at_stop = log_sizes(cluster)
        stopped_at = time.time()
        code = cluster.kill(name_type, index, signum)
        assert code in (-signum, 128 + signum), f"{name} exited {code} on {signum}"
        # The newest checkpoint once the task is down (the chief may have saved one between
        # the read above and the stop; without a parameter server nothing more is saved).
        checkpoint_when_down = checkpointed_step(output)
        time.sleep(1)
        logged_while_down = steps_since(cluster, at_stop, UNTIL_STOPPED)
        cluster.start_task(name_type, index)
        # Training again: the restarted task itself (the chief for a parameter server).
        watched_key = ("chief", 0) if name_type == "ps" else (name_type, index)
        watched = "chief-0" if name_type == "ps" else name
        at_restart = {**log_sizes(cluster), name: len(log_text(cluster, name))}
        while not steps_since(cluster, at_restart, UNTIL_STOPPED, [watched]):
            assert time.time() < deadline, f"no training after stopping {name}"
            finished = cluster.tasks[watched_key].process.poll()
            assert finished is None, f"{watched} exited {finished} before it trained again"
            time.sleep(0.2)
        seconds_to_train = round(time.time() - stopped_at, 1)
        chief_since = log_text(cluster, "chief-0")[at_restart["chief-0"]:]
        # The highest step reached before the cluster went back: a stopped parameter server
        # stops all training; a stopped chief or worker leaves the others training.
        if name_type == "chief":  # it keeps the parameter servers' newer variables
            kept = KEPT.search(chief_since)
            assert kept and not RESTORED.search(chief_since), chief_since[-3000:]
            restored = int(kept.group(1))
            # Logged before the restart (the steps the chief had not applied when it stopped
            # are in no log: SIGKILL loses up to --steps_per_run of them).
            peak = max([step_at_stop, *logged_while_down])
        elif name_type == "ps":  # a new server: the chief restores the newest checkpoint into it
            restore = RESTORED.search(chief_since)
            assert restore and not KEPT.search(chief_since), chief_since[-3000:]
            restored = int(restore.group(1))
            assert restored == checkpoint_when_down
            peak = step_at_stop
        else:  # the others train on; nothing is restored
            peak = restored = max([step_at_stop, *steps_since(cluster, at_stop, UNTIL_STOPPED)])
        lost = max(peak - restored, 0)
        # A chief stop costs at most one checkpoint interval (nothing, as logged); a parameter
        # server's, the steps since the newest checkpoint, as of the last progress line.
        assert lost <= CHECKPOINT_EVERY + (150 if name_type == "ps" else 0), \
            (name, signal.Signals(signum).name, peak, restored)
        assert restored >= checkpoint_at_stop  # never behind the newest checkpoint
        rows.append((name, signal.Signals(signum).name, step_at_stop, checkpoint_at_stop,
                     restored, lost, seconds_to_train))
        since_recovery = log_sizes(cluster)
    cluster.stop()  # the job stopped as a whole: SIGTERM, the chief saves where it is
    codes = cluster.returncodes()
    assert codes["chief-0"] == 143 and codes["worker-0"] == codes["worker-1"] == 143, codes
    stopped = int(re.search(r"stopped by SIGTERM at step (\d+); checkpoint saved",
                            current_start(cluster, "chief-0")).group(1))
    assert checkpointed_step(output) >= stopped
    saved, target = checkpointed_step(output), stopped + RESUBMIT_STEPS
    again = make_cluster(tiny_data, tmp_path, steps=target)
    again.start()
    codes = again.wait(timeout_secs=max(deadline - time.time(), 120))
    assert set(codes.values()) == {0}, codes
    resubmitted = current_start(again, "chief-0")  # new parameter servers: nothing to keep
    assert f"the newest checkpoint is at step {saved} (target {target})" in resubmitted
    assert f"restoring the checkpoint at step {saved} into the parameter servers" in resubmitted
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["last_global_step"] >= target
    assert_export_serves(output)
    evaluator_log = log_text(cluster, "evaluator-0")
    exported = len(evaluations(evaluator_log)) - evaluator_log.count(NOT_EXPORTED)
    latest = [p for p in (output / "export" / "latest").iterdir() if p.name.isdigit()]
    assert 1 <= len(latest) == min(exported, 5)
    print(f"\n{'task':10} {'signal':8} {'step':>6} {'ckpt':>6} {'restored':>8} {'lost':>5} "
          f"{'secs':>5}  (checkpoint every {CHECKPOINT_EVERY} steps)")
    for name, sig, step, checkpoint, restored, lost, secs in rows:
        print(f"{name:10} {sig:8} {step:>6} {checkpoint:>6} {restored:>8} {lost:>5} {secs:>5}")
    assert len(rows) == 6, rows
