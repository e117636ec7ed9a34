"""TF_CONFIG, trial ids and the output-directory rules."""

import json

import pytest

from trainer.environment import TaskInfo, read_tf_config, resolve_output_dir, task_info, trial_id
from trainer.errors import ConfigError

CLUSTER = {
    "chief": ["127.0.0.1:2220"],
    "worker": ["127.0.0.1:2221", "127.0.0.1:2222"],
    "ps": ["127.0.0.1:2223"],
}


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


def test_output_dir_precedence():
    assert resolve_output_dir("", {}) == "output"
    assert resolve_output_dir("", {"AIP_MODEL_DIR": "gs://b/aip/model/"}) == "gs://b/aip/model"
    assert resolve_output_dir("gs://b/flag/", {"AIP_MODEL_DIR": "gs://b/aip"}) == "gs://b/flag"


def test_each_trial_gets_its_own_subdirectory():
    assert resolve_output_dir("gs://b/run", {"CLOUD_ML_TRIAL_ID": "7"}) == "gs://b/run/trial_7"
    assert resolve_output_dir("/tmp/run", tf_config("master", trial="3")) == "/tmp/run/trial_3"
