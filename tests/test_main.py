"""The `forecast` command (trainer/__main__.py): one table of subcommands, each the module's own
main, and a --help without empty defaults in every command."""

import argparse
import ast
import subprocess
import sys
from pathlib import Path

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
    assert main(["plot"]) == 2
    assert "error: no subcommand 'plot'; choose one of prepare, train, evaluate" in capsys.readouterr().err
    assert main(["trian"]) == 2
    assert "error: no subcommand 'trian' (did you mean train?)" in capsys.readouterr().err


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
    assert out.startswith(f"usage: python -m trainer {' '.join(argv)} "), out[:200]  # as it ran
    assert "(default: )" not in out and "(default: None)" not in out, out
    actions = [action for parser in seen for action in parser._actions
               if action.option_strings and action.dest != "help"]
    assert actions or argv == ["storage"]
    assert [a.option_strings for a in actions if not a.help] == []
    # A default worth showing is still shown.
    if argv == ["train"]:
        assert "(default: 6000)" in out and "(default: window_zscore)" in out


HELP_LOADS = """
import sys
from trainer.__main__ import main
for argv in {commands!r}:
    try:
        main([*argv, "--help"])
    except SystemExit as stop:
        assert stop.code == 0, (argv, stop.code)
print(sorted(name for name in ("tensorflow", "matplotlib") if name in sys.modules))
"""


def test_the_help_of_every_subcommand_loads_no_tensorflow():
    """`--help` builds every command's parser and prints it without importing TensorFlow, which
    takes seconds (a behaviour: how long --help takes is the benchmark's business, not a test's)."""
    result = subprocess.run([sys.executable, "-c", HELP_LOADS.format(commands=HELP_COMMANDS)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout[-500:]


def test_usage_names_the_command_as_it_was_run():
    def usage(*command):
        result = subprocess.run([*command, "--help"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.splitlines()[0]

    assert usage(sys.executable, "-m", "trainer", "prepare").startswith(
        "usage: python -m trainer prepare [-h]")
    assert usage(sys.executable, "-m", "trainer.prepare").startswith(
        "usage: python -m trainer.prepare [-h]")
    forecast = Path(sys.executable).parent / "forecast"  # the console script pip installed
    if forecast.exists():
        assert usage(str(forecast), "prepare").startswith("usage: forecast prepare [-h]")


def test_heads_name_tensorflows_losses_collection():
    import tensorflow as tf

    from trainer.model.heads import LOSSES_COLLECTION

    assert LOSSES_COLLECTION == tf.compat.v1.GraphKeys.LOSSES
