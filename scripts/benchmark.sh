#!/usr/bin/env bash
# Speed benchmark: sets up .venv (with the `bench` extra: pyarrow) on first use, generates its
# data once (benchmarks/data), then times the trainer's input pipeline and training beside
# their peers, and (section `series`, benchmarks/series.py) prepare's points/s and the series
# layout against window rows in bytes and training examples/s at 336 + 96; prints a table.
#   ./scripts/benchmark.sh                         # all sections, 5 recorded rounds
#   ./scripts/benchmark.sh --json bench.json -- --batch_size 512
#   ./scripts/benchmark.sh --only series --json benchmarks/series_results.json
#   ./scripts/benchmark.sh --only accuracy --data_root ../shared/data --output results.json
# (--only accuracy runs benchmarks/accuracy.py: models on the public data's protocols; its
# flags: ./scripts/benchmark.sh --only accuracy --help.)
# Benchmark flags: ./scripts/benchmark.sh --help; trainer flags go after --.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv bench
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ "${1:-}" = "--only" ] && [ "${2:-}" = "accuracy" ]; then
  shift 2
  exec .venv/bin/python -m benchmarks.accuracy "$@"
fi
exec .venv/bin/python -m benchmarks.run "$@"
