"""scripts/deploy_vertex.sh: the commands it prints (--dry-run) and runs (against a fake gcloud
and curl that record their arguments), checked against Vertex AI's own API messages: each gcloud
command's flags become the fields of the request it sends, the REST body and the prediction
request are parsed as they are, and `predict` is run end to end against a real SavedModel
served as TensorFlow Serving serves it (tests/exported_models.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import pytest
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from tests.conftest import REPO_ROOT, run_tool
from tests.exported_models import export_model
from tests.test_scripts import ENV_DEFAULTS, options, shell_words

DEPLOY = REPO_ROOT / "scripts" / "deploy_vertex.sh"
TOOLS = ("bash", "basename", "dirname", "date", "mktemp", "grep", "rm", "cat", "tr")
COMMON = ["--project", "proj-1", "--region", "europe-west4"]
LOCATION = "projects/proj-1/locations/europe-west4"
MODEL_DIR = "gs://runs-bucket/store_a/export/best/1796140027"
# How a pasted command gets its token; a real run puts the token itself there.
AUTH_SHELL = '"Authorization: Bearer $(gcloud auth print-access-token)"'

FAKE_GCLOUD = """#!/usr/bin/env bash
# Stands in for gcloud: records each call as one printf %q line; answers a prediction request
# with the SavedModel at $FAKE_SERVED_MODEL, served as TensorFlow Serving would.
if [ "$*" = "config get-value project" ]; then echo fake-project; exit 0; fi
if [ "$*" = "auth print-access-token" ]; then echo fake-token; exit 0; fi
printf -v line '%q ' gcloud "$@"
printf '%s\\n' "${line% }" >>"$FAKE_LOG"
if [ "$1 $2 $3" = "ai endpoints predict" ]; then
  for arg in "$@"; do case "$arg" in --json-request=*) request=${arg#--json-request=} ;; esac; done
  exec "$FAKE_PYTHON" -c 'import sys; from tests.exported_models import serve_request
print(serve_request(sys.argv[1], open(sys.argv[2]).read()))' "$FAKE_SERVED_MODEL" "$request"
fi
"""

FAKE_CURL = """#!/usr/bin/env bash
# Stands in for curl: records the call, answers a created job and HTTP 200.
printf -v line '%q ' curl "$@"
printf '%s\\n' "${line% }" >>"$FAKE_LOG"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --output) printf '{\\n  "name": "%s/batchPredictionJobs/42",\\n  "state": "JOB_STATE_PENDING"\\n}\\n' \
                "projects/fake-project/locations/europe-west4" >"$2"; shift ;;
  esac
  shift
done
printf '%s' "${FAKE_HTTP_STATUS:-200}"
"""


@pytest.fixture
def fakes(tool_dir: Path) -> Path:
    """A recording gcloud and curl on the tool PATH; returns their log."""
    for name, text in (("gcloud", FAKE_GCLOUD), ("curl", FAKE_CURL)):
        (tool_dir / name).write_text(text)
        (tool_dir / name).chmod(0o755)
    return tool_dir.parent / "calls.log"


def run_deploy(args: Sequence[str], *, tool_dir: Path, env=None) -> subprocess.CompletedProcess:
    full_env = {key: value for key, value in os.environ.items()
                if key not in ENV_DEFAULTS + ("SERVING_IMAGE_URI", "TRAINER_PYTHON")}
    full_env.update(PATH=str(tool_dir), TMPDIR=str(tool_dir.parent),
                    FAKE_LOG=str(tool_dir.parent / "calls.log"), TRAINER_PYTHON=sys.executable,
                    FAKE_PYTHON=sys.executable, PYTHONPATH=str(REPO_ROOT))
    full_env.update(env or {})
    return subprocess.run([str(DEPLOY), *args], cwd=tool_dir.parent, env=full_env, capture_output=True,
                          text=True, timeout=300)


def printed(result: subprocess.CompletedProcess) -> List[List[str]]:
    """The printed commands as words; the token's $(...) and a redirection as single words."""
    assert result.returncode == 0, result.stderr
    commands = []
    for line in result.stdout.splitlines():
        line, _, redirect = line.partition(" > ")
        words = shell_words(line.replace(AUTH_SHELL, "AUTH_FROM_GCLOUD"))
        commands.append(words + ([">", *shell_words(redirect)] if redirect else []))
    return commands


def parse_as(message_class, body: Dict) -> None:
    """The body must parse as the API message: no unknown field, every value of its type."""
    json_format.Parse(json.dumps(body), message_class.pb()(), ignore_unknown_fields=False)


def flags_used(command: Sequence[str], mapped: Dict[str, object]) -> None:
    unmapped = set(options(command)) - set(mapped)
    assert not unmapped, f"flags with no field in the API message: {sorted(unmapped)}"


# The fields each gcloud flag sets (gcloud reference of `ai models upload`, `ai endpoints
# create`, `ai endpoints deploy-model`); --project and --region make the parent.
def upload_request(command: Sequence[str]) -> Dict:
    flags = {name: values[0] for name, values in options(command).items()}
    flags_used(command, {"--project": 0, "--region": 0, "--model-id": 0, "--display-name": 0,
                         "--container-image-uri": 0, "--artifact-uri": 0})
    return {"parent": f"projects/{flags['--project']}/locations/{flags['--region']}",
            "modelId": flags["--model-id"],
            "model": {"displayName": flags["--display-name"], "artifactUri": flags["--artifact-uri"],
                      "containerSpec": {"imageUri": flags["--container-image-uri"]}}}


def endpoint_request(command: Sequence[str]) -> Dict:
    flags = {name: values[0] for name, values in options(command).items()}
    flags_used(command, {"--project": 0, "--region": 0, "--endpoint-id": 0, "--display-name": 0})
    return {"parent": f"projects/{flags['--project']}/locations/{flags['--region']}",
            "endpointId": flags["--endpoint-id"], "endpoint": {"displayName": flags["--display-name"]}}


def deploy_request(command: Sequence[str]) -> Dict:
    flags = {name: values[0] for name, values in options(command).items()}
    flags_used(command, {"--project": 0, "--region": 0, "--model": 0, "--display-name": 0,
                         "--machine-type": 0, "--min-replica-count": 0, "--max-replica-count": 0,
                         "--traffic-split": 0})
    location = f"projects/{flags['--project']}/locations/{flags['--region']}"
    split_key, split_value = flags["--traffic-split"].split("=")
    return {"endpoint": f"{location}/endpoints/{command[4]}",
            "deployedModel": {"model": f"{location}/models/{flags['--model']}",
                              "displayName": flags["--display-name"],
                              "dedicatedResources": {
                                  "machineSpec": {"machineType": flags["--machine-type"]},
                                  "minReplicaCount": int(flags["--min-replica-count"]),
                                  "maxReplicaCount": int(flags["--max-replica-count"])}},
            "trafficSplit": {split_key: int(split_value)}}


def test_upload_uses_a_tensorflow_2_15_serving_image_of_the_region(tool_dir):
    from google.cloud.aiplatform.constants import prediction

    (command,) = printed(run_deploy(["upload", "--dry-run", *COMMON, "--model-dir", MODEL_DIR + "/"],
                                    tool_dir=tool_dir))
    assert command[:4] == ["gcloud", "ai", "models", "upload"]
    request = upload_request(command)
    parse_as(aiplatform_v1.UploadModelRequest, request)
    assert request["parent"] == LOCATION and request["modelId"] == "lstm-forecast-1796140027"
    assert request["model"]["artifactUri"] == MODEL_DIR
    image = request["model"]["containerSpec"]["imageUri"]
    assert image == "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    # The images Google's own SDK knows as prebuilt TensorFlow prediction containers.
    assert image in prediction.TF_CONTAINER_URIS
    for region in ("us-central1", "asia-east1"):
        (command,) = printed(run_deploy(["upload", "--dry-run", "--region", region, "--model-dir", MODEL_DIR],
                                        tool_dir=tool_dir))
        assert upload_request(command)["model"]["containerSpec"]["imageUri"] in prediction.TF_CONTAINER_URIS


@pytest.mark.parametrize(("model_dir", "model_id"), [
    ("gs://runs-bucket/lstm_job_7/model", "lstm-forecast-lstm_job_7"),
    ("gs://runs-bucket/tuning/Job-8/12/model/", "lstm-forecast-job-8-12"),
    ("gs://runs-bucket/my model", "lstm-forecast-my-model"),
])
def test_upload_names_a_vertex_jobs_model_folder_after_the_job(tool_dir, model_dir, model_id):
    """AIP_MODEL_DIR is gs://BUCKET/JOB/model (JOB/TRIAL/model in a tuning job) for every job."""
    (command,) = printed(run_deploy(["upload", "--dry-run", *COMMON, "--model-dir", model_dir],
                                    tool_dir=tool_dir))
    request = upload_request(command)
    parse_as(aiplatform_v1.UploadModelRequest, request)
    assert request["modelId"] == model_id
    assert request["model"]["artifactUri"] == model_dir.rstrip("/")


def test_deploy_creates_the_endpoint_then_deploys_the_model(tool_dir):
    create, deploy = printed(run_deploy(["deploy", "--dry-run", *COMMON, "--model-id", "sales-7",
                                         "--endpoint-id", "shop-forecast", "--machine-type", "e2-standard-4",
                                         "--min-replica-count", "2", "--max-replica-count", "5"],
                                        tool_dir=tool_dir))
    assert create[:4] == ["gcloud", "ai", "endpoints", "create"]
    parse_as(aiplatform_v1.CreateEndpointRequest, endpoint_request(create))
    assert endpoint_request(create)["endpointId"] == "shop-forecast"
    assert deploy[:5] == ["gcloud", "ai", "endpoints", "deploy-model", "shop-forecast"]
    request = deploy_request(deploy)
    parse_as(aiplatform_v1.DeployModelRequest, request)
    assert request["deployedModel"]["model"] == f"{LOCATION}/models/sales-7"
    assert request["deployedModel"]["dedicatedResources"] == {
        "machineSpec": {"machineType": "e2-standard-4"}, "minReplicaCount": 2, "maxReplicaCount": 5}
    assert request["trafficSplit"] == {"0": 100}
    (deploy_only,) = printed(run_deploy(["deploy", "--dry-run", "--model-id", "sales-7",
                                         "--existing-endpoint"], tool_dir=tool_dir))
    assert deploy_only[:5] == ["gcloud", "ai", "endpoints", "deploy-model", "lstm-forecast"]


def test_batch_predict_posts_a_batch_prediction_job(tool_dir):
    result = run_deploy(["batch-predict", "--dry-run", *COMMON, "--model-id", "sales-7", "--instances",
                         "gs://b/instances/part-*.jsonl,gs://b/more/it's.jsonl", "--output-uri",
                         "gs://b/predictions", "--job-name", "nightly.7", "--max-replica-count", "3"],
                        tool_dir=tool_dir)
    (command,) = printed(result)
    assert command[0] == "curl" and command[-1] == (
        f"https://europe-west4-aiplatform.googleapis.com/v1/{LOCATION}/batchPredictionJobs")
    assert command[command.index("--header") + 1] == "AUTH_FROM_GCLOUD"
    body_path = command[command.index("--data-binary") + 1][1:]
    assert body_path in result.stderr, "a dry run says where the generated body stays"
    body = json.loads(Path(body_path).read_text())
    parse_as(aiplatform_v1.BatchPredictionJob, body)
    assert body["model"] == f"{LOCATION}/models/sales-7" and body["displayName"] == "nightly.7"
    assert body["inputConfig"] == {"instancesFormat": "jsonl", "gcsSource": {
        "uris": ["gs://b/instances/part-*.jsonl", "gs://b/more/it's.jsonl"]}}
    assert body["outputConfig"]["gcsDestination"] == {"outputUriPrefix": "gs://b/predictions"}
    assert body["dedicatedResources"] == {"machineSpec": {"machineType": "n1-standard-2"},
                                          "startingReplicaCount": 1, "maxReplicaCount": 3}


@pytest.mark.parametrize("args", [
    ["upload", "--model-dir", MODEL_DIR],
    ["deploy", "--model-id", "sales-7"],
    ["batch-predict", "--model-id", "sales-7", "--instances", "gs://b/i.jsonl", "--output-uri", "gs://b/p"],
], ids=lambda args: args[0])
def test_a_real_run_runs_exactly_what_the_dry_run_prints(tool_dir, fakes, args):
    dry = printed(run_deploy(["--dry-run", *args], tool_dir=tool_dir))
    real = run_deploy(args, tool_dir=tool_dir)
    assert real.returncode == 0, real.stderr
    ran = [shell_words(line) for line in fakes.read_text().splitlines()]
    token = "Authorization: Bearer fake-token"
    expected = [[token if word == "AUTH_FROM_GCLOUD" else word.replace("my-project", "fake-project")
                 for word in command] for command in dry]
    mask = re.compile(r"/deploy_vertex\.\w+/")
    assert [[mask.sub("/WORK/", word) for word in command] for command in ran] == \
        [[mask.sub("/WORK/", word) for word in command] for command in expected]
    assert "fake-token" not in real.stderr, "the access token is never echoed"
    if args[0] == "batch-predict":
        assert "batchPredictionJobs/42" in real.stderr


def test_batch_predict_says_what_the_api_answered(tool_dir, fakes):
    result = run_deploy(["batch-predict", "--model-id", "sales-7", "--instances", "gs://b/i.jsonl",
                         "--output-uri", "gs://b/p"], tool_dir=tool_dir, env={"FAKE_HTTP_STATUS": "403"})
    assert result.returncode == 1
    assert "the Vertex AI API answered HTTP 403" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["model", "ensemble"])
def test_predict_turns_a_series_into_the_forecast_of_the_endpoint(tool_dir, fakes, tmp_path, kind):
    model = export_model(tmp_path / "model", n_inputs=5, n_outputs=2)
    if kind == "ensemble":  # forecast auto's export: a model and seasonal naive in one graph
        from trainer.model.ensemble import Member, export_ensemble

        model = export_ensemble([Member("saved_model", 0.7, path=model),
                                 Member("seasonal_naive", 0.3, season=7)],
                                export_dir_base=str(tmp_path / "ensemble"))
    raw = tmp_path / "my sales.csv"
    raw.write_text("timestamp,value\n" + "".join(f"{t},{100 + (t % 7) * 3.5}\n" for t in range(30)))
    output = tmp_path / "forecast.csv"
    args = ["predict", *COMMON, "--model-dir", model, "--output", str(output), "--endpoint-id", "shop",
            "--", "--series", str(raw)]
    dry = printed(run_deploy(["--dry-run", *args], tool_dir=tool_dir))
    assert [command[1:3] for command in dry] == [["-m", "trainer.instances"], ["ai", "endpoints"],
                                                 ["-m", "trainer.instances"]]
    request_path = dry[0][-1]
    assert dry[1][-2:] == [">", request_path.replace("request.json", "response.json")]
    real = run_deploy(args, tool_dir=tool_dir, env={"FAKE_SERVED_MODEL": model})
    assert real.returncode == 0, real.stderr[-3000:]
    (predict_call,) = [shell_words(line) for line in fakes.read_text().splitlines()]
    assert predict_call[:5] == ["gcloud", "ai", "endpoints", "predict", "shop"]
    request = predict_call[[w.split("=")[0] for w in predict_call].index("--json-request")].split("=", 1)[1]
    assert not Path(request).exists(), "a real run deletes its request and response"
    # The endpoint's forecast is the model's: trainer.predict writes the same CSV.
    expected = tmp_path / "expected.csv"
    result = run_tool("trainer.predict", "--model_dir", model, "--series", str(raw), "--output",
                      str(expected))
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.read_text() == expected.read_text()
    assert len(output.read_text().splitlines()) == 3


def test_the_prediction_request_parses_as_a_predict_request(tmp_path):
    model = export_model(tmp_path / "model", n_inputs=5, n_outputs=2)
    raw = tmp_path / "sales.csv"
    raw.write_text("timestamp,value\n" + "".join(f"{t},{t * 1.5}\n" for t in range(9)))
    result = run_tool("trainer.instances", "--model_dir", model, "--series", str(raw), "--output",
                      str(tmp_path / "request.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    body = json.loads((tmp_path / "request.json").read_text())
    parse_as(aiplatform_v1.PredictRequest, {"endpoint": f"{LOCATION}/endpoints/shop", **body})
    assert body == {"instances": [[6.0, 7.5, 9.0, 10.5, 12.0]]}


@pytest.mark.parametrize(("args", "message"), [
    (["--dry-run"], "missing subcommand"),
    (["serve", "--dry-run"], "unknown subcommand 'serve'"),
    (["upload", "--dry-run"], "upload needs --model-dir"),
    (["upload", "--dry-run", "--model-dir", "runs/store_a"], "--model-dir must be on Cloud Storage"),
    (["upload", "--dry-run", "--model-dir", MODEL_DIR, "--model-id", "7up"], "--model-id must be"),
    (["deploy", "--dry-run"], "deploy needs --model-id"),
    (["deploy", "--dry-run", "--model-id", "m", "--endpoint-id", "shop-"], "--endpoint-id must be"),
    (["deploy", "--dry-run", "--model-id", "m", "--min-replica-count", "0"],
     "--min-replica-count must be a whole number"),
    (["deploy", "--dry-run", "--model-id", "m", "--min-replica-count", "3"],
     "--max-replica-count 1 is below --min-replica-count 3"),
    (["deploy", "--dry-run", "--model-id", "m", "--", "--series", "x.csv"], "only predict runs"),
    (["predict", "--dry-run", "--model-dir", "m", "--output", "f.csv"], "predict needs the series or rows"),
    (["predict", "--dry-run", "--model-dir", "m", "--output", "f.csv", "--", "--output", "g.csv"],
     "trainer.instances argument --output is set by this script"),
    (["batch-predict", "--dry-run", "--model-id", "m", "--output-uri", "gs://b/p"],
     "batch-predict needs --instances"),
    (["batch-predict", "--dry-run", "--model-id", "m", "--instances", "i.jsonl", "--output-uri", "gs://b/p"],
     "--instances must be on Cloud Storage"),
    (["upload", "--dry-run", "--region", "--model-dir", MODEL_DIR], "--region needs a value"),
    (["upload", "--dry-run", "--colour", "blue"], "unknown option '--colour'"),
])
def test_bad_arguments_exit_2_with_a_message(tool_dir, args, message):
    result = run_deploy(args, tool_dir=tool_dir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == "", "nothing is printed (or run) after a bad argument"


def test_help_names_every_option(tool_dir):
    result = run_deploy(["--help"], tool_dir=tool_dir)
    assert result.returncode == 0 and "Usage:" in result.stdout
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", DEPLOY.read_text(), re.MULTILINE))
    assert len(parsed) > 15
    for option in parsed | {"--dry-run", "--existing-endpoint"}:
        assert f"  {option} " in result.stdout, f"{option} is not in --help"


def test_a_real_run_without_gcloud_says_so(tool_dir):
    result = run_deploy(["deploy", "--model-id", "m"], tool_dir=tool_dir)
    assert result.returncode == 1
    assert "gcloud not found" in result.stderr and "--dry-run" in result.stderr
