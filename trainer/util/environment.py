"""Where this process runs: TF_CONFIG, its role in the cluster, the tuning trial, the output directory.

Google Cloud tells each training process its role through environment variables, in forms
that differ by service:

- `TF_CONFIG` with a `chief` (TensorFlow's own naming, and Vertex AI's);
- `TF_CONFIG` with a `master` instead, plus `"environment": "cloud"` and `task.trial`
  (legacy AI Platform unless the job sets `useChiefInTfConfig`);
- `CLUSTER_SPEC` with worker pools `workerpool0` to `workerpool3` standing for chief,
  worker, parameter server and evaluator (Vertex AI custom containers);
- `CLOUD_ML_TRIAL_ID` (tuning trials);
- `AIP_CHECKPOINT_DIR`, `AIP_TENSORBOARD_LOG_DIR` and `AIP_MODEL_DIR`: where a Vertex AI job
  wants its checkpoints, its TensorBoard logs and its final SavedModel (the `checkpoints/`,
  `logs/` and `model/` folders of the job's `baseOutputDirectory`, below `<trial id>/` in a
  tuning trial);
- `CLOUD_ML_JOB_ID` (the job, the same in every process and every restart of it).

`resolve_cluster` turns any of them into the one TF_CONFIG the Estimator accepts (a `chief`,
no evaluator inside the training cluster, no cluster at all for a single machine) and a
`TaskInfo` that says what this process must do; `resolve_output_dirs` says where the run
writes. Everything that reads these variables lives here, so the rest of the package takes
plain values.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Tuple

from trainer.util.errors import ConfigError

DEFAULT_OUTPUT_DIR = "output"
JOB_ID_VARIABLE = "CLOUD_ML_JOB_ID"
# Set by Vertex AI when a job has a baseOutputDirectory (each below <trial id>/ in a trial).
CHECKPOINT_DIR_VARIABLE = "AIP_CHECKPOINT_DIR"
TENSORBOARD_DIR_VARIABLE = "AIP_TENSORBOARD_LOG_DIR"
MODEL_DIR_VARIABLE = "AIP_MODEL_DIR"
OUTPUT_DIR_VARIABLES = (CHECKPOINT_DIR_VARIABLE, TENSORBOARD_DIR_VARIABLE, MODEL_DIR_VARIABLE)
CHIEF_TYPES = ("chief", "master")
TASK_TYPES = ("chief", "master", "worker", "ps", "evaluator")
# Vertex AI worker pools, in the order of CustomJobSpec.workerPoolSpecs.
VERTEX_POOL_ROLES = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps",
                     "workerpool3": "evaluator"}


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """This process's place in the cluster (a local run is a chief of a cluster of one)."""

    task_type: str = "chief"
    task_index: int = 0
    num_workers: int = 1  # chief + workers: the processes that train and read training data
    num_ps: int = 0
    has_evaluator: bool = False

    @property
    def is_chief(self) -> bool:
        return self.task_type in CHIEF_TYPES

    @property
    def is_evaluator(self) -> bool:
        return self.task_type == "evaluator"

    @property
    def is_distributed(self) -> bool:
        """True in a multi-process cluster, where the Estimator runs each role separately."""
        return self.num_workers > 1 or self.num_ps > 0 or self.has_evaluator

    @property
    def worker_index(self) -> int:
        """Index of this training process among chief + workers (chief is 0)."""
        return 0 if self.is_chief else self.task_index + 1

    @property
    def writes_evaluation_outputs(self) -> bool:
        """Exports, metrics.json and hypertune reports come from one process only."""
        return self.is_evaluator or (self.is_chief and not self.has_evaluator)


def _parse_json_variable(name: str, environ: Mapping[str, str]) -> Dict[str, Any]:
    text = environ.get(name, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON ({error}): {text[:300]!r}") from error
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, got {text[:300]!r}")
    return value


def read_tf_config(environ: Mapping[str, str] = os.environ) -> Dict[str, Any]:
    """TF_CONFIG as a dict ({} when unset); a clear error when it is not a JSON object."""
    return _parse_json_variable("TF_CONFIG", environ)


def _cluster_description(environ: Mapping[str, str]) -> Tuple[str, Dict[str, Any]]:
    """(name of the variable, its parsed value): TF_CONFIG, else Vertex AI's CLUSTER_SPEC."""
    tf_config = read_tf_config(environ)
    if tf_config:
        return "TF_CONFIG", tf_config
    return "CLUSTER_SPEC", _parse_json_variable("CLUSTER_SPEC", environ)


def _role(name: str) -> str:
    """A job name in any of the clouds' namings -> chief, worker, ps or evaluator."""
    name = VERTEX_POOL_ROLES.get(name, name)
    return "chief" if name == "master" else name


def _evaluator_elsewhere(description: Dict[str, Any]) -> bool:
    """Whether the service says there is an evaluator outside the training cluster.

    Legacy AI Platform leaves the evaluator out of `cluster` but copies the job's
    TrainingInput (with `evaluatorCount`) into TF_CONFIG `job`.
    """
    job = description.get("job") or {}
    try:
        return int(job.get("evaluatorCount") or job.get("evaluator_count") or 0) > 0
    except (TypeError, ValueError):
        return False


def resolve_cluster(environ: Mapping[str, str] = os.environ) -> Tuple[Optional[Dict[str, Any]], TaskInfo]:
    """The TF_CONFIG to give the Estimator (None: run as a single machine) and this task's role.

    Raises ConfigError, quoting the offending part, for an unknown task type, an index out of
    range or a cluster without exactly one chief.

    >>> config, info = resolve_cluster({"TF_CONFIG": json.dumps({
    ...     "cluster": {"master": ["h0:2222"], "worker": ["h1:2222"]},
    ...     "task": {"type": "master", "index": 0, "trial": "3"}, "environment": "cloud"})})
    >>> config["cluster"], config["task"]["type"], info.num_workers
    ({'chief': ['h0:2222'], 'worker': ['h1:2222']}, 'chief', 2)
    """
    source, description = _cluster_description(environ)
    raw_cluster = description.get("cluster") or {}
    raw_task = description.get("task") or {}
    if not isinstance(raw_cluster, dict) or not all(
            isinstance(addresses, list) for addresses in raw_cluster.values()):
        raise ConfigError(f"{source} cluster must map job names to lists of addresses, got "
                          f"{json.dumps(raw_cluster)[:300]}")
    if not isinstance(raw_task, dict):
        raise ConfigError(f"{source} task must be an object, got {json.dumps(raw_task)[:300]}")

    cluster: Dict[str, list] = {}
    for name, addresses in raw_cluster.items():
        role = _role(name)
        if role not in TASK_TYPES:
            raise ConfigError(f"{source} cluster has a job named {name!r}, expected one of "
                              f"chief, master, worker, ps, evaluator (or workerpool0-3): "
                              f"cluster = {json.dumps(raw_cluster)[:300]}")
        if addresses:
            cluster.setdefault(role, []).extend(addresses)

    task_type = _role(str(raw_task.get("type", "chief")))
    if task_type not in TASK_TYPES:
        raise ConfigError(f"{source} task type {raw_task.get('type')!r} is not one of chief, "
                          f"master, worker, ps, evaluator (or workerpool0-3): "
                          f"task = {json.dumps(raw_task)[:300]}")
    try:
        task_index = int(raw_task.get("index", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"{source} task index must be an integer: "
                          f"task = {json.dumps(raw_task)[:300]}") from None

    has_evaluator = bool(cluster.pop("evaluator", None)) or task_type == "evaluator" \
        or _evaluator_elsewhere(description)
    if not cluster:
        if task_type != "chief" or task_index != 0:
            raise ConfigError(f"{source} has task {json.dumps(raw_task)} but no cluster")
        return None, TaskInfo()
    if len(cluster.get("chief", [])) != 1:
        raise ConfigError(f"{source} cluster must have exactly one chief (or master), got "
                          f"{len(cluster.get('chief', []))}: cluster = {json.dumps(raw_cluster)[:300]}")
    if task_type != "evaluator":
        if task_type not in cluster:
            raise ConfigError(f"{source} task type {raw_task.get('type')!r} has no addresses in "
                              f"the cluster: cluster = {json.dumps(raw_cluster)[:300]}")
        if not 0 <= task_index < len(cluster[task_type]):
            raise ConfigError(f"{source} task index {task_index} is out of range: cluster "
                              f"{task_type!r} has {len(cluster[task_type])} address(es) "
                              f"{cluster[task_type]}")

    info = TaskInfo(task_type=task_type, task_index=task_index,
                    num_workers=len(cluster["chief"]) + len(cluster.get("worker", [])),
                    num_ps=len(cluster.get("ps", [])), has_evaluator=has_evaluator)
    if not info.is_distributed:
        return None, info  # one machine: the Estimator's local mode, with evaluation
    estimator_config = {"cluster": cluster, "task": {"type": task_type, "index": task_index}}
    return estimator_config, info


def apply_cluster(environ: MutableMapping[str, str] = os.environ) -> TaskInfo:
    """Resolve the cluster and write the Estimator's TF_CONFIG into `environ`; returns the role."""
    estimator_config, info = resolve_cluster(environ)
    if estimator_config is None:
        environ.pop("TF_CONFIG", None)
    else:
        environ["TF_CONFIG"] = json.dumps(estimator_config)
    return info


def trial_id(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The tuning trial of this process: `task.trial` of TF_CONFIG or CLUSTER_SPEC, else
    CLOUD_ML_TRIAL_ID, else None."""
    trial = (_cluster_description(environ)[1].get("task") or {}).get("trial")
    if trial in (None, ""):
        trial = environ.get("CLOUD_ML_TRIAL_ID")
    if trial in (None, ""):
        return None
    trial = str(trial)
    if "/" in trial or trial in (".", ".."):
        raise ConfigError(f"trial id {trial!r} cannot be used as a directory name")
    return trial


def job_id(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The cloud job this process belongs to ($CLOUD_ML_JOB_ID), or None outside one.

    It tells a restarted chief that the output directory was written by its own job.
    """
    return environ.get(JOB_ID_VARIABLE, "").strip() or None


@dataclasses.dataclass(frozen=True)
class OutputDirs:
    """Where a run writes (each local or gs://; "" for none).

    `output_dir` is the run directory: checkpoints, config.json, metrics.json,
    evaluations.json, export/ and the Estimator's own TensorBoard events. `tensorboard_dir`
    receives the training loss (train/) and every evaluation's metrics (eval/) as well, for a
    Vertex AI TensorBoard that uploads only from there. `model_dir` holds the best SavedModel
    itself (saved_model.pb, variables/, assets.extra/ directly in it), ready for a model import.
    `output_dir_source` says what chose `output_dir`.
    """

    output_dir: str
    tensorboard_dir: str = ""
    model_dir: str = ""
    output_dir_source: str = "--output_dir"

    def by_source(self) -> Dict[str, List[str]]:
        """{flag or variable: [directory]} of every directory set (for the bucket check)."""
        found = {self.output_dir_source: [self.output_dir],
                 f"${TENSORBOARD_DIR_VARIABLE}": [self.tensorboard_dir],
                 f"${MODEL_DIR_VARIABLE}": [self.model_dir]}
        return {source: paths for source, paths in found.items() if paths[0]}

    def to_dict(self) -> Dict[str, str]:
        return dataclasses.asdict(self)


def _directory(value: str) -> str:
    """A directory without its trailing slash (Vertex AI's values end in one)."""
    value = value.strip()
    return value.rstrip("/") or value


def resolve_output_dirs(flag_value: str, environ: Mapping[str, str] = os.environ) -> OutputDirs:
    """The directories this run writes to.

    The run directory: --output_dir/--job-dir, else $AIP_CHECKPOINT_DIR, else $AIP_MODEL_DIR
    (a job that sets only that one: the run directory and the model share it), else ./output.
    A tuning trial writes --output_dir/trial_<id> (or ./output/trial_<id>) so that parallel
    trials never share checkpoints; Vertex AI's variables already name the trial's own
    folders and are taken as they are. $AIP_TENSORBOARD_LOG_DIR and $AIP_MODEL_DIR are filled
    whenever they are set, with --output_dir too: the service reads them.

    >>> resolve_output_dirs("gs://b/run", {"CLOUD_ML_TRIAL_ID": "7"}).output_dir
    'gs://b/run/trial_7'
    >>> dirs = resolve_output_dirs("", {"CLOUD_ML_TRIAL_ID": "7",
    ...                                 "AIP_CHECKPOINT_DIR": "gs://b/job/7/checkpoints/",
    ...                                 "AIP_MODEL_DIR": "gs://b/job/7/model/"})
    >>> dirs.output_dir, dirs.model_dir, dirs.output_dir_source
    ('gs://b/job/7/checkpoints', 'gs://b/job/7/model', '$AIP_CHECKPOINT_DIR')
    """
    service = {name: _directory(environ.get(name, "")) for name in OUTPUT_DIR_VARIABLES}
    flag_value = _directory(flag_value)
    if flag_value or not (service[CHECKPOINT_DIR_VARIABLE] or service[MODEL_DIR_VARIABLE]):
        base = flag_value or DEFAULT_OUTPUT_DIR
        trial = trial_id(environ)
        output_dir = f"{base}/trial_{trial}" if trial else base
        source = "--output_dir" if flag_value else f"the default ./{DEFAULT_OUTPUT_DIR}"
    else:
        source = CHECKPOINT_DIR_VARIABLE if service[CHECKPOINT_DIR_VARIABLE] else MODEL_DIR_VARIABLE
        output_dir, source = service[source], f"${source}"
    tensorboard_dir = service[TENSORBOARD_DIR_VARIABLE]
    if tensorboard_dir == output_dir:  # the Estimator's own events are there already
        tensorboard_dir = ""
    return OutputDirs(output_dir=output_dir, tensorboard_dir=tensorboard_dir,
                      model_dir=service[MODEL_DIR_VARIABLE], output_dir_source=source)


def resolve_output_dir(flag_value: str, environ: Mapping[str, str] = os.environ) -> str:
    """The run directory of `resolve_output_dirs`.

    >>> resolve_output_dir("gs://b/run", {"CLOUD_ML_TRIAL_ID": "7"})
    'gs://b/run/trial_7'
    """
    return resolve_output_dirs(flag_value, environ).output_dir
