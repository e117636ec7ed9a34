"""The `forecast` command (trainer/__main__.py): one table of subcommands, each the module's own
main, and a --help without empty defaults in every command."""

import argparse
import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from trainer.__main__ import SUBCOMMANDS, main


def command_modules():
    """Every module of trainer/ (not a package below it) that defines main()."""
    found = []
    for path in sorted((REPO_ROOT / "trainer").glob("*.py")):
        tree = ast.parse(path.read_text())
        if path.stem != "__main__" and any(isinstance(node, ast.FunctionDef) and node.name == "main"
                                           for node in tree.body):
            found.append(f"trainer.{path.stem}")
    return found


def test_every_command_module_has_a_subcommand():
    assert sorted(module for module, _ in SUBCOMMANDS.values()) == sorted(command_modules())
    assert {"prepare", "train", "evaluate", "predict", "cluster"} <= set(SUBCOMMANDS)


def test_setup_installs_the_forecast_console_script_and_keeps_the_old_one():
    setup = (REPO_ROOT / "setup.py").read_text()
    assert '"forecast=trainer.__main__:main"' in setup
    assert '"lstm-forecast-train=trainer.task:main"' in setup


def test_python_m_trainer_runs_the_subcommand_with_its_flags(tmp_path):
    """The same command line as `python -m trainer.prepare`, as a user types it."""
    raw = tmp_path / "raw.csv"
    raw.write_text("timestamp,value\n" + "".join(f"{t},{t % 5}.5\n" for t in range(60)))
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "prepare", "--input", str(raw), "--output_dir",
         str(tmp_path / "prepared"), "--n_inputs", "6", "--n_outputs", "2", "--shards", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "windows: train 41  valid 5  test 5  (1 series, 60 points, 0 rows dropped)" in result.stdout
    assert (tmp_path / "prepared" / "series-00000-of-00001.csv").is_file()


def test_forecast_without_a_subcommand_lists_them(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (module, note) in SUBCOMMANDS.items():
        assert f"{name}" in out and note in out and f"python -m {module}" in out
    assert main([]) == 2
    assert "usage: forecast SUBCOMMAND" in capsys.readouterr().err
    assert main(["fit"]) == 2
    assert "error: no subcommand 'fit'; choose one of prepare, train, evaluate" in capsys.readouterr().err


HELP_COMMANDS = [[name] for name in SUBCOMMANDS] + [["storage", "upload"]]


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=" ".join)
def test_help_shows_no_empty_default_and_every_flag_has_a_help_text(argv, capsys, monkeypatch):
    seen = []
    original = argparse.ArgumentParser.parse_known_args

    def record(parser, args=None, namespace=None):  # the parsers the command really builds
        seen.append(parser)
        return original(parser, args, namespace)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", record)
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m trainer.")
    assert "(default: )" not in out and "(default: None)" not in out, out
    actions = [action for parser in seen for action in parser._actions
               if action.option_strings and action.dest != "help"]
    assert actions or argv == ["storage"]
    assert [a.option_strings for a in actions if not a.help] == []
    # A default worth showing is still shown.
    if argv == ["train"]:
        assert "(default: 6000)" in out and "(default: window_zscore)" in out
