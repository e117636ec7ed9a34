# shellcheck shell=bash
# Sourced by submit_vertex.sh and submit_aiplatform.sh: errors, printing or running a
# command, and the defaults both share (project, bucket, image, job name).
# The caller sets PROG (the name in messages) and DRY_RUN (1: print, do not run).
# Functions that can fail set globals instead of printing, so that they never run in a
# $(...) subshell where their `exit` would not stop the script.
# Avoids bash 4 features (mapfile, associative arrays) and guards empty arrays under
# set -u, for macOS's bash 3.2.

# shellcheck disable=SC2034  # used by the scripts that source this file
DEFAULT_REGION="us-central1"
DEFAULT_IMAGE_NAME="lstm-forecast-trainer"
# Dry runs need no gcloud and no project: these stand in for what was not given.
PLACEHOLDER_PROJECT="my-project"
PLACEHOLDER_BUCKET="gs://my-bucket"

# A bad or missing argument: say what was wrong and how to get help, exit 2.
usage_error() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  printf "Run '%s --help' for usage.\n" "$PROG" >&2
  exit 2
}

# Anything else that stops the submission (no gcloud, a broken template): exit 1.
fail() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

# Parse the arguments both submit scripts take into globals: SUBCOMMAND (one of
# $ALLOWED_SUBCOMMANDS, by default train and tune),
# DRY_RUN, BUILD, PROJECT, REGION, IMAGE, BUCKET, JOB_NAME, TRAINER_ARGS (after --), and
# MACHINE_TYPE when the caller sets ACCEPTS_MACHINE_TYPE=1. The caller defines usage().
parse_submit_args() {
  DRY_RUN=0
  BUILD=0
  SUBCOMMAND=""
  PROJECT="${PROJECT:-}"
  REGION="${REGION:-$DEFAULT_REGION}"
  IMAGE="${IMAGE_URI:-}"
  BUCKET="${BUCKET:-}"
  JOB_NAME="${JOB_NAME:-}"
  TRAINER_ARGS=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --) shift; TRAINER_ARGS=("$@"); break ;;
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;  # --opt=value -> --opt value
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      --build) BUILD=1 ;;
      --project) need_value "$@"; PROJECT=$2; shift ;;
      --region) need_value "$@"; REGION=$2; shift ;;
      --image) need_value "$@"; IMAGE=$2; shift ;;
      --bucket) need_value "$@"; BUCKET=$2; shift ;;
      --job-name) need_value "$@"; JOB_NAME=$2; shift ;;
      --machine-type)
        [ "${ACCEPTS_MACHINE_TYPE:-0}" = 1 ] || usage_error "unknown option '$1' (machine types are in config.yaml)"
        need_value "$@"; MACHINE_TYPE=$2; shift ;;
      -*) usage_error "unknown option '$1' (trainer arguments go after --)" ;;
      *)
        [ -z "$SUBCOMMAND" ] || usage_error "unexpected argument '$1' (trainer arguments go after --)"
        SUBCOMMAND=$1 ;;
    esac
    shift
  done
  local allowed="${ALLOWED_SUBCOMMANDS:-train tune}"
  [ -n "$SUBCOMMAND" ] || usage_error "missing subcommand: ${allowed// / or }"
  case " $allowed " in
    *" $SUBCOMMAND "*) ;;
    *) usage_error "unknown subcommand '$SUBCOMMAND' (expected ${allowed// / or })" ;;
  esac
}

# Called as `need_value "$@"` on an option that takes a value: $2 must be one.
need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    usage_error "$1 needs a value"
  fi
  case "$2" in
    -*) usage_error "$1 needs a value, got the option '$2'" ;;
  esac
}

# The command as one line that a shell reads back as the same words (printf %q).
shell_join() {
  local joined
  printf -v joined '%q ' "$@"
  printf '%s\n' "${joined% }"
}

# Dry run: print the command on stdout. Otherwise: echo it on stderr, then run it.
run_or_print() {
  if [ "$DRY_RUN" = 1 ]; then
    shell_join "$@"
  else
    printf '+ %s\n' "$(shell_join "$@")" >&2
    "$@"
  fi
}

require_gcloud() {
  command -v gcloud >/dev/null 2>&1 ||
    fail "gcloud not found on PATH; install the Google Cloud CLI" \
         "(https://cloud.google.com/sdk/docs/install) or use --dry-run to see the commands"
}

# PROJECT: as given, else gcloud's default project (real runs), else a placeholder (dry runs).
resolve_project() {
  if [ -z "$PROJECT" ] && [ "$DRY_RUN" != 1 ]; then
    PROJECT=$(gcloud config get-value project 2>/dev/null || true)
    [ "$PROJECT" = "(unset)" ] && PROJECT=""
    [ -n "$PROJECT" ] ||
      usage_error "no project: pass --project P, set PROJECT, or run 'gcloud config set project P'"
  fi
  PROJECT="${PROJECT:-$PLACEHOLDER_PROJECT}"
}

# BUCKET: gs://NAME[/PREFIX] without a trailing slash; required for real runs.
resolve_bucket() {
  local given="$BUCKET"
  if [ -z "$BUCKET" ]; then
    [ "$DRY_RUN" = 1 ] || usage_error "no bucket: pass --bucket gs://BUCKET or set BUCKET"
    BUCKET="$PLACEHOLDER_BUCKET"
  fi
  while [ "${BUCKET%/}" != "$BUCKET" ]; do BUCKET="${BUCKET%/}"; done
  case "$BUCKET" in
    gs://?*) ;;
    *) usage_error "--bucket must look like gs://BUCKET, got '$given'" ;;
  esac
}

# IMAGE: as given, else the project's Container Registry path (call after resolve_project).
resolve_image() {
  IMAGE="${IMAGE:-gcr.io/$PROJECT/$DEFAULT_IMAGE_NAME:latest}"
}

# A job name unique to the second: lstm_forecast_20240131_235959.
default_job_name() {
  printf 'lstm_forecast_%s' "$(date -u +%Y%m%d_%H%M%S)"
}

# The script sets the output location itself (gs://BUCKET/JOB: --job-dir of a legacy job, the
# baseOutputDirectory of a Vertex AI job), so a trainer flag that sets it too would silently
# fight with it (on Vertex AI, the run directory would leave the job's folders while the model
# and the events stayed in them).
reject_output_flags() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --output_dir | --output_dir=* | --job-dir | --job-dir=* | --job_dir | --job_dir=*)
        usage_error "trainer argument ${arg%%=*} is set by this script (gs://BUCKET/JOB from" \
                    "--bucket and --job-name); leave it out" ;;
    esac
  done
}

# The job runs in the cloud, which reads no path of this machine: the data flags of the trainer
# (and of the search, python -m trainer.auto) must name Cloud Storage. Each comma-separated
# pattern of --train_data_paths/--eval_data_paths counts; an empty value is left to the checks
# that word it.
reject_local_data_flags() {
  local arg flag="" value pattern patterns
  for arg in "$@"; do
    if [ -n "$flag" ]; then
      value="$arg"
    else
      case "$arg" in
        --data_dir=* | --train_data_paths=* | --eval_data_paths=* | --stats_file=*)
          flag="${arg%%=*}" value="${arg#*=}" ;;
        --data_dir | --train_data_paths | --eval_data_paths | --stats_file)
          flag="$arg"; continue ;;
        *) continue ;;
      esac
    fi
    IFS=, read -r -a patterns <<<"$value"
    for pattern in ${patterns[@]+"${patterns[@]}"}; do
      pattern="${pattern#"${pattern%%[![:space:]]*}"}"
      case "$pattern" in
        gs://* | "") ;;
        *) usage_error "$flag $pattern is not in Cloud Storage, where the job could read it:" \
                       "prepare into gs://BUCKET/... or upload it (forecast storage upload)" ;;
      esac
    done
    flag=""
  done
}

# Newlines and other control characters fit neither a YAML single-quoted scalar nor a
# gcloud list, and no trainer flag needs one.
reject_control_characters() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      *[[:cntrl:]]*) usage_error "trainer argument contains a control character (newline, tab...): $(shell_join "$arg")" ;;
    esac
  done
}

# A YAML single-quoted scalar: it's -> 'it''s' (the only escape single quotes have).
yaml_quote() {
  local quote="'" doubled="''"
  printf "'%s'" "${1//$quote/$doubled}"
}

# WORK_DIR: a temporary directory for generated configs. Real runs delete it on exit;
# dry runs keep it, since the printed command names a file in it (see note_generated).
make_work_dir() {
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || fail "cannot create a temporary directory"
  if [ "$DRY_RUN" != 1 ]; then
    trap 'rm -rf "$WORK_DIR"' EXIT
  fi
}

# Dry runs say where the generated config named by the printed command is (on stderr,
# so that stdout holds only commands).
note_generated() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%s: dry run: generated %s (kept for the printed command)\n' "$PROG" "$1" >&2
  fi
}
