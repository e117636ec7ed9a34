# shellcheck shell=bash
# Sourced by the other scripts: make .venv (Python 3.9-3.11) and install the package into it.
# Usage: ensure_venv [EXTRAS]   e.g. ensure_venv test  ->  pip install -e ".[test]"
# Reinstalls only when setup.py or the extras change. PYTHON=/path/to/python picks the interpreter.

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

ensure_venv() {
  local extras="${1:-}" spec="." python stamp
  [ -n "$extras" ] && spec=".[$extras]"
  if [ ! -x .venv/bin/python ]; then
    python=$(find_python) || return 1
    echo "creating .venv with $python" >&2
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
  fi
  stamp=".venv/.installed-$(cat setup.py | cksum | cut -d' ' -f1)-${extras:-none}"
  if [ ! -f "$stamp" ]; then
    echo "installing $spec into .venv (first run: TensorFlow is a large download)" >&2
    .venv/bin/python -m pip install --quiet -e "$spec" >&2
    touch "$stamp"
    echo "installed. For the commands in a shell: source .venv/bin/activate (then: forecast --help)" >&2
  fi
}
