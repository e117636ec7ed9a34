#!/usr/bin/env bash
# Train as a cluster on this machine: chief, workers, parameter servers and an evaluator on
# 127.0.0.1, each `python -m trainer.task` with its own TF_CONFIG (set-up included).
#   ./scripts/train_local_distributed.sh                       # 2 workers, 1 ps, 1 evaluator
#   ./scripts/train_local_distributed.sh --workers 3 --no-evaluator -- --train_steps 3000
# Options before `--` go to the launcher (see --help); after `--`, to every trainer process.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv
exec .venv/bin/python -m trainer.local_cluster "$@"
