"""TF_CONFIG, trial ids and the output-directory rules."""

import json

import pytest

from trainer.util.environment import (
    OutputDirs,
    TaskInfo,
    apply_cluster,
    job_id,
    read_tf_config,
    resolve_cluster,
    resolve_output_dir,
    resolve_output_dirs,
    trial_id,
)
from trainer.util.errors import ConfigError

CLUSTER = {
    "chief": ["127.0.0.1:2220"],
    "worker": ["127.0.0.1:2221", "127.0.0.1:2222"],
    "ps": ["127.0.0.1:2223"],
}


def task_info(environ):
    """The role that `apply_cluster` would resolve from `environ`, without writing TF_CONFIG."""
    return resolve_cluster(environ)[1]


def tf_config(task_type, index=0, *, evaluator=False, **task_extra):
    cluster = dict(CLUSTER)
    value = {"cluster": cluster, "task": {"type": task_type, "index": index, **task_extra}}
    if evaluator:
        value["cluster"] = {**cluster, "evaluator": ["127.0.0.1:2224"]}
    return {"TF_CONFIG": json.dumps(value)}


def test_local_run_is_a_chief_of_one():
    info = task_info({})
    assert info == TaskInfo()
    assert info.is_chief and info.writes_evaluation_outputs and info.worker_index == 0


def test_worker_positions_in_the_cluster():
    chief = task_info(tf_config("chief"))
    worker = task_info(tf_config("worker", 1))
    assert (chief.num_workers, chief.worker_index) == (3, 0)
    assert (worker.num_workers, worker.worker_index, worker.is_chief) == (3, 2, False)


def test_only_one_process_writes_evaluation_outputs():
    assert task_info(tf_config("chief")).writes_evaluation_outputs
    assert not task_info(tf_config("chief", evaluator=True)).writes_evaluation_outputs
    assert task_info(tf_config("evaluator", evaluator=True)).writes_evaluation_outputs
    assert not task_info(tf_config("worker", 0)).writes_evaluation_outputs
    assert not task_info(tf_config("ps", 0)).writes_evaluation_outputs


def test_legacy_master_is_the_chief():
    config = {"cluster": {"master": ["h:1"], "worker": ["h:2"]}, "task": {"type": "master"},
              "environment": "cloud"}
    info = task_info({"TF_CONFIG": json.dumps(config)})
    assert info.is_chief and info.num_workers == 2


@pytest.mark.parametrize("text, expected", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ("[1, 2]", "TF_CONFIG must be a JSON object, got '[1, 2]'"),
])
def test_malformed_tf_config_is_quoted(text, expected):
    with pytest.raises(ConfigError) as error:
        read_tf_config({"TF_CONFIG": text})
    assert expected in str(error.value)


def test_trial_id_sources():
    assert trial_id({}) is None
    assert trial_id({"CLOUD_ML_TRIAL_ID": "4"}) == "4"
    # TF_CONFIG task.trial (legacy AI Platform) wins over the environment variable.
    assert trial_id({**tf_config("master", trial="12"), "CLOUD_ML_TRIAL_ID": "4"}) == "12"
    with pytest.raises(ConfigError, match="cannot be used as a directory name"):
        trial_id({"CLOUD_ML_TRIAL_ID": "../x"})


def test_job_id_comes_from_cloud_ml_job_id():
    assert job_id({}) is None
    assert job_id({"CLOUD_ML_JOB_ID": " "}) is None
    assert job_id({"CLOUD_ML_JOB_ID": "4471302719"}) == "4471302719"


def test_output_dir_precedence():
    assert resolve_output_dir("", {}) == "output"
    assert resolve_output_dir("", {"AIP_MODEL_DIR": "gs://b/aip/model/"}) == "gs://b/aip/model"
    assert resolve_output_dir("gs://b/flag/", {"AIP_MODEL_DIR": "gs://b/aip"}) == "gs://b/flag"


def test_each_trial_gets_its_own_subdirectory():
    assert resolve_output_dir("gs://b/run", {"CLOUD_ML_TRIAL_ID": "7"}) == "gs://b/run/trial_7"
    assert resolve_output_dir("/tmp/run", tf_config("master", trial="3")) == "/tmp/run/trial_3"
    assert resolve_output_dir("", {"CLOUD_ML_TRIAL_ID": "7"}) == "output/trial_7"


# What Vertex AI sets for a job with baseOutputDirectory gs://b/job (CustomJobSpec), and for
# trial 7 of a tuning job with that base.
VERTEX_JOB = {"AIP_MODEL_DIR": "gs://b/job/model/", "AIP_CHECKPOINT_DIR": "gs://b/job/checkpoints/",
              "AIP_TENSORBOARD_LOG_DIR": "gs://b/job/logs/"}
VERTEX_TRIAL = {"CLOUD_ML_TRIAL_ID": "7", "AIP_MODEL_DIR": "gs://b/job/7/model/",
                "AIP_CHECKPOINT_DIR": "gs://b/job/7/checkpoints/",
                "AIP_TENSORBOARD_LOG_DIR": "gs://b/job/7/logs/"}


def test_vertex_job_directories():
    assert resolve_output_dirs("", VERTEX_JOB) == OutputDirs(
        output_dir="gs://b/job/checkpoints", tensorboard_dir="gs://b/job/logs",
        model_dir="gs://b/job/model", output_dir_source="$AIP_CHECKPOINT_DIR")
    assert resolve_output_dirs("", VERTEX_JOB).by_source() == {
        "$AIP_CHECKPOINT_DIR": ["gs://b/job/checkpoints"], "$AIP_TENSORBOARD_LOG_DIR": ["gs://b/job/logs"],
        "$AIP_MODEL_DIR": ["gs://b/job/model"]}


def test_vertex_trial_directories_already_name_the_trial():
    dirs = resolve_output_dirs("", VERTEX_TRIAL)
    assert (dirs.output_dir, dirs.tensorboard_dir, dirs.model_dir) == (
        "gs://b/job/7/checkpoints", "gs://b/job/7/logs", "gs://b/job/7/model")
    assert "trial_" not in json.dumps(dirs.to_dict())


def test_output_dir_flag_moves_the_run_directory_only():
    # Legacy AI Platform passes --job-dir and the trial: trial_<id> below it, as before.
    assert resolve_output_dirs("gs://b/jobdir/", {"CLOUD_ML_TRIAL_ID": "7"}) == OutputDirs(
        output_dir="gs://b/jobdir/trial_7", output_dir_source="--output_dir")
    # On Vertex AI the service still reads its model and TensorBoard folders: they are filled.
    assert resolve_output_dirs("gs://b/mine", VERTEX_TRIAL) == OutputDirs(
        output_dir="gs://b/mine/trial_7", tensorboard_dir="gs://b/job/7/logs",
        model_dir="gs://b/job/7/model", output_dir_source="--output_dir")


def test_only_aip_model_dir_keeps_the_run_beside_the_model():
    dirs = resolve_output_dirs("", {"AIP_MODEL_DIR": "/tmp/aip/model/", "CLOUD_ML_TRIAL_ID": "2"})
    assert dirs == OutputDirs(output_dir="/tmp/aip/model", model_dir="/tmp/aip/model",
                              output_dir_source="$AIP_MODEL_DIR")
    assert resolve_output_dirs("", {"AIP_TENSORBOARD_LOG_DIR": "gs://b/logs"}) == OutputDirs(
        output_dir="output", tensorboard_dir="gs://b/logs", output_dir_source="the default ./output")


def test_tensorboard_dir_equal_to_the_run_directory_is_not_written_twice():
    dirs = resolve_output_dirs("gs://b/run", {"AIP_TENSORBOARD_LOG_DIR": "gs://b/run/"})
    assert (dirs.output_dir, dirs.tensorboard_dir) == ("gs://b/run", "")


# --- Every naming the clouds use, mapped to the one the Estimator accepts -----------------

def resolve(variables):
    return resolve_cluster({key: json.dumps(value) for key, value in variables.items()})


def test_tensorflow_chief_form_passes_through_without_the_evaluator():
    config, info = resolve({"TF_CONFIG": {"cluster": {**CLUSTER, "evaluator": ["h:9"]},
                                          "task": {"type": "worker", "index": 1}}})
    assert config == {"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}
    assert (info.task_type, info.num_workers, info.num_ps, info.has_evaluator) == ("worker", 3, 1, True)


def test_legacy_master_form_becomes_chief():
    config, info = resolve({"TF_CONFIG": {
        "cluster": {"master": ["m:1"], "worker": ["w:1", "w:2"], "ps": ["p:1"]},
        "task": {"type": "master", "index": 0, "trial": "4"}, "environment": "cloud",
        "job": {"scaleTier": "CUSTOM", "evaluatorCount": 1}}})
    assert config == {"cluster": {"chief": ["m:1"], "worker": ["w:1", "w:2"], "ps": ["p:1"]},
                      "task": {"type": "chief", "index": 0}}
    assert info.is_chief and info.has_evaluator and not info.writes_evaluation_outputs


def test_legacy_evaluator_outside_the_cluster_is_recognised():
    config, info = resolve({"TF_CONFIG": {
        "cluster": {"master": ["m:1"], "ps": ["p:1"]}, "task": {"type": "evaluator", "index": 0},
        "environment": "cloud"}})
    assert config["task"] == {"type": "evaluator", "index": 0}
    assert info.is_evaluator and info.writes_evaluation_outputs


def test_vertex_worker_pools_become_roles():
    spec = {"cluster": {"workerpool0": ["c:1"], "workerpool1": ["w:1", "w:2"],
                        "workerpool2": ["p:1"], "workerpool3": ["e:1"]},
            "task": {"type": "workerpool1", "index": 1, "trial": "7"}, "environment": "cloud"}
    config, info = resolve({"CLUSTER_SPEC": spec})
    assert config == {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"], "ps": ["p:1"]},
                      "task": {"type": "worker", "index": 1}}
    assert info.has_evaluator and info.worker_index == 2
    assert trial_id({"CLUSTER_SPEC": json.dumps(spec)}) == "7"
    _, evaluator = resolve({"CLUSTER_SPEC": {**spec, "task": {"type": "workerpool3", "index": 0}}})
    assert evaluator.is_evaluator


def test_single_machine_runs_locally():
    for variables in (
            {"TF_CONFIG": {"cluster": {"master": ["m:1"]}, "task": {"type": "master", "index": 0,
                                                                   "trial": "2"}}},
            {"CLUSTER_SPEC": {"cluster": {"workerpool0": ["c:1"]},
                              "task": {"type": "workerpool0", "index": 0}}},
            {"TF_CONFIG": {"task": {"type": "chief", "index": 0}}}):
        config, info = resolve(variables)
        assert config is None and info == TaskInfo(), variables


def test_apply_cluster_rewrites_or_removes_tf_config():
    environ = {"TF_CONFIG": json.dumps({"cluster": {"master": ["m:1"], "worker": ["w:1"]},
                                        "task": {"type": "worker", "index": 0}})}
    assert apply_cluster(environ).task_type == "worker"
    assert json.loads(environ["TF_CONFIG"])["cluster"] == {"chief": ["m:1"], "worker": ["w:1"]}
    single = {"TF_CONFIG": json.dumps({"cluster": {"chief": ["c:1"]}, "task": {"type": "chief"}})}
    assert apply_cluster(single).is_chief and "TF_CONFIG" not in single


@pytest.mark.parametrize("variables, expected", [
    ({"TF_CONFIG": "{oops"}, "TF_CONFIG is not valid JSON"),
    ({"CLUSTER_SPEC": "[]"}, "CLUSTER_SPEC must be a JSON object, got '[]'"),
    ({"TF_CONFIG": json.dumps({"cluster": CLUSTER, "task": {"type": "trainer", "index": 0}})},
     "TF_CONFIG task type 'trainer' is not one of chief, master, worker, ps, evaluator "
     "(or workerpool0-3): task = {\"type\": \"trainer\", \"index\": 0}"),
    ({"TF_CONFIG": json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}})},
     "TF_CONFIG task index 2 is out of range: cluster 'worker' has 2 address(es) "
     "['127.0.0.1:2221', '127.0.0.1:2222']"),
    ({"TF_CONFIG": json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": "x"}})},
     "TF_CONFIG task index must be an integer: task = {\"type\": \"worker\", \"index\": \"x\"}"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["w:1", "w:2"], "ps": ["p:1"]},
                               "task": {"type": "worker", "index": 0}})},
     "TF_CONFIG cluster must have exactly one chief (or master), got 0: cluster = "
     "{\"worker\": [\"w:1\", \"w:2\"], \"ps\": [\"p:1\"]}"),
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "master": ["b:1"]},
                               "task": {"type": "chief", "index": 0}})},
     "TF_CONFIG cluster must have exactly one chief (or master), got 2"),
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "learner": ["b:1"]},
                               "task": {"type": "chief", "index": 0}})},
     "TF_CONFIG cluster has a job named 'learner'"),
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": "a:1"}, "task": {"type": "chief"}})},
     "TF_CONFIG cluster must map job names to lists of addresses, got {\"chief\": \"a:1\"}"),
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["w:1"]},
                               "task": {"type": "ps", "index": 0}})},
     "TF_CONFIG task type 'ps' has no addresses in the cluster"),
])
def test_malformed_cluster_is_quoted(variables, expected):
    with pytest.raises(ConfigError) as error:
        resolve_cluster(variables)
    assert expected in str(error.value)
