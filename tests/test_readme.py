"""The README and docs/ stay true: their commands, flag tables, layout and models match the code."""

import dataclasses
import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT
from tests.docs_pages import page, section
from trainer.training.config import build_parser

README = page("README.md")
FLAG_ROW = r"^\| `(--[a-z_]+)`[^|]*\| ([^|]+) \|"


def test_readme_shows_the_two_commands():
    assert "./scripts/train_local.sh" in README and "./scripts/test.sh" in README
    for script in ("scripts/train_local.sh", "scripts/test.sh"):
        assert (REPO_ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"


def test_readme_is_short():
    """The issue's limit: what it is, the two commands, where to start, the worked example and
    the contents; the manual is in docs/."""
    assert len(README.splitlines()) <= 300


def test_readme_flag_table_lists_every_flag_with_its_default():
    table = section("docs/flags.md", "## `python -m trainer.task`")
    rows = {m.group(1): m.group(2) for m in re.finditer(FLAG_ROW, table, re.MULTILINE)}
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        flag = action.option_strings[0]
        assert flag in rows, f"{flag} is missing from the flag table of docs/flags.md"
        shown = "(empty)" if action.default == "" else f"`{action.default}`"
        assert rows[flag] == shown, f"{flag}: README says {rows[flag]}, code says {shown}"


def test_readme_layout_matches_the_files():
    layout = section("docs/layout.md", "## Layout")
    named = {path for path in re.findall(r"`([\w./-]+)`", layout) if "/" in path or "." in path
             or path == "Dockerfile"}
    for path in named:
        assert (REPO_ROOT / path).exists(), f"README layout names {path}, which does not exist"
    for module in (REPO_ROOT / "trainer").rglob("*.py"):
        if module.name != "__init__.py":
            path = module.relative_to(REPO_ROOT).as_posix()
            assert path in named, f"{path} is not in the README layout"


@pytest.mark.parametrize("module", ["prepare", "evaluate", "predict", "instances"])
def test_readme_flag_tables_of_the_series_tools_list_every_flag(module):
    from importlib import import_module

    config_class = {"prepare": "PrepareConfig", "evaluate": "EvaluateConfig",
                    "predict": "PredictConfig", "instances": "InstancesConfig"}[module]
    fields = dataclasses.fields(getattr(import_module(f"trainer.{module}"), config_class))
    table = section("docs/flags.md", f"## `python -m trainer.{module}`")
    rows = {m.group(1): m.group(2) for m in re.finditer(FLAG_ROW, table, re.MULTILINE)}
    for field in fields:
        flag = "--" + field.name
        assert flag in rows, f"{flag} of trainer.{module} is missing from its README flag table"
        shown = "(empty)" if field.default in ("", None) else f"`{field.default}`"
        assert rows[flag] == shown, f"{flag}: README says {rows[flag]}, code says {shown}"
    assert len(rows) == len(fields)


def test_readme_models_table_is_the_network_registry():
    from trainer.model.networks import DEFAULT_NETWORK, NETWORKS

    models = section("docs/models.md", "## Models")
    rows = dict(re.findall(r"^\| `(\w+)`(?: \(default\))? \| (.+) \|$", models, re.MULTILINE))
    assert rows == {name: network.summary for name, network in NETWORKS.items()}
    assert f"| `{DEFAULT_NETWORK}` (default) |" in models


def test_what_the_worked_example_writes_in_a_clone_is_ignored_by_git():
    """A user runs the README's worked example (and the docs' blocks run beside it) in the
    clone: nothing they write shows up as untracked in `git status`."""
    from tests.test_first_hour import SECTION, fenced_blocks

    blocks = [fenced_blocks(SECTION, "bash")[0]] + [
        fenced_blocks(section(name, heading), "bash")[0] for name, heading in (
            ("docs/models.md", "### The linear models in closed form (`--solver closed_form`)"),
            ("docs/quantiles.md", "## Quantile forecasts and intervals"))]
    files = {path for block in blocks for path in re.findall(r'open\("([^"]+)", "w"\)', block)}
    files |= {path for block in blocks for path in re.findall(r"--(?:output|plot) (\S+)", block)}
    directories = {path for block in blocks for path in re.findall(r"--output_dir (\S+)", block)}
    assert {"daily_sales.csv", "forecast.csv", "forecast.png"} <= files
    assert {"prepared", "runs/store_a"} <= directories
    paths = sorted(files | {f"{directory}/prepare.json" for directory in directories})
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert sorted(result.stdout.split()) == paths, result.stderr
