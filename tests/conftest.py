"""Shared fixtures: tiny CSV data sets and a way to run the trainer as a user would."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest

from trainer.data.schema import format_rows
from trainer.data.synthetic import sine_windows
from trainer.training import reporting

REPO_ROOT = Path(__file__).resolve().parent.parent

# What the cloud sets, never inherited by a run of the tests: each test sets its own.
SERVICE_VARIABLES = ("TF_CONFIG", "CLOUD_ML_TRIAL_ID", "AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR",
                     "AIP_TENSORBOARD_LOG_DIR")

# Deliberately different sizes, so that a swapped dimension cannot pass by coincidence.
N_INPUTS = 7
N_OUTPUTS = 3


def write_rows(path: Path, values: np.ndarray) -> Path:
    """Write rows of floats as trainer CSV (no header)."""
    path.write_text(format_rows(values, decimals=5))
    return path


@pytest.fixture
def tiny_data(tmp_path: Path) -> Dict[str, object]:
    """3 train shards of 40 rows and 2 eval shards of 23 rows of noisy sines (7 in, 3 out)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    train = [write_rows(data_dir / f"train-{i}.csv",
                        sine_windows(rows=40, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, seed=i))
             for i in range(3)]
    evaluation = [write_rows(data_dir / f"eval-{i}.csv",
                             sine_windows(rows=23, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                                          seed=100 + i))
                  for i in range(2)]
    return {
        "dir": data_dir,
        "train_files": [str(p) for p in train],
        "eval_files": [str(p) for p in evaluation],
        "train_pattern": str(data_dir / "train-*.csv"),
        "eval_pattern": str(data_dir / "eval-*.csv"),
    }


@pytest.fixture
def hypertune_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point cloudml-hypertune at a file of the test's own and start from a fresh reporter."""
    path = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(path))
    monkeypatch.setattr(reporting, "_hypertune", None)
    return path


def tiny_trainer_flags(data: Dict[str, object], output_dir: Path, *, steps: int = 300) -> List[str]:
    """Flags for a training run of a few seconds on `tiny_data`."""
    return [
        "--train_data_paths", str(data["train_pattern"]),
        "--eval_data_paths", str(data["eval_pattern"]),
        "--output_dir", str(output_dir),
        "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS),
        "--hidden_units", "8", "--batch_size", "16", "--train_steps", str(steps),
        "--save_checkpoints_steps", "100", "--eval_throttle_secs", "0",
        "--learning_rate", "0.3", "--progress_interval_secs", "0.2",
    ]


def run_task(args: Sequence[str], *, env: Optional[Dict[str, str]] = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m trainer.task ARGS` in a subprocess, as a user would; never raises on failure."""
    full_env = {key: value for key, value in os.environ.items()
                if key not in SERVICE_VARIABLES}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "trainer.task", *args], cwd=REPO_ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run `python -m MODULE ARGS` (prepare, evaluate, predict) as a user would; never raises."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tool_dir(request, tmp_path: Path) -> Path:
    """A PATH directory with the tools of the test module's TOOLS (linked from this machine's)
    and nothing else: no gcloud, unless the test puts a fake one there."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in request.module.TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (directory / tool).symlink_to(found)
    return directory


@pytest.fixture(autouse=True)
def _trainer_log_level():
    """Put back the level of the package's logger after each test: a command run in-process
    (`run_command` -> `setup_logging(--verbosity)`) sets it, and a later test's caplog at INFO
    would otherwise see nothing from trainer.*."""
    import logging

    logger = logging.getLogger("trainer")
    level = logger.level
    yield
    logger.setLevel(level)
