"""config.yaml (legacy AI Platform) and scripts/vertex_hptuning.yaml (Vertex AI) agree with the
trainer and with each other: every tuned parameter is a flag whose every value parses, the metric
is the one the trainer reports, and both files search the same space."""

import dataclasses
import math
from typing import Any, Dict

import pytest
import yaml

from tests.conftest import REPO_ROOT
from trainer.model.metrics import TUNABLE_METRICS, metric_names
from trainer.model.networks import NETWORKS
from trainer.training.config import TrainerConfig, build_parser, parse_config

LEGACY = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
VERTEX = yaml.safe_load((REPO_ROOT / "scripts" / "vertex_hptuning.yaml").read_text())
TRAINING_INPUT = LEGACY["trainingInput"]
LEGACY_TUNING = TRAINING_INPUT["hyperparameters"]
LEGACY_PARAMS = {param["parameterName"]: param for param in LEGACY_TUNING["params"]}
VERTEX_PARAMS = {param["parameterId"]: param for param in VERTEX["studySpec"]["parameters"]}

DEFAULT_METRIC = next(field.default for field in dataclasses.fields(TrainerConfig)
                      if field.name == "hypertune_metric")
DEFAULT_METRIC_TAG = parse_config([]).metric_tag


def legacy_search_space(param: Dict[str, Any]) -> Dict[str, Any]:
    """A legacy ParameterSpec in a form comparable with `vertex_search_space`."""
    kind = param["type"]
    if kind in ("DOUBLE", "INTEGER"):
        space = {"kind": kind, "min": param["minValue"], "max": param["maxValue"]}
    elif kind == "DISCRETE":
        space = {"kind": kind, "values": param["discreteValues"]}
    elif kind == "CATEGORICAL":
        space = {"kind": kind, "values": param["categoricalValues"]}
    else:
        raise AssertionError(f"{param['parameterName']}: unknown legacy type {kind!r}")
    space["scale"] = param.get("scaleType", "SCALE_TYPE_UNSPECIFIED")
    return space


def vertex_search_space(param: Dict[str, Any]) -> Dict[str, Any]:
    """A Vertex AI ParameterSpec in a form comparable with `legacy_search_space`."""
    specs = {"doubleValueSpec": "DOUBLE", "integerValueSpec": "INTEGER",
             "discreteValueSpec": "DISCRETE", "categoricalValueSpec": "CATEGORICAL"}
    present = [key for key in specs if key in param]
    assert len(present) == 1, f"{param['parameterId']}: expected one value spec, got {present}"
    spec, kind = param[present[0]], specs[present[0]]
    if kind in ("DOUBLE", "INTEGER"):
        space = {"kind": kind, "min": spec["minValue"], "max": spec["maxValue"]}
    else:
        space = {"kind": kind, "values": spec["values"]}
    space["scale"] = param.get("scaleType", "SCALE_TYPE_UNSPECIFIED")
    return space


def flag_values(name: str, param: Dict[str, Any]) -> list:
    """The values of a legacy parameter that the trainer must accept: bounds or every value."""
    if param["type"] in ("DOUBLE", "INTEGER"):
        return [param["minValue"], param["maxValue"]]
    return param["discreteValues" if param["type"] == "DISCRETE" else "categoricalValues"]


def test_both_files_tune_the_same_parameters_over_the_same_ranges():
    assert LEGACY_PARAMS, "config.yaml tunes nothing"
    assert set(LEGACY_PARAMS) == set(VERTEX_PARAMS)
    for name in LEGACY_PARAMS:
        assert legacy_search_space(LEGACY_PARAMS[name]) == vertex_search_space(VERTEX_PARAMS[name]), name


def test_the_brief_parameters_are_tuned_with_the_right_kinds():
    kinds = {name: param["type"] for name, param in LEGACY_PARAMS.items()}
    assert kinds["learning_rate"] == "DOUBLE"
    assert kinds["batch_size"] == "DISCRETE"
    assert kinds["hidden_units"] in ("INTEGER", "DISCRETE")
    assert kinds["model"] == "CATEGORICAL"


def test_every_tuned_parameter_is_a_trainer_flag_of_the_same_name():
    destinations = {option: action.dest for action in build_parser()._actions
                    for option in action.option_strings}
    for name in LEGACY_PARAMS:
        assert destinations.get(f"--{name}") == name, f"--{name} is not a flag of trainer.task"


@pytest.mark.parametrize("name", sorted(LEGACY_PARAMS))
def test_every_tuned_value_parses_as_the_services_pass_it(name):
    """The services append `--NAME=VALUE`; every value (or bound) must give a valid config."""
    for value in flag_values(name, LEGACY_PARAMS[name]):
        config = parse_config([f"--{name}={value}"])
        parsed = getattr(config, name)
        assert parsed == value or (isinstance(value, float) and math.isclose(parsed, value)), \
            f"--{name}={value} parsed as {parsed!r}"


def test_one_trial_with_every_parameter_at_once_parses():
    argv = [f"--{name}={flag_values(name, param)[-1]}" for name, param in LEGACY_PARAMS.items()]
    config = parse_config(argv)
    assert config.model == LEGACY_PARAMS["model"]["categoricalValues"][-1]


def test_the_model_parameter_covers_every_architecture():
    assert sorted(LEGACY_PARAMS["model"]["categoricalValues"]) == sorted(tuple(NETWORKS))


def test_the_metric_is_the_one_the_trainer_reports_and_is_minimized():
    assert DEFAULT_METRIC_TAG == DEFAULT_METRIC == "rmse"
    assert LEGACY_TUNING["hyperparameterMetricTag"] == DEFAULT_METRIC_TAG
    assert LEGACY_TUNING["goal"] == "MINIMIZE"
    assert VERTEX["studySpec"]["metrics"] == [{"metricId": DEFAULT_METRIC_TAG, "goal": "MINIMIZE"}]


@pytest.mark.parametrize("metric", TUNABLE_METRICS)
def test_every_tunable_metric_is_in_metrics_json_under_its_own_tag(metric):
    """Switching the files' metric to any --hypertune_metric works: with the flags that metric
    needs, the trainer reports it under that name, and every evaluation computes it."""
    extra = {"wql": ["--loss", "quantile"],
             "msis": ["--loss", "quantile", "--quantiles", "0.025,0.5,0.975"]}.get(metric, [])
    config = parse_config(["--hypertune_metric", metric, *extra])
    assert config.metric_tag == metric
    assert metric in metric_names(config.quantile_levels, n_inputs=config.n_inputs,
                                  season=config.season)
    # Any of them can choose the best evaluation too, with the same flags.
    assert parse_config(["--monitored_metric", metric, *extra]).monitored_metric == metric


def test_the_files_say_how_to_tune_another_metric():
    for path in ("config.yaml", "scripts/vertex_hptuning.yaml"):
        text = (REPO_ROOT / path).read_text()
        assert "--hypertune_metric wql --loss quantile" in text, path
        assert "--hypertune_metric mase" in text, path


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def with_the_commented_metric(text: str) -> str:
    """The file with the metric it shows commented out (`#   ...` after "... and here") put back
    in place of the metric it tunes (its first uncommented line below, and the lines within it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("and here")) + 1
    end = start
    while lines[end].lstrip().startswith("#   "):
        end += 1
    block = [line[:indent(line)] + line.lstrip()[4:] for line in lines[start:end]]
    live = next(i for i in range(end, len(lines)) if not lines[i].lstrip().startswith("#"))
    live_end = live + 1
    while indent(lines[live_end]) > indent(lines[live]):
        live_end += 1
    return "\n".join(lines[:start] + block + lines[end:live] + lines[live_end:]) + "\n"


def test_the_commented_mase_metric_is_valid_and_what_the_trainer_reports_with_its_flag():
    """For data with many series the files show mase, commented out: put back, it is the tag
    the trainer reports with --hypertune_metric mase, in both files."""
    legacy = yaml.safe_load(with_the_commented_metric((REPO_ROOT / "config.yaml").read_text()))
    vertex = yaml.safe_load(with_the_commented_metric(
        (REPO_ROOT / "scripts" / "vertex_hptuning.yaml").read_text()))
    tag = parse_config(["--hypertune_metric", "mase"]).metric_tag
    assert legacy["trainingInput"]["hyperparameters"]["hyperparameterMetricTag"] == tag == "mase"
    assert vertex["studySpec"]["metrics"] == [{"metricId": tag, "goal": "MINIMIZE"}]
    # Nothing else changed.
    assert legacy["trainingInput"]["hyperparameters"]["params"] == LEGACY_TUNING["params"]
    assert vertex["studySpec"]["parameters"] == VERTEX["studySpec"]["parameters"]


def test_learning_rate_is_searched_on_a_log_scale_over_positive_values():
    learning_rate = LEGACY_PARAMS["learning_rate"]
    assert learning_rate["scaleType"] == "UNIT_LOG_SCALE"
    assert VERTEX_PARAMS["learning_rate"]["scaleType"] == "UNIT_LOG_SCALE"
    assert 0 < learning_rate["minValue"] < learning_rate["maxValue"]


def test_ranges_are_well_formed():
    for name, param in LEGACY_PARAMS.items():
        if param["type"] in ("DOUBLE", "INTEGER"):
            assert param["minValue"] < param["maxValue"], name
        if param["type"] == "INTEGER":
            assert all(isinstance(param[key], int) for key in ("minValue", "maxValue")), name
        if param["type"] == "DISCRETE":
            # The legacy API wants discrete values in increasing order.
            assert param["discreteValues"] == sorted(set(param["discreteValues"])), name
        if param["type"] == "CATEGORICAL":
            assert "scaleType" not in param, f"{name}: categorical parameters take no scale"


def test_trial_budgets_agree_and_are_sane():
    assert LEGACY_TUNING["maxTrials"] == VERTEX["maxTrialCount"]
    assert LEGACY_TUNING["maxParallelTrials"] == VERTEX["parallelTrialCount"]
    assert 1 <= LEGACY_TUNING["maxParallelTrials"] <= LEGACY_TUNING["maxTrials"]


def test_both_stop_hopeless_trials_early():
    assert LEGACY_TUNING["enableTrialEarlyStopping"] is True
    stopping = [key for key in VERTEX["studySpec"] if key.endswith("StoppingSpec")]
    assert stopping, "vertex_hptuning.yaml has no early-stopping spec"


def test_the_legacy_cluster_is_a_custom_chief_workers_ps_evaluator_cluster():
    assert TRAINING_INPUT["scaleTier"] == "CUSTOM"
    assert TRAINING_INPUT["masterType"]
    assert TRAINING_INPUT["workerCount"] >= 1 and TRAINING_INPUT["workerType"]
    assert TRAINING_INPUT["parameterServerCount"] >= 1 and TRAINING_INPUT["parameterServerType"]
    # tf.estimator runs at most one evaluator; the trainer reports from that one.
    assert TRAINING_INPUT["evaluatorCount"] == 1 and TRAINING_INPUT["evaluatorType"]
    # TensorFlow 2 wants "chief", not the legacy "master", in TF_CONFIG.
    assert TRAINING_INPUT["useChiefInTfConfig"] is True


def test_the_legacy_config_leaves_images_and_runtime_to_the_submit_script():
    """Images come from --master-image-uri etc.; a runtimeVersion would contradict them."""
    for key in ("runtimeVersion", "pythonVersion", "packageUris", "pythonModule"):
        assert key not in TRAINING_INPUT, key
    for replica in ("masterConfig", "workerConfig", "parameterServerConfig", "evaluatorConfig"):
        assert "imageUri" not in TRAINING_INPUT.get(replica, {}), replica


def test_the_vertex_template_has_the_placeholders_the_submit_script_fills():
    pools = VERTEX["trialJobSpec"]["workerPoolSpecs"]
    assert len(pools) == 1 and pools[0]["replicaCount"] == 1
    assert pools[0]["machineSpec"]["machineType"] == "MACHINE_TYPE"
    assert pools[0]["containerSpec"] == {"imageUri": "IMAGE_URI", "args": ["TRAINER_ARGS"]}
    assert VERTEX["trialJobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": "OUTPUT_URI_PREFIX"}


def uncommented_look_back(text: str) -> str:
    """The file with its commented-out n_inputs parameter block put back in."""
    lines, inside = [], False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("# - parameter") and "n_inputs" in stripped:
            inside = True
        elif inside and not stripped.startswith("#   "):
            inside = False
        if inside:
            indent = line[:len(line) - len(stripped)]
            line = indent + stripped[2:]
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_commented_look_back_parameter_is_valid_and_alike_in_both_files():
    """For --data_dir runs the files offer n_inputs, commented out: put back, it is the same
    search space in both, and every value parses as a trainer flag."""
    legacy = yaml.safe_load(uncommented_look_back((REPO_ROOT / "config.yaml").read_text()))
    vertex = yaml.safe_load(uncommented_look_back(
        (REPO_ROOT / "scripts" / "vertex_hptuning.yaml").read_text()))
    legacy_params = {p["parameterName"]: p for p in legacy["trainingInput"]["hyperparameters"]["params"]}
    vertex_params = {p["parameterId"]: p for p in vertex["studySpec"]["parameters"]}
    assert set(legacy_params) == set(vertex_params) == set(LEGACY_PARAMS) | {"n_inputs"}
    assert legacy_search_space(legacy_params["n_inputs"]) == vertex_search_space(vertex_params["n_inputs"])
    for value in flag_values("n_inputs", legacy_params["n_inputs"]):
        assert parse_config([f"--n_inputs={value}"]).n_inputs == value
