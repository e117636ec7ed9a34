#!/usr/bin/env bash
# Submit the trainer to Vertex AI, running the container image built from ./Dockerfile.
#
#   train  `gcloud ai custom-jobs create` with four worker pools, in the order Vertex AI
#          gives them their TF_CONFIG roles: 0 chief, 1 workers (2), 2 parameter server,
#          3 evaluator. Every replica runs `python -m trainer.task TRAINER_ARGS...`.
#          `--config FILE` adds what gcloud has no flag for: the CustomJobSpec's
#          baseOutputDirectory, gs://BUCKET/JOB (gcloud takes the spec from FILE, then
#          replaces its workerPoolSpecs with the --worker-pool-spec flags and their
#          containers' args with --args: ConstructCustomJobSpec in the Cloud SDK's
#          googlecloudsdk/command_lib/ai/custom_jobs/custom_jobs_util.py).
#   tune   `gcloud ai hp-tuning-jobs create --config FILE`, FILE being a copy of
#          scripts/vertex_hptuning.yaml with IMAGE_URI, MACHINE_TYPE, TRAINER_ARGS and
#          OUTPUT_URI_PREFIX (gs://BUCKET/JOB, the trials' baseOutputDirectory) filled in.
#   auto   the same command with a copy of scripts/vertex_auto.yaml: one trial per candidate
#          of the model search (`python -m trainer.auto --list_candidates` with the search
#          flags after --), each `python -m trainer.auto --candidate=NAME`; the summary then
#          gives the `forecast ensemble` command that builds the ensemble of the trials.
#
# From the base output directory Vertex AI sets AIP_MODEL_DIR, AIP_CHECKPOINT_DIR and
# AIP_TENSORBOARD_LOG_DIR, which the trainer follows (it gets no --output_dir): the best
# SavedModel in gs://BUCKET/JOB/model, the run directory in gs://BUCKET/JOB/checkpoints and
# TensorBoard events in gs://BUCKET/JOB/logs; a tuning job's trial ID in
# gs://BUCKET/JOB/ID/model and so on. The script ends by saying so (on stderr).
#
# --build first builds and pushes the image with Cloud Build (`gcloud builds submit`).
# --dry-run prints the commands instead, one per line and shell-quoted so that they can be
# pasted; it needs neither gcloud nor a project. Trainer arguments go after `--`.
#
#   ./scripts/submit_vertex.sh train --build --bucket gs://my-bucket -- --train_steps 20000
#   ./scripts/submit_vertex.sh tune --bucket gs://my-bucket --dry-run
set -euo pipefail

PROG=$(basename "$0")
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD
# shellcheck source=scripts/_cloud.sh
source scripts/_cloud.sh

TEMPLATE="$REPO_ROOT/scripts/vertex_hptuning.yaml"
AUTO_TEMPLATE="$REPO_ROOT/scripts/vertex_auto.yaml"
ALLOWED_SUBCOMMANDS="train tune auto"
# Replicas of the `train` cluster besides the chief.
WORKER_COUNT=2
PARAMETER_SERVER_COUNT=1
EVALUATOR_COUNT=1

usage() {
  cat <<EOF
Usage: $PROG train|tune|auto [OPTIONS] [-- TRAINER_ARGS...]

Submit the LSTM forecaster to Vertex AI as a custom container job.
  train   a custom job: chief, $WORKER_COUNT workers, $PARAMETER_SERVER_COUNT parameter server, $EVALUATOR_COUNT evaluator
  tune    a hyperparameter tuning job from scripts/vertex_hptuning.yaml (one machine per trial)
  auto    the model search as a tuning job (scripts/vertex_auto.yaml): one trial per candidate
          of python -m trainer.auto, whose flags go after -- (--data_dir gs://... and
          --look_backs needed); then forecast ensemble builds the ensemble of the trials

Options (default in brackets; an environment variable sets the default):
  --project P        Google Cloud project [\$PROJECT, else gcloud's default project]
  --region R         region [\$REGION, else $DEFAULT_REGION]
  --image URI        training image [\$IMAGE_URI, else gcr.io/PROJECT/$DEFAULT_IMAGE_NAME:latest]
  --bucket gs://B    where outputs go: gs://B/JOB, the job's base output directory
                     [\$BUCKET; required unless --dry-run]
  --job-name N       job display name and output folder: a letter, then letters, digits, _ or -
                     [\$JOB_NAME, else lstm_forecast_<UTC time>]
  --machine-type M   machine type of every replica [\$MACHINE_TYPE, else n1-standard-4]
  --build            first build and push the image: gcloud builds submit --tag IMAGE
  --dry-run          print the commands (shell-quoted, one per line) instead of running them
  -h, --help         show this help

Everything after -- goes to python -m trainer.task (see its --help; for auto, to
python -m trainer.auto), except --output_dir:
Vertex AI gives the trainer gs://B/JOB/model (the best SavedModel), gs://B/JOB/checkpoints
(the run directory) and gs://B/JOB/logs (TensorBoard), below gs://B/JOB/TRIAL/ for each
trial of a tuning job. Example:
  ./scripts/$PROG train --bucket gs://my-bucket -- --train_data_paths 'gs://my-bucket/data/train-*.csv' \\
      --eval_data_paths 'gs://my-bucket/data/eval-*.csv' --train_steps 20000
EOF
}

MACHINE_TYPE="${MACHINE_TYPE:-n1-standard-4}"
ACCEPTS_MACHINE_TYPE=1
parse_submit_args "$@"

[ "$DRY_RUN" = 1 ] || require_gcloud
resolve_project
resolve_bucket
resolve_image
JOB_NAME="${JOB_NAME:-$(default_job_name)}"
[[ "$JOB_NAME" =~ ^[A-Za-z][A-Za-z0-9_-]{0,127}$ ]] ||
  usage_error "--job-name must be a letter then up to 127 letters, digits, _ or -, got '$JOB_NAME'"
# Both end up inside gcloud's key=value,... worker pool specs, which cannot escape a comma.
[[ "$IMAGE" =~ ^[A-Za-z0-9._/:@-]+$ ]] || usage_error "--image is not an image URI: '$IMAGE'"
[[ "$MACHINE_TYPE" =~ ^[a-z0-9-]+$ ]] || usage_error "--machine-type is not a machine type: '$MACHINE_TYPE'"
# The bucket ends up in a YAML single-quoted scalar, which cannot hold one.
[[ "$BUCKET" != *[[:cntrl:]]* ]] || usage_error "--bucket contains a control character (newline, tab...)"
reject_output_flags ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}
reject_control_characters ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}
reject_local_data_flags ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}

# The job's baseOutputDirectory.
OUTPUT_DIR="$BUCKET/$JOB_NAME"
CONTAINER_ARGS=(${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"})

# One --worker-pool-spec value: REPLICAS machines of MACHINE_TYPE running IMAGE.
worker_pool_spec() {
  printf 'machine-type=%s,replica-count=%s,container-image-uri=%s' "$MACHINE_TYPE" "$1" "$IMAGE"
}

# ARGS_VALUE: CONTAINER_ARGS as one value of gcloud's comma-separated --args. When an
# argument holds a comma (a list of file patterns), the list uses gcloud's ^DELIM^
# escape with a delimiter that no argument contains (see `gcloud topic escaping`).
join_container_args() {
  local delimiter="," candidate arg joined=""
  ARGS_VALUE=""
  [ "${#CONTAINER_ARGS[@]}" -gt 0 ] || return 0
  for arg in "${CONTAINER_ARGS[@]}"; do
    # gcloud drops a trailing empty item, which would shift the trainer's flags.
    [ -n "$arg" ] || usage_error "a trainer argument is empty; gcloud --args cannot pass it"
    case "$arg" in *,*) delimiter="" ;; esac
  done
  if [ -z "$delimiter" ]; then
    for candidate in '@' '|' ';' '~' '%' '+'; do
      case "${CONTAINER_ARGS[*]}" in
        *"$candidate"*) ;;
        *) delimiter=$candidate; break ;;
      esac
    done
    [ -n "$delimiter" ] ||
      usage_error "the trainer arguments hold a comma and every delimiter gcloud could use instead (@|;~%+)"
    joined="^$delimiter^"
  fi
  for arg in "${CONTAINER_ARGS[@]}"; do
    joined="$joined$arg$delimiter"
  done
  ARGS_VALUE="${joined%"$delimiter"}"
}

# Copy the tuning template $1 to $2 with its placeholders filled in: IMAGE_URI, MACHINE_TYPE,
# the container args (TRAINER_ARGS, or SEARCH_ARGS in the search's template) and
# OUTPUT_URI_PREFIX once each; the search's CANDIDATES and TRIAL_COUNT (once, twice) from
# the CANDIDATES array. Fail if the template no longer has what it should.
fill_tuning_template() {
  local template=$1 line arg args_yaml="" values_yaml="" images=0 machines=0 arg_lists=0
  local prefixes=0 candidate_lists=0 counts=0
  for arg in ${CONTAINER_ARGS[@]+"${CONTAINER_ARGS[@]}"}; do
    args_yaml="$args_yaml${args_yaml:+, }$(yaml_quote "$arg")"
  done
  for arg in ${CANDIDATES[@]+"${CANDIDATES[@]}"}; do
    values_yaml="$values_yaml${values_yaml:+, }$(yaml_quote "$arg")"
  done
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      *"imageUri: IMAGE_URI"*)
        line="${line%%imageUri:*}imageUri: $(yaml_quote "$IMAGE")"; images=$((images + 1)) ;;
      *"machineType: MACHINE_TYPE"*)
        line="${line%%machineType:*}machineType: $MACHINE_TYPE"; machines=$((machines + 1)) ;;
      *"args: [TRAINER_ARGS]"* | *"args: [SEARCH_ARGS]"*)
        line="${line%%args:*}args: [$args_yaml]"; arg_lists=$((arg_lists + 1)) ;;
      *"outputUriPrefix: OUTPUT_URI_PREFIX"*)
        line="${line%%outputUriPrefix:*}outputUriPrefix: $(yaml_quote "$OUTPUT_DIR")"
        prefixes=$((prefixes + 1)) ;;
      *"values: [CANDIDATES]"*)
        line="${line%%values:*}values: [$values_yaml]"; candidate_lists=$((candidate_lists + 1)) ;;
      *": TRIAL_COUNT"*)
        line="${line%%TRIAL_COUNT*}${#CANDIDATES[@]}"; counts=$((counts + 1)) ;;
    esac
    printf '%s\n' "$line"
  done <"$template" >"$2"
  if [ "$images" != 1 ] || [ "$machines" != 1 ] || [ "$arg_lists" != 1 ] || [ "$prefixes" != 1 ]; then
    fail "$template must hold exactly one each of 'imageUri: IMAGE_URI'," \
         "'machineType: MACHINE_TYPE', 'args: [TRAINER_ARGS]' (or [SEARCH_ARGS]) and" \
         "'outputUriPrefix: OUTPUT_URI_PREFIX' (found $images, $machines, $arg_lists and $prefixes)"
  fi
  if [ "$SUBCOMMAND" = auto ] && { [ "$candidate_lists" != 1 ] || [ "$counts" != 2 ]; }; then
    fail "$template must hold one 'values: [CANDIDATES]' and two ': TRIAL_COUNT'" \
         "(found $candidate_lists and $counts)"
  fi
}

# The value of the search flag $1 among TRAINER_ARGS ("--flag VALUE" or "--flag=VALUE"), or
# nothing.
trainer_flag_value() {
  local arg take_next=0
  for arg in ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}; do
    if [ "$take_next" = 1 ]; then
      printf '%s\n' "$arg"
      return 0
    fi
    case "$arg" in
      "$1="*) printf '%s\n' "${arg#"$1"=}"; return 0 ;;
      "$1") take_next=1 ;;
    esac
  done
}

# CANDIDATES: the names of the search's candidates that train, from the package itself
# (python -m trainer.auto --list_candidates; PYTHON, else .venv/bin/python, else python3).
# The trials run in the cloud, so the data must be there: --data_dir gs://... (a local one is
# refused for every subcommand: reject_local_data_flags), and the look-backs given (the
# listing then reads no data).
list_search_candidates() {
  local python output
  [ -n "$(trainer_flag_value --data_dir)" ] ||
    usage_error "auto needs the search's --data_dir after --: a prepared directory in Cloud" \
                "Storage (forecast prepare --output_dir gs://BUCKET/prepared)"
  [ -n "$(trainer_flag_value --look_backs)" ] ||
    usage_error "auto needs --look_backs after -- (e.g. --look_backs 52,104): every trial and the" \
                "candidate list must agree on them"
  python="${PYTHON:-}"
  if [ -z "$python" ]; then
    if [ -x "$REPO_ROOT/.venv/bin/python" ]; then python="$REPO_ROOT/.venv/bin/python"; else python=python3; fi
  fi
  local log
  if ! output=$("$python" -m trainer.auto --list_candidates "${TRAINER_ARGS[@]}" 2>"$WORK_DIR/list.log"); then
    mapfile -t log <"$WORK_DIR/list.log"
    fail "python -m trainer.auto --list_candidates failed: ${log[${#log[@]}-1]:-no message}"
  fi
  mapfile -t CANDIDATES <<<"$output"
  [ "${#CANDIDATES[@]}" -gt 0 ] && [ -n "${CANDIDATES[0]}" ] || fail "the search lists no candidate"
}

# Write $1: the part of the custom job's CustomJobSpec that gcloud has no flag for.
write_custom_job_config() {
  cat >"$1" <<EOF
# A CustomJobSpec (aiplatform/v1) for gcloud ai custom-jobs create --config; the command's
# --worker-pool-spec and --args flags give the worker pools and their containers' args.
baseOutputDirectory:
  outputUriPrefix: $(yaml_quote "$OUTPUT_DIR")
EOF
}

# The trainer's --data_dir among TRAINER_ARGS (as "--data_dir DIR" or "--data_dir=DIR"), or
# PREPARED_DIR, a placeholder, when the job trains from --train_data_paths.
trainer_data_dir() {
  local value
  value="$(trainer_flag_value --data_dir)"
  printf '%s\n' "${value:-PREPARED_DIR}"
}

# Say where the job's outputs will be, the folders of Vertex AI's AIP_* variables, with the
# commands that read them (on stderr, so that a dry run's stdout holds only commands).
report_output_locations() {
  local base="$OUTPUT_DIR" heading="$PROG: job $JOB_NAME writes" data_dir
  data_dir="$(trainer_data_dir)"
  if [ "$SUBCOMMAND" != train ]; then
    base="$OUTPUT_DIR/TRIAL"
    heading="$PROG: job $JOB_NAME writes each trial below its id, TRIAL"
    heading="$heading (gcloud ai hp-tuning-jobs describe names the best trial)"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    heading="$heading, once submitted"
  fi
  cat >&2 <<EOF
$heading:
  $base/model        the best SavedModel (AIP_MODEL_DIR)
  $base/checkpoints  the run directory: checkpoints, metrics.json, export/ (AIP_CHECKPOINT_DIR)
  $base/logs         TensorBoard events (AIP_TENSORBOARD_LOG_DIR)
EOF
  if [ "$SUBCOMMAND" = auto ]; then
    cat >&2 <<EOF
When the trials are done, the ensemble of the ${#CANDIDATES[@]} candidates, for example:
  python -m trainer.ensemble --data_dir $data_dir --members '$OUTPUT_DIR/*/checkpoints' --output_dir $OUTPUT_DIR/ensemble
  python -m trainer.evaluate --model_dir $OUTPUT_DIR/ensemble --data_dir $data_dir --split test
  ./scripts/deploy_vertex.sh upload --model-dir <the SavedModel that trainer.ensemble names>
EOF
    return 0
  fi
  cat >&2 <<EOF
Then, for example:
  ./scripts/deploy_vertex.sh upload --model-dir $base/model
  python -m trainer.evaluate --model_dir $base/model --data_dir $data_dir --split test
  tensorboard --logdir $base/logs
EOF
}

if [ "$BUILD" = 1 ]; then
  run_or_print gcloud builds submit --project="$PROJECT" --tag="$IMAGE" "$REPO_ROOT"
fi

case "$SUBCOMMAND" in
  train)
    join_container_args
    make_work_dir submit_vertex
    CONFIG="$WORK_DIR/vertex_custom_job.yaml"
    write_custom_job_config "$CONFIG"
    note_generated "$CONFIG"
    run_or_print gcloud ai custom-jobs create \
      --project="$PROJECT" --region="$REGION" --display-name="$JOB_NAME" --config="$CONFIG" \
      --worker-pool-spec="$(worker_pool_spec 1)" \
      --worker-pool-spec="$(worker_pool_spec "$WORKER_COUNT")" \
      --worker-pool-spec="$(worker_pool_spec "$PARAMETER_SERVER_COUNT")" \
      --worker-pool-spec="$(worker_pool_spec "$EVALUATOR_COUNT")" \
      ${ARGS_VALUE:+"--args=$ARGS_VALUE"}
    ;;
  tune)
    make_work_dir submit_vertex
    CONFIG="$WORK_DIR/vertex_hptuning.yaml"
    fill_tuning_template "$TEMPLATE" "$CONFIG"
    note_generated "$CONFIG"
    run_or_print gcloud ai hp-tuning-jobs create \
      --project="$PROJECT" --region="$REGION" --display-name="$JOB_NAME" --config="$CONFIG"
    ;;
  auto)
    make_work_dir submit_vertex
    list_search_candidates
    CONFIG="$WORK_DIR/vertex_auto.yaml"
    fill_tuning_template "$AUTO_TEMPLATE" "$CONFIG"
    note_generated "$CONFIG"
    run_or_print gcloud ai hp-tuning-jobs create \
      --project="$PROJECT" --region="$REGION" --display-name="$JOB_NAME" --config="$CONFIG"
    ;;
esac
report_output_locations
