# shellcheck shell=bash
# Sourced by the other scripts: make .venv (Python 3.9-3.11) and install the package into it.
# Usage: ensure_venv [EXTRAS]   e.g. ensure_venv test  ->  pip install -e ".[test]"
# Reinstalls only when setup.py changes or the extras ask for more than an earlier install of
# it has (extras_cover). PYTHON=/path/to/python picks the interpreter.

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.10 python3.9 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: no Python 3.9, 3.10 or 3.11 found (TensorFlow 2.15 supports no other);" \
       "install one or set PYTHON=/path/to/python3.11" >&2
  return 1
}

# Whether an install with the extras $1 holds the packages of the extras $2 too (setup.py: the
# `test` extra has matplotlib, the `plot` extra; `bench` is empty; every install holds the
# package itself). So ./scripts/test.sh after ./scripts/train_local.sh installs only what
# testing adds, and ./scripts/train_local.sh after ./scripts/test.sh installs nothing.
extras_cover() {
  [ "$1" = "$2" ] && return 0
  case "$2" in none | bench) return 0 ;; esac
  [ "$1" = test ] && [ "$2" = plot ]
}

ensure_venv() {
  local extras="${1:-}" spec="." python sum stamp existing new_venv=0
  [ -n "$extras" ] && spec=".[$extras]"
  if [ ! -x .venv/bin/python ]; then
    python=$(find_python) || return 1
    echo "creating .venv with $python" >&2
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    new_venv=1
  fi
  sum="$(cat setup.py | cksum | cut -d' ' -f1)"
  stamp=".venv/.installed-$sum-${extras:-none}"
  for existing in .venv/.installed-"$sum"-*; do
    [ -f "$existing" ] && extras_cover "${existing##*-}" "${extras:-none}" && return 0
  done
  if [ "$new_venv" = 1 ]; then
    echo "installing $spec into .venv (first run: TensorFlow is a large download)" >&2
  else
    echo "installing $spec into .venv (setup.py changed, or these extras are new to it)" >&2
  fi
  .venv/bin/python -m pip install --quiet -e "$spec" >&2
  touch "$stamp"
  echo "installed. For the commands in a shell: source .venv/bin/activate (then: forecast --help)" >&2
}
