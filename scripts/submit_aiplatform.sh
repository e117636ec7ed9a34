#!/usr/bin/env bash
# Submit the trainer to legacy AI Platform Training, running the container image built
# from ./Dockerfile (the newest legacy runtime, 2.11 on Python 3.7, cannot install
# TensorFlow 2.15), with the cluster of ./config.yaml: chief, 2 workers, 1 parameter
# server, 1 evaluator.
#
#   tune   `gcloud ai-platform jobs submit training JOB --config config.yaml ...`: its
#          trainingInput.hyperparameters block makes the job a tuning job; trial N writes
#          to gs://BUCKET/JOB/trial_N.
#   train  the same with a copy of config.yaml without that block. The copy is cut as
#          text, not re-serialised: from the `hyperparameters:` line to the next line
#          indented no deeper than it, comments and blank lines inside included. This
#          needs no YAML library, keeps everything else byte for byte, and
#          tests/test_scripts.py checks that the copy parses to config.yaml minus the block.
#
# The job directory gs://BUCKET/JOB (--job-dir) also goes to the trainer as
# --output_dir, so that the output location never depends on whether the service passes
# --job-dir on to a custom container. Trainer arguments go after `--`.
# --build first builds and pushes the image with Cloud Build (`gcloud builds submit`).
# --dry-run prints the commands instead, one per line and shell-quoted so that they can be
# pasted; it needs neither gcloud nor a project.
#
#   ./scripts/submit_aiplatform.sh train --build --bucket gs://my-bucket -- --train_steps 20000
#   ./scripts/submit_aiplatform.sh tune --bucket gs://my-bucket --dry-run
set -euo pipefail

PROG=$(basename "$0")
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD
# shellcheck source=scripts/_cloud.sh
source scripts/_cloud.sh

JOB_CONFIG="$REPO_ROOT/config.yaml"

usage() {
  cat <<EOF
Usage: $PROG train|tune [OPTIONS] [-- TRAINER_ARGS...]

Submit the LSTM forecaster to legacy AI Platform Training as a custom container job
with the cluster of config.yaml (chief, 2 workers, 1 parameter server, 1 evaluator).
  train   a training job (config.yaml without its hyperparameters block)
  tune    a hyperparameter tuning job (config.yaml as is)

Options (default in brackets; an environment variable sets the default):
  --project P        Google Cloud project [\$PROJECT, else gcloud's default project]
  --region R         region [\$REGION, else $DEFAULT_REGION]
  --image URI        training image, in Container Registry
                     [\$IMAGE_URI, else gcr.io/PROJECT/$DEFAULT_IMAGE_NAME:latest]
  --bucket gs://B    job directory is gs://B/JOB [\$BUCKET; required unless --dry-run]
  --job-name N       job id and output folder: a letter, then letters, digits or _
                     [\$JOB_NAME, else lstm_forecast_<UTC time>]
  --build            first build and push the image: gcloud builds submit --tag IMAGE
  --dry-run          print the commands (shell-quoted, one per line) instead of running them
  -h, --help         show this help

Machine types and counts, and the tuned parameters, are in config.yaml. Everything after
-- goes to python -m trainer.task (see its --help); --job-dir and --output_dir are set
by this script.
Example:
  ./scripts/$PROG tune --bucket gs://my-bucket -- --train_data_paths 'gs://my-bucket/data/train-*.csv' \\
      --eval_data_paths 'gs://my-bucket/data/eval-*.csv' --train_steps 5000
EOF
}

parse_submit_args "$@"

[ "$DRY_RUN" = 1 ] || require_gcloud
resolve_project
resolve_bucket
resolve_image
JOB_NAME="${JOB_NAME:-$(default_job_name)}"
# The rule for legacy job ids.
[[ "$JOB_NAME" =~ ^[A-Za-z][A-Za-z0-9_]{0,127}$ ]] ||
  usage_error "--job-name must be a letter then up to 127 letters, digits or _, got '$JOB_NAME'"
reject_output_flags ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}
reject_local_data_flags ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}

# Copy config.yaml to $1 without the hyperparameters block (see the header).
strip_hyperparameters() {
  local line indent="" found=0
  while IFS= read -r line || [ -n "$line" ]; do
    if [ -n "$indent" ]; then
      # Inside the block: blank lines, comments and deeper-indented lines belong to it.
      if [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] || [[ "$line" == "$indent "* ]]; then
        continue
      fi
      indent=""
    fi
    if [[ "$line" =~ ^([[:space:]]+)hyperparameters:[[:space:]]*(#.*)?$ ]]; then
      indent=${BASH_REMATCH[1]}
      found=$((found + 1))
      continue
    fi
    printf '%s\n' "$line"
  done <"$JOB_CONFIG" >"$1"
  [ "$found" = 1 ] ||
    fail "$JOB_CONFIG must hold one indented 'hyperparameters:' block, found $found"
}

JOB_DIR="$BUCKET/$JOB_NAME"

if [ "$BUILD" = 1 ]; then
  run_or_print gcloud builds submit --project="$PROJECT" --tag="$IMAGE" "$REPO_ROOT"
fi

case "$SUBCOMMAND" in
  train)
    make_work_dir submit_aiplatform
    CONFIG="$WORK_DIR/config.yaml"
    strip_hyperparameters "$CONFIG"
    note_generated "$CONFIG"
    ;;
  tune)
    grep -Eq '^[[:space:]]+hyperparameters:' "$JOB_CONFIG" ||
      fail "$JOB_CONFIG has no hyperparameters block, so the job would not tune anything"
    CONFIG="$JOB_CONFIG"
    ;;
esac

SUBMIT=(gcloud ai-platform jobs submit training "$JOB_NAME"
  --project="$PROJECT" --region="$REGION" --job-dir="$JOB_DIR"
  --config="$CONFIG"
  # No --scale-tier: config.yaml says CUSTOM, and gcloud wants --master-machine-type and
  # the like on the command line when --scale-tier custom is. There is no
  # --evaluator-image-uri: the evaluator runs the master's image.
  --master-image-uri="$IMAGE" --worker-image-uri="$IMAGE" --parameter-server-image-uri="$IMAGE")
run_or_print "${SUBMIT[@]}" -- --output_dir "$JOB_DIR" ${TRAINER_ARGS[@]+"${TRAINER_ARGS[@]}"}
