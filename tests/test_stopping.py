"""Real signals to real processes: a training process and the local launcher stop cleanly and
lose nothing; a resume that cannot read its checkpoint and a diverging loss are one line each."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, run_task, tiny_trainer_flags
from trainer.training.config import make_config
from trainer.training.experiment import make_early_stopping_hook, make_run_config
from trainer.training.reporting import write_evaluations

STOP_LINE = r"stopped by {name} at step (\d+); checkpoint saved; rerun the same command to resume"


def trainer_env() -> dict:
    return {key: value for key, value in os.environ.items()
            if key not in ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "AIP_MODEL_DIR", "CLOUD_ML_JOB_ID")}


def start(args: List[str], log: Path, module: str = "trainer.task") -> subprocess.Popen:
    handle = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                            env=trainer_env(), stdout=handle, stderr=subprocess.STDOUT)


def wait_for(log: Path, pattern: str, process: subprocess.Popen, timeout: float = 120) -> re.Match:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(pattern, log.read_text())
        if found:
            return found
        assert process.poll() is None, f"exited {process.returncode} before {pattern!r}:\n" \
                                       + log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{log.read_text()[-3000:]}")


def latest_step(output: Path) -> int:
    return int(tf.train.load_variable(tf.train.latest_checkpoint(str(output)), "global_step"))


@pytest.mark.e2e
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_checkpoint_at_that_step_and_the_rerun_loses_nothing(
        tiny_data, tmp_path, signum, code):
    output = tmp_path / "run"
    # Checkpoints by time (every 300 s by default): only the stop itself saves one mid-run.
    flags = [f for f in tiny_trainer_flags(tiny_data, output, steps=10 ** 7)
             if f not in ("--save_checkpoints_steps", "100")]
    log = tmp_path / "train.log"
    process = start(flags, log)
    wait_for(log, r"step [1-9]\d{3,}/10000000", process)  # past step 1000
    process.send_signal(signum)
    assert process.wait(timeout=60) == code
    text = log.read_text()
    stopped = re.search(STOP_LINE.format(name=signal.Signals(signum).name), text)
    assert stopped, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    step = int(stopped.group(1))
    assert step >= 1000 and latest_step(output) == step
    assert (output / f"model.ckpt-{step}.index").exists()
    assert not (output / "metrics.json").exists()  # no evaluation after the signal

    rerun = run_task([*flags[:flags.index("--train_steps") + 1], str(step + 200),
                      *flags[flags.index("--train_steps") + 2:]])
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from the checkpoint at step {step} (target {step + 200})" in rerun.stderr
    assert f"done: step {step + 200}" in rerun.stdout


def test_a_second_signal_ends_the_process_at_once(tmp_path):
    """A handler armed by a training session waits for the session run; a second signal does not."""
    script = (
        "import os, signal, time\n"
        "from trainer.training.stopping import SignalStop\n"
        "with SignalStop(role='chief') as stop:\n"
        "    stop.armed = True\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "    print('still running after the first', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "    print('not reached', flush=True)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 128 + signal.SIGINT
    assert "still running after the first" in result.stdout and "not reached" not in result.stdout
    assert "second signal (SIGINT): stopping at once" in result.stderr


@pytest.mark.e2e
def test_resuming_with_another_optimizer_is_one_line_and_keeps_config_json(tiny_data, tmp_path):
    output = tmp_path / "run"
    first = run_task(tiny_trainer_flags(tiny_data, output, steps=100))
    assert first.returncode == 0, first.stderr[-3000:]
    saved = (output / "config.json").read_bytes()
    result = run_task([*tiny_trainer_flags(tiny_data, output, steps=200), "--optimizer", "adam"])
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: cannot resume the run in {output}: its checkpoints were written "
                      "with other flags (optimizer: saved 'sgd', now 'adam'). Use another "
                      "--output_dir, restore those flags, or pass --overwrite to delete the old run."]
    assert "Traceback" not in result.stderr
    assert (output / "config.json").read_bytes() == saved


@pytest.mark.e2e
def test_a_diverging_loss_is_one_line_and_keeps_the_checkpoints_before_it(tiny_data, tmp_path):
    output = tmp_path / "run"
    flags = tiny_trainer_flags(tiny_data, output, steps=3000)
    flags[flags.index("--learning_rate") + 1] = "1e6"
    # Unscaled, so that the advice names the scaling too.
    result = run_task([*flags, "--model", "linear", "--clip_gradient_norm", "0",
                       "--steps_per_run", "1", "--scaling", "none"])
    assert result.returncode == 1, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert re.match(r"error: training diverged: the loss became (nan|inf) after step \d+ \(", error[0])
    assert "Try a lower --learning_rate (now 1e+06), --scaling window_zscore or last_value, " \
           "--clip_gradient_norm 5" in error[0]
    assert (output / "model.ckpt-0.index").exists()  # the checkpoint before the divergence


def test_checkpoints_by_time_by_default_or_by_steps_but_not_both():
    by_time = make_run_config(make_config(), output_dir="o")
    assert (by_time.save_checkpoints_secs, by_time.save_checkpoints_steps) == (300, None)
    by_steps = make_run_config(make_config(save_checkpoints_steps=50), output_dir="o")
    assert (by_steps.save_checkpoints_secs, by_steps.save_checkpoints_steps) == (None, 50)
    with pytest.raises(ValueError, match=r"give --save_checkpoints_steps \(50\) or "
                                         r"--save_checkpoints_secs \(60\), not both"):
        make_config(save_checkpoints_steps=50, save_checkpoints_secs=60)


class RunContext:
    """What EarlyStoppingHook sees of a session run: a stop can be requested."""

    def __init__(self):
        self.stop_requested = False

    def request_stop(self):
        self.stop_requested = True


def test_training_stops_early_on_the_monitored_metric_not_the_hypertune_metric(tmp_path):
    """rmse improves at every evaluation after step 30, mase does not: the default (mase)
    stops, and monitored by rmse the same history trains on."""
    write_evaluations(str(tmp_path), [
        {"global_step": step, "rmse": rmse, "mase": mase, "saved_model_path": f"export/{step}"}
        for step, rmse, mase in ((10, 0.5, 1.0), (20, 0.3, 1.2), (30, 0.6, 0.8), (40, 0.2, 0.9),
                                 (50, 0.1, 0.85))])
    stops = {}
    for monitored in ("mase", "rmse"):
        config = make_config(early_stopping_evals=2, monitored_metric=monitored)
        assert config.hypertune_metric == "rmse"
        hook = make_early_stopping_hook(config, output_dir=str(tmp_path), is_distributed=False)
        hook.begin()
        context = RunContext()
        hook.before_run(context)
        stops[monitored] = (context.stop_requested, hook.stopped_reason)
    assert stops == {"mase": (True, "2 evaluations without a lower mase than 0.8000 at step 30"),
                     "rmse": (False, None)}


def cluster_processes(log_dir: Path) -> List[int]:
    """Pids of the trainer processes whose hypertune file lies in `log_dir` (one cluster's)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"CLOUD_ML_HP_METRIC_FILE={log_dir}/".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.mark.distributed
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_launcher_leaves_no_task_behind(tiny_data, tmp_path, signum):
    log_dir = tmp_path / "logs"
    flags = [*tiny_trainer_flags(tiny_data, tmp_path / "run", steps=10 ** 7), "--model", "linear"]
    launcher_log = tmp_path / "launcher.log"
    launcher = start(["--workers", "1", "--ps", "1", "--no-evaluator", "--log_dir", str(log_dir),
                      "--", *flags], launcher_log, module="trainer.local_cluster")
    wait_for(launcher_log, r"ps-0 .* pid \d+", launcher)
    chief_log = log_dir / "chief-0.log"
    wait_for(chief_log, r"step \d+/10000000", launcher)
    assert len(cluster_processes(log_dir)) == 3
    launcher.send_signal(signum)
    code = launcher.wait(timeout=60)
    deadline = time.time() + 30  # the tasks' own grace: SIGTERM, then the launcher's SIGKILL
    while cluster_processes(log_dir) and time.time() < deadline:
        time.sleep(0.5)
    assert cluster_processes(log_dir) == []
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
    if signum != signal.SIGKILL:
        assert f"stopped by {signal.Signals(signum).name}: every task stopped" in launcher_log.read_text()
    # Every way, the chief got SIGTERM (from the launcher or, once it was gone, the kernel). The
    # launcher stops the parameter server after the chief, so that the chief can save; the
    # kernel signals all at once, and the save may find the parameter server gone.
    saved = "checkpoint saved" if signum != signal.SIGKILL else \
        "(checkpoint saved|the checkpoint could not be saved)"
    assert re.search(rf"stopped by SIGTERM at step \d+; {saved}", chief_log.read_text()), \
        chief_log.read_text()[-3000:]
