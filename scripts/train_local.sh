#!/usr/bin/env bash
# Train on this machine: sets up .venv on first use (the package, with matplotlib for
# `forecast predict --plot`), then runs `python -m trainer.task`.
# With no arguments it trains on the built-in synthetic data into ./output.
# Any arguments go to the trainer:  ./scripts/train_local.sh --model gru --train_steps 2000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv plot  # with matplotlib: python -m trainer.predict --plot draws the forecast
exec .venv/bin/python -m trainer.task "$@"
