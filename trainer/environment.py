"""Where this process runs: TF_CONFIG, its role in the cluster, the tuning trial, the output directory.

Google Cloud tells each training process its role through environment variables:
`TF_CONFIG` (cluster and task, plus `task.trial` in legacy AI Platform tuning jobs),
`CLOUD_ML_TRIAL_ID` (tuning trials) and `AIP_MODEL_DIR` (Vertex AI's output directory).
Everything that reads them lives here so the rest of the package takes plain values.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional

from trainer.errors import ConfigError

DEFAULT_OUTPUT_DIR = "output"
CHIEF_TYPES = ("chief", "master")


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """This process's place in the cluster (a local run is a chief of a cluster of one)."""

    task_type: str = "chief"
    task_index: int = 0
    num_workers: int = 1  # chief + workers: the processes that train and read training data
    has_evaluator: bool = False

    @property
    def is_chief(self) -> bool:
        return self.task_type in CHIEF_TYPES

    @property
    def is_evaluator(self) -> bool:
        return self.task_type == "evaluator"

    @property
    def worker_index(self) -> int:
        """Index of this training process among chief + workers (chief is 0)."""
        return 0 if self.is_chief else self.task_index + 1

    @property
    def writes_evaluation_outputs(self) -> bool:
        """Exports, metrics.json and hypertune reports come from one process only."""
        return self.is_evaluator or (self.is_chief and not self.has_evaluator)


def read_tf_config(environ: Mapping[str, str] = os.environ) -> Dict[str, Any]:
    """TF_CONFIG as a dict ({} when unset); a clear error when it is not a JSON object."""
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}): {text[:200]!r}") from error
    if not isinstance(value, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object, got {text[:200]!r}")
    return value


def task_info(environ: Mapping[str, str] = os.environ) -> TaskInfo:
    """This process's role, read from TF_CONFIG."""
    tf_config = read_tf_config(environ)
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    if not cluster:
        return TaskInfo()
    task_type = task.get("type", "chief")
    num_workers = sum(len(cluster.get(role, [])) for role in ("chief", "master", "worker"))
    return TaskInfo(
        task_type=task_type,
        task_index=int(task.get("index", 0)),
        num_workers=max(num_workers, 1),
        has_evaluator=task_type == "evaluator" or bool(cluster.get("evaluator")),
    )


def trial_id(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The tuning trial of this process: TF_CONFIG task.trial, else CLOUD_ML_TRIAL_ID, else None."""
    trial = (read_tf_config(environ).get("task") or {}).get("trial")
    if trial in (None, ""):
        trial = environ.get("CLOUD_ML_TRIAL_ID")
    if trial in (None, ""):
        return None
    trial = str(trial)
    if "/" in trial or trial in (".", ".."):
        raise ConfigError(f"trial id {trial!r} cannot be used as a directory name")
    return trial


def resolve_output_dir(flag_value: str, environ: Mapping[str, str] = os.environ) -> str:
    """The directory this run writes to.

    Precedence: --output_dir/--job-dir, then $AIP_MODEL_DIR (set by Vertex AI), then ./output.
    In a tuning job every trial gets its own subdirectory `trial_<id>` so that parallel trials
    never share checkpoints.

    >>> resolve_output_dir("gs://b/run", {"CLOUD_ML_TRIAL_ID": "7"})
    'gs://b/run/trial_7'
    """
    base = flag_value or environ.get("AIP_MODEL_DIR", "") or DEFAULT_OUTPUT_DIR
    base = base.rstrip("/") or base
    trial = trial_id(environ)
    return f"{base}/trial_{trial}" if trial else base
