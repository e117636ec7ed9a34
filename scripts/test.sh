#!/usr/bin/env bash
# Run the test suite: sets up .venv (with the test extras) on first use, then pytest.
# Arguments go to pytest:  ./scripts/test.sh -m distributed   ./scripts/test.sh -k resume
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv test
exec .venv/bin/python -m pytest "$@"
