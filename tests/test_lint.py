"""The code must stay valid on Python 3.9 (the cloud images run 3.10 and older)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def ruff_binary() -> str:
    beside_python = Path(sys.executable).parent / "ruff"
    found = str(beside_python) if beside_python.exists() else shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed: run ./scripts/test.sh, which installs the test extras")
    return found


def test_ruff_passes_with_python39_as_target():
    result = subprocess.run(
        [ruff_binary(), "check", "--target-version", "py39", "--output-format", "concise",
         "trainer", "benchmarks", "scripts", "tests", "setup.py"],
        cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_catches_syntax_newer_than_python39(tmp_path):
    """Guard for the check above: 3.10 syntax must fail under the py39 target."""
    sample = tmp_path / "newer.py"
    sample.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    result = subprocess.run([ruff_binary(), "check", "--target-version", "py39", "--isolated",
                             str(sample)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "match" in (result.stdout + result.stderr).lower()
