#!/usr/bin/env bash
# Serve an exported model on Vertex AI: upload it to the Model Registry, deploy it to an
# endpoint, send the endpoint an online prediction, or start a batch prediction job.
#
#   upload         `gcloud ai models upload` of the SavedModel at --model-dir (gs://, the
#                  directory that holds saved_model.pb) as the model --model-id, served by
#                  Vertex AI's prebuilt TensorFlow 2.15 image (tf2-cpu.2-15, which runs
#                  TensorFlow Serving: the request format is in docs/serving.md).
#   deploy         `gcloud ai endpoints create --endpoint-id` (not with --existing-endpoint),
#                  then `gcloud ai endpoints deploy-model`: the model on --machine-type, between
#                  --min-replica-count and --max-replica-count replicas, all traffic to it.
#   predict        `python -m trainer.instances` turns the series or rows given after `--` into
#                  a request sized by --model-dir (local or gs://), `gcloud ai endpoints predict`
#                  sends it, and `python -m trainer.instances --response` writes the answer as
#                  the forecast CSV --output.
#   batch-predict  gcloud has no command that creates a batch prediction job, so this POSTs the
#                  BatchPredictionJob, written to a JSON file, to the REST API with curl and
#                  `gcloud auth print-access-token`: instances from --instances (JSONL on gs://,
#                  made by `python -m trainer.instances --format jsonl`), predictions under
#                  --output-uri.
#
# --dry-run prints the commands instead, one per line and shell-quoted so that they can be
# pasted (an output redirection and the access token written as a shell reads them), and keeps
# the files they name; it needs neither gcloud nor a project.
#
#   ./scripts/deploy_vertex.sh upload --model-dir gs://my-bucket/runs/store_a/export/best/1796140027
#   ./scripts/deploy_vertex.sh upload --model-dir gs://my-bucket/lstm_job_7/model   # after submit_vertex.sh
#   ./scripts/deploy_vertex.sh deploy --model-id lstm-forecast-1796140027
#   ./scripts/deploy_vertex.sh predict --model-dir runs/store_a --output forecast.csv -- \
#       --series daily_sales.csv --timestamp_column date --target store_a
set -euo pipefail

PROG=$(basename "$0")
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/_cloud.sh
source "$REPO_ROOT/scripts/_cloud.sh"

# Vertex AI's prebuilt TensorFlow 2.15 prediction image, in the registry nearest the region
# (google-cloud-aiplatform lists it in aiplatform.constants.prediction.TF_CONTAINER_URIS).
SERVING_IMAGE_PATH="docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
DEFAULT_ENDPOINT_ID="lstm-forecast"
DEFAULT_MACHINE_TYPE="n1-standard-2"
# Shown in place of the access token: the printed command fetches its own when pasted.
AUTH_HEADER_PLACEHOLDER="Authorization: Bearer TOKEN"
# shellcheck disable=SC2016  # printed as is, for the shell that the command is pasted into
AUTH_HEADER_SHELL='"Authorization: Bearer $(gcloud auth print-access-token)"'

usage() {
  cat <<EOF
Usage: $PROG upload|deploy|predict|batch-predict [OPTIONS] [-- INSTANCES_ARGS...]

Serve an exported model on Vertex AI.
  upload          gcloud ai models upload: the SavedModel at --model-dir (gs://) as model --model-id
  deploy          gcloud ai endpoints create, then deploy-model of --model-id to --endpoint-id
  predict         the series or rows after -- (python -m trainer.instances flags: --series FILE or
                  --rows PATTERNS, --target, --timestamp_column, ...) -> gcloud ai endpoints predict
                  -> the forecast CSV --output
  batch-predict   a batch prediction job (REST API): JSONL --instances on gs:// -> --output-uri

Options (default in brackets; an environment variable sets the default):
  --project P                Google Cloud project [\$PROJECT, else gcloud's default project]
  --region R                 region [\$REGION, else $DEFAULT_REGION]
  --model-dir DIR            upload: the SavedModel directory on gs:// (it holds saved_model.pb:
                             a run's export/best/<timestamp>, a Vertex AI job's gs://B/JOB/model);
                             predict: the same model, local or gs://, to size the request
  --model-id ID              the model in the Model Registry: a lowercase letter, then up to 62
                             lowercase letters, digits, _ or - [upload: lstm-forecast-<the
                             --model-dir folder's name>, or <JOB> for gs://B/JOB/model and
                             <JOB>-<TRIAL> for gs://B/JOB/TRIAL/model, a Vertex AI job's model;
                             deploy and batch-predict: required]
  --display-name N           upload: the model's display name [the model id]
  --serving-image URI        upload: the serving image [\$SERVING_IMAGE_URI, else
                             us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest, europe-
                             or asia- for regions there]
  --endpoint-id ID           deploy, predict: the endpoint: a lowercase letter, then up to 62
                             lowercase letters, digits or -, not ending in - [$DEFAULT_ENDPOINT_ID]
  --existing-endpoint        deploy: to the endpoint --endpoint-id that exists; create none
  --machine-type M           deploy, batch-predict: machine type of each replica [$DEFAULT_MACHINE_TYPE]
  --min-replica-count N      deploy: replicas always running [1]
  --max-replica-count N      deploy, batch-predict: most replicas [1]
  --starting-replica-count N batch-predict: replicas the job starts with [1]
  --instances URIS           batch-predict: comma-separated JSONL files on gs:// (wildcards allowed)
  --output-uri gs://P        batch-predict: where the job writes its prediction files
  --job-name N               batch-predict: the job's display name [lstm_forecast_batch_<UTC time>]
  --output FILE              predict: the forecast CSV to write
  --dry-run                  print the commands (shell-quoted, one per line) instead of running them
  -h, --help                 show this help

predict runs \$TRAINER_PYTHON [.venv/bin/python of this checkout, else python3]. Examples:
  ./scripts/$PROG upload --model-dir gs://my-bucket/runs/store_a/export/best/1796140027
  ./scripts/$PROG upload --model-dir gs://my-bucket/lstm_job_7/model   # as lstm-forecast-lstm_job_7
  ./scripts/$PROG deploy --model-id lstm-forecast-1796140027 --machine-type n1-standard-4
  ./scripts/$PROG predict --model-dir runs/store_a --output forecast.csv -- --series daily_sales.csv \\
      --timestamp_column date --target store_a
  ./scripts/$PROG batch-predict --model-id lstm-forecast-1796140027 \\
      --instances 'gs://my-bucket/instances/*.jsonl' --output-uri gs://my-bucket/predictions
EOF
}

parse_args() {
  DRY_RUN=0
  SUBCOMMAND=""
  PROJECT="${PROJECT:-}"
  REGION="${REGION:-$DEFAULT_REGION}"
  MODEL_DIR=""
  MODEL_ID=""
  DISPLAY_NAME=""
  SERVING_IMAGE="${SERVING_IMAGE_URI:-}"
  ENDPOINT_ID="$DEFAULT_ENDPOINT_ID"
  EXISTING_ENDPOINT=0
  MACHINE_TYPE="$DEFAULT_MACHINE_TYPE"
  MIN_REPLICAS=1
  MAX_REPLICAS=1
  STARTING_REPLICAS=1
  INSTANCES=""
  OUTPUT_URI=""
  JOB_NAME=""
  OUTPUT=""
  INSTANCES_ARGS=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --) shift; INSTANCES_ARGS=("$@"); break ;;
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;  # --opt=value -> --opt value
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      --existing-endpoint) EXISTING_ENDPOINT=1 ;;
      --project) need_value "$@"; PROJECT=$2; shift ;;
      --region) need_value "$@"; REGION=$2; shift ;;
      --model-dir) need_value "$@"; MODEL_DIR=$2; shift ;;
      --model-id) need_value "$@"; MODEL_ID=$2; shift ;;
      --display-name) need_value "$@"; DISPLAY_NAME=$2; shift ;;
      --serving-image) need_value "$@"; SERVING_IMAGE=$2; shift ;;
      --endpoint-id) need_value "$@"; ENDPOINT_ID=$2; shift ;;
      --machine-type) need_value "$@"; MACHINE_TYPE=$2; shift ;;
      --min-replica-count) need_value "$@"; MIN_REPLICAS=$2; shift ;;
      --max-replica-count) need_value "$@"; MAX_REPLICAS=$2; shift ;;
      --starting-replica-count) need_value "$@"; STARTING_REPLICAS=$2; shift ;;
      --instances) need_value "$@"; INSTANCES=$2; shift ;;
      --output-uri) need_value "$@"; OUTPUT_URI=$2; shift ;;
      --job-name) need_value "$@"; JOB_NAME=$2; shift ;;
      --output) need_value "$@"; OUTPUT=$2; shift ;;
      -*) usage_error "unknown option '$1' (trainer.instances arguments go after --)" ;;
      *)
        [ -z "$SUBCOMMAND" ] || usage_error "unexpected argument '$1' (trainer.instances arguments go after --)"
        SUBCOMMAND=$1 ;;
    esac
    shift
  done
  case "$SUBCOMMAND" in
    upload | deploy | predict | batch-predict) ;;
    "") usage_error "missing subcommand: upload, deploy, predict or batch-predict" ;;
    *) usage_error "unknown subcommand '$SUBCOMMAND' (expected upload, deploy, predict or batch-predict)" ;;
  esac
  if [ "${#INSTANCES_ARGS[@]}" -gt 0 ] && [ "$SUBCOMMAND" != predict ]; then
    usage_error "arguments after -- go to trainer.instances, which only predict runs"
  fi
}

# The rules of the API for resource ids (UploadModelRequest.model_id, CreateEndpointRequest.endpoint_id).
check_model_id() {
  [ -n "$MODEL_ID" ] || usage_error "$SUBCOMMAND needs --model-id, the model's id in the Model Registry (upload prints it)"
  [[ "$MODEL_ID" =~ ^[a-z][a-z0-9_-]{0,62}$ ]] ||
    usage_error "--model-id must be a lowercase letter, then up to 62 lowercase letters, digits, _ or -, got '$MODEL_ID'"
}

check_endpoint_id() {
  [[ "$ENDPOINT_ID" =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    usage_error "--endpoint-id must be a lowercase letter, then up to 62 lowercase letters, digits or -, not ending in -, got '$ENDPOINT_ID'"
}

check_count() {  # NAME VALUE: a whole number >= 1
  [[ "$2" =~ ^[1-9][0-9]{0,3}$ ]] || usage_error "$1 must be a whole number from 1, got '$2'"
}

check_replicas() {  # FLAG VALUE: the lowest replica count, at most --max-replica-count
  check_count "$1" "$2"
  check_count --max-replica-count "$MAX_REPLICAS"
  [ "$MAX_REPLICAS" -ge "$2" ] || usage_error "--max-replica-count $MAX_REPLICAS is below $1 $2"
}

check_machine_type() {
  [[ "$MACHINE_TYPE" =~ ^[a-z0-9-]+$ ]] || usage_error "--machine-type is not a machine type: '$MACHINE_TYPE'"
}

# gs://BUCKET/PATH without a trailing slash, for the flag $1.
check_gcs_uri() {
  case "$2" in
    gs://?*) ;;
    *) usage_error "$1 must be on Cloud Storage (gs://BUCKET/...), got '$2'" ;;
  esac
  case "$2" in
    *[[:cntrl:]\"\\]*) usage_error "$1 holds a quote, a backslash or a control character: '$2'" ;;
  esac
}

# The image nearest the region: europe-* from europe-docker, asia-* and australia-* from asia-docker.
default_serving_image() {
  case "$REGION" in
    europe-*) printf 'europe-%s' "$SERVING_IMAGE_PATH" ;;
    asia-* | australia-*) printf 'asia-%s' "$SERVING_IMAGE_PATH" ;;
    *) printf 'us-%s' "$SERVING_IMAGE_PATH" ;;
  esac
}

# upload's default model id: lstm-forecast-<the folder's name>, lowercased, other characters as -.
# A folder named model is a Vertex AI job's AIP_MODEL_DIR (gs://B/JOB/model, or
# gs://B/JOB/TRIAL/model in a tuning job), whose name every job shares: the job's name (and
# the trial's id) stand for it.
default_model_id() {
  local path=${MODEL_DIR%/} name
  name=$(basename "$path")
  if [ "$name" = model ]; then
    path=$(dirname "$path")
    name=$(basename "$path")
    if [[ "$name" =~ ^[0-9]+$ ]]; then
      name="$(basename "$(dirname "$path")")-$name"
    fi
  fi
  name=$(printf '%s\n' "$name" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_\n-' '-')
  printf 'lstm-forecast-%s' "${name:0:48}"
}

# `run_or_print` for a command whose standard output goes to the file $1.
run_or_print_to() {
  local file=$1
  shift
  if [ "$DRY_RUN" = 1 ]; then
    printf '%s > %q\n' "$(shell_join "$@")" "$file"
  else
    printf '+ %s > %q\n' "$(shell_join "$@")" "$file" >&2
    "$@" >"$file"
  fi
}

# A curl command with AUTH_HEADER_PLACEHOLDER as one word: printed with AUTH_HEADER_SHELL in
# its place; run with a fresh access token there. Sets HTTP_STATUS (curl's --write-out).
run_or_print_rest() {
  local word printed="" token
  local words=()
  for word in "$@"; do
    if [ "$word" = "$AUTH_HEADER_PLACEHOLDER" ]; then
      printed="$printed $AUTH_HEADER_SHELL"
    else
      printed="$printed $(printf '%q' "$word")"
    fi
  done
  printed=${printed# }
  if [ "$DRY_RUN" = 1 ]; then
    printf '%s\n' "$printed"
    return 0
  fi
  printf '+ %s\n' "$printed" >&2
  token=$(gcloud auth print-access-token) ||
    fail "gcloud auth print-access-token failed; run 'gcloud auth login' first"
  for word in "$@"; do
    if [ "$word" = "$AUTH_HEADER_PLACEHOLDER" ]; then
      words+=("Authorization: Bearer $token")
    else
      words+=("$word")
    fi
  done
  HTTP_STATUS=$("${words[@]}") || fail "curl could not reach the Vertex AI API (see above)"
}

# A JSON string of text that has no control characters (check_gcs_uri and the id rules keep
# them out): backslashes and quotes escaped.
json_string() {
  local text=${1//\\/\\\\}
  printf '"%s"' "${text//\"/\\\"}"
}

# The BatchPredictionJob of `batch-predict`, as the REST API takes it, to the file $1.
write_batch_prediction_job() {
  local uri uris="" old_ifs=$IFS
  IFS=,
  for uri in $INSTANCES; do
    uri=${uri# }
    [ -n "$uri" ] || continue
    check_gcs_uri --instances "$uri"
    uris="$uris${uris:+, }$(json_string "$uri")"
  done
  IFS=$old_ifs
  [ -n "$uris" ] || usage_error "batch-predict needs --instances, JSONL files on gs:// (python -m trainer.instances --format jsonl)"
  cat >"$1" <<EOF
{
  "displayName": $(json_string "$JOB_NAME"),
  "model": $(json_string "projects/$PROJECT/locations/$REGION/models/$MODEL_ID"),
  "inputConfig": {
    "instancesFormat": "jsonl",
    "gcsSource": {"uris": [$uris]}
  },
  "outputConfig": {
    "predictionsFormat": "jsonl",
    "gcsDestination": {"outputUriPrefix": $(json_string "$OUTPUT_URI")}
  },
  "dedicatedResources": {
    "machineSpec": {"machineType": $(json_string "$MACHINE_TYPE")},
    "startingReplicaCount": $STARTING_REPLICAS,
    "maxReplicaCount": $MAX_REPLICAS
  }
}
EOF
}

# predict: the trainer.instances arguments may not set what this script sets.
reject_instances_flags() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --model_dir | --model_dir=* | --output | --output=* | --response | --response=* | --format | --format=*)
        usage_error "trainer.instances argument ${arg%%=*} is set by this script (--model-dir, --output); leave it out" ;;
    esac
  done
}

parse_args "$@"
[ "$DRY_RUN" = 1 ] || require_gcloud
resolve_project
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || usage_error "--region is not a Vertex AI region: '$REGION'"
LOCATION="projects/$PROJECT/locations/$REGION"

case "$SUBCOMMAND" in
  upload)
    [ -n "$MODEL_DIR" ] || usage_error "upload needs --model-dir, the SavedModel directory on gs://" \
      "(export/best/<timestamp> of a run, or gs://BUCKET/JOB/model of a Vertex AI job)"
    check_gcs_uri --model-dir "$MODEL_DIR"
    MODEL_DIR=${MODEL_DIR%/}
    MODEL_ID="${MODEL_ID:-$(default_model_id)}"
    check_model_id
    SERVING_IMAGE="${SERVING_IMAGE:-$(default_serving_image)}"
    [[ "$SERVING_IMAGE" =~ ^[A-Za-z0-9._/:@-]+$ ]] || usage_error "--serving-image is not an image URI: '$SERVING_IMAGE'"
    run_or_print gcloud ai models upload --project="$PROJECT" --region="$REGION" \
      --model-id="$MODEL_ID" --display-name="${DISPLAY_NAME:-$MODEL_ID}" \
      --container-image-uri="$SERVING_IMAGE" --artifact-uri="$MODEL_DIR"
    ;;
  deploy)
    check_model_id
    check_endpoint_id
    check_machine_type
    check_replicas --min-replica-count "$MIN_REPLICAS"
    if [ "$EXISTING_ENDPOINT" != 1 ]; then
      run_or_print gcloud ai endpoints create --project="$PROJECT" --region="$REGION" \
        --endpoint-id="$ENDPOINT_ID" --display-name="$ENDPOINT_ID"
    fi
    # --traffic-split 0=100: all traffic to the model this command deploys (gcloud's "0").
    run_or_print gcloud ai endpoints deploy-model "$ENDPOINT_ID" --project="$PROJECT" \
      --region="$REGION" --model="$MODEL_ID" --display-name="$MODEL_ID" \
      --machine-type="$MACHINE_TYPE" --min-replica-count="$MIN_REPLICAS" \
      --max-replica-count="$MAX_REPLICAS" --traffic-split=0=100
    ;;
  predict)
    check_endpoint_id
    [ -n "$MODEL_DIR" ] || usage_error "predict needs --model-dir, the deployed SavedModel (local or gs://), to size the request"
    [ -n "$OUTPUT" ] || usage_error "predict needs --output, the forecast CSV to write"
    [ "${#INSTANCES_ARGS[@]}" -gt 0 ] ||
      usage_error "predict needs the series or rows after --, e.g. -- --series daily_sales.csv --target store_a"
    reject_instances_flags "${INSTANCES_ARGS[@]}"
    reject_control_characters "${INSTANCES_ARGS[@]}"
    if [ -z "${TRAINER_PYTHON:-}" ]; then
      TRAINER_PYTHON=python3
      [ -x "$REPO_ROOT/.venv/bin/python" ] && TRAINER_PYTHON="$REPO_ROOT/.venv/bin/python"
    fi
    make_work_dir deploy_vertex
    REQUEST="$WORK_DIR/request.json"
    RESPONSE="$WORK_DIR/response.json"
    if [ "$DRY_RUN" = 1 ]; then
      printf '%s: dry run: the commands write the request and the response in %s (kept)\n' \
        "$PROG" "$WORK_DIR" >&2
    fi
    run_or_print "$TRAINER_PYTHON" -m trainer.instances --model_dir "$MODEL_DIR" \
      "${INSTANCES_ARGS[@]}" --output "$REQUEST"
    run_or_print_to "$RESPONSE" gcloud ai endpoints predict "$ENDPOINT_ID" --project="$PROJECT" \
      --region="$REGION" --json-request="$REQUEST" --format=json
    run_or_print "$TRAINER_PYTHON" -m trainer.instances --model_dir "$MODEL_DIR" \
      "${INSTANCES_ARGS[@]}" --response "$RESPONSE" --output "$OUTPUT"
    ;;
  batch-predict)
    check_model_id
    check_machine_type
    check_replicas --starting-replica-count "$STARTING_REPLICAS"
    [ -n "$OUTPUT_URI" ] || usage_error "batch-predict needs --output-uri, a gs:// prefix for the prediction files"
    check_gcs_uri --output-uri "$OUTPUT_URI"
    JOB_NAME="${JOB_NAME:-lstm_forecast_batch_$(date -u +%Y%m%d_%H%M%S)}"
    [[ "$JOB_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ ]] ||
      usage_error "--job-name must be up to 128 letters, digits, _, . or -, got '$JOB_NAME'"
    make_work_dir deploy_vertex
    BODY="$WORK_DIR/batch_prediction_job.json"
    ANSWER="$WORK_DIR/batch_prediction_job.response.json"
    write_batch_prediction_job "$BODY"
    note_generated "$BODY"
    HTTP_STATUS=""
    run_or_print_rest curl --silent --show-error --request POST \
      --header "$AUTH_HEADER_PLACEHOLDER" --header "Content-Type: application/json; charset=utf-8" \
      --data-binary "@$BODY" --output "$ANSWER" --write-out '%{http_code}' \
      "https://$REGION-aiplatform.googleapis.com/v1/$LOCATION/batchPredictionJobs"
    if [ "$DRY_RUN" != 1 ]; then
      [ "$HTTP_STATUS" = 200 ] ||
        fail "the Vertex AI API answered HTTP $HTTP_STATUS: $(cat "$ANSWER" 2>/dev/null || true)"
      grep -m 1 '"name"' "$ANSWER" >&2 || true
      printf '%s: batch prediction job created; predictions go under %s\n' "$PROG" "$OUTPUT_URI" >&2
    fi
    ;;
esac
