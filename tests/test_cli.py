"""The command-line kit: flag types, help from a registry, and one exit-code rule for every command."""

import argparse
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from trainer import evaluate, instances, predict, prepare, task
from trainer.util.cli import choices_help, float_above, int_at_least, split_patterns


def test_split_patterns():
    assert split_patterns(" a*.csv, gs://b/c*,, ") == ["a*.csv", "gs://b/c*"]


def test_flag_types_accept_what_tuning_services_send_and_name_what_they_refuse():
    assert int_at_least(1)("128.0") == 128
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer >= 1, got '0'"):
        int_at_least(1)("0")
    assert float_above(0.0, inclusive=True)("0") == 0.0
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a number > 0.0, got 'inf'"):
        float_above(0.0)("inf")


def test_choices_help_names_every_choice_with_its_note():
    assert choices_help({"a": "first"}) == "a (first)"
    assert choices_help({"a": "", "b": "second", "c": ""}) == "a, b (second) or c"


@pytest.mark.parametrize("command, argv, message", [
    (task, ["--train_data_paths", "t.csv"], "--train_data_paths was given but --eval_data_paths"),
    (prepare, ["--input", "s.csv"], "give --input (the raw series CSV) and --output_dir"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--valid_start", "2024-01-01"],
     "give both --valid_start and --test_start"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--valid_start", "5", "--test_start", "3"],
     "--test_start 3 is before --valid_start 5"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--valid_fraction", "0.5",
               "--test_fraction", "0.5"], "leave nothing to train on"),
    (evaluate, ["--model_dir", "m"], "give --data_dir (a prepared directory of series) or "
     "--data_paths (files of prepared rows)"),
    (evaluate, ["--model_dir", "m", "--data_paths", "r.csv", "--data_dir", "d", "--output", "o"],
     "give --data_dir (a prepared directory of series) or --data_paths"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--layout", "windows",
               "--past_covariates", "x"], "covariates need --layout series"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--past_covariates", "x",
               "--future_covariates", "x"], "column 'x' is given as a past and as a future covariate"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--valid_points", "5",
               "--valid_start", "2024-01-01", "--test_start", "2024-02-01"],
     "give --valid_points/--test_points (the last points of every series) or --valid_start"),
    (prepare, ["--input", "s.csv", "--output_dir", "o", "--stride", "2"],
     "--stride 2 cuts windows, which --layout series leaves to the trainer"),
    (predict, ["--model_dir", "m", "--series", "s.csv", "--rows", "r.csv", "--output", "f.csv"],
     "give exactly one of --series (a raw series CSV) and --rows"),
    (predict, ["--model_dir", "m", "--rows", "r.csv", "--output", "f.csv", "--backtest"],
     "--backtest works with --series"),
    (instances, ["--model_dir", "m", "--series", "s.csv"], "give --output, the request file"),
    (instances, ["--model_dir", "m", "--rows", "r.csv", "--output", "f.csv", "--response", "r.json",
                 "--format", "jsonl"], "--response reads an online prediction's answer"),
])
def test_flags_that_conflict_exit_2_in_every_command(capsys, command, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        command.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m trainer.") and message in err, err


def test_an_unquoted_pattern_that_the_shell_expanded_is_named_with_the_quoting_to_use(tmp_path):
    """As a user types it: bash expands prepared/test-*.csv into four words."""
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for index in range(4):
        (prepared / f"test-{index:05d}-of-00004.csv").write_text("1,2,3\n")
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m trainer.evaluate --model_dir m --data_paths "
         "prepared/test-*.csv"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert ("error: unrecognized arguments: prepared/test-00001-of-00004.csv "
            "prepared/test-00002-of-00004.csv prepared/test-00003-of-00004.csv. --data_paths got 4 "
            "files (prepared/test-00000-of-00004.csv, prepared/test-00001-of-00004.csv, ...): the "
            "shell expanded an unquoted pattern. Quote it, e.g. --data_paths "
            "'prepared/test-*-of-00004.csv', so that the command reads every file itself"
            ) in result.stderr, result.stderr


# A mistyped flag of each command and the flag meant, from the command's own parser.
TYPOS = {"prepare": ["--n_input", "28"], "train": ["--n_input", "28"],
         "evaluate": ["--model_di", "m"], "auto": ["--time_limt", "60"],
         "ensemble": ["--member", "r"], "refit": ["--run_di", "r"],
         "predict": ["--plot_counts", "3"], "instances": ["--model_dir", "m", "--fromat", "json"],
         "cluster": ["--worker", "2"], "storage": ["upload", "a.csv", "gs://b/", "--workrs", "2"]}
MEANT = {"prepare": "--n_inputs", "train": "--n_inputs", "evaluate": "--model_dir",
         "auto": "--time_limit", "ensemble": "--members", "refit": "--run_dir",
         "predict": "--plot_count", "instances": "--format", "cluster": "--workers",
         "storage": "--workers"}


@pytest.mark.parametrize("command", sorted(TYPOS))
def test_a_mistyped_flag_names_the_flag_meant_in_every_command(capsys, command):
    from trainer.__main__ import SUBCOMMANDS, main

    assert set(TYPOS) == set(SUBCOMMANDS)
    with pytest.raises(SystemExit) as exit_info:
        main([command, *TYPOS[command]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    typo = next(word for word in TYPOS[command] if word.startswith("--") and word != "--model_dir")
    assert f"error: unrecognized arguments: {typo} " in err, err
    assert f"(did you mean {MEANT[command]}?)" in err, err


def test_stray_words_that_are_no_files_keep_argparses_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--model_dir", "m", "--data_paths", "a.csv", "b.csv"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith("error: unrecognized arguments: b.csv"), err


LOG_LINES = """
import tensorflow as tf
from trainer.util.cli import setup_logging
setup_logging({verbosity!r})
tf.compat.v1.logging.info('Skip the current checkpoint eval due to throttle secs (30 secs).')
tf.compat.v1.logging.info('Saving checkpoints for 20 into model.ckpt.')
tf.compat.v1.logging.warning('From x.py: calling y (from tensorflow) is deprecated')
tf.compat.v1.logging.warning('a warning of TensorFlow')
"""


@pytest.mark.parametrize("verbosity", ["INFO", "WARNING", "DEBUG"])
def test_tensorflow_says_a_skipped_evaluation_and_its_warnings_but_not_its_chatter(verbosity):
    """The Estimator's INFO line for a checkpoint it does not evaluate (--eval_throttle_secs)
    is shown at INFO; its other INFO lines and its deprecation warnings only with DEBUG."""
    result = subprocess.run([sys.executable, "-c", LOG_LINES.format(verbosity=verbosity)],
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = {"INFO": ["Skip the current checkpoint eval", "a warning of TensorFlow"],
             "WARNING": ["a warning of TensorFlow"],
             "DEBUG": ["Skip the current checkpoint eval", "Saving checkpoints for 20",
                       "is deprecated", "a warning of TensorFlow"]}[verbosity]
    for line in ["Skip the current checkpoint eval", "Saving checkpoints for 20", "is deprecated",
                 "a warning of TensorFlow"]:
        assert (line in result.stderr) == (line in shown), (verbosity, line, result.stderr)
    if verbosity == "INFO":
        assert "INFO Skip the current checkpoint eval due to throttle secs (30 secs)." in result.stderr


def test_predict_keeps_an_existing_output_unless_overwrite(tmp_path, capsys):
    """As prepare refuses to replace its output, predict refuses before any work."""
    output = tmp_path / "forecast.csv"
    output.write_text("kept\n")
    flags = ["--model_dir", str(tmp_path / "no_model"), "--series", str(tmp_path / "raw.csv"),
             "--output", str(output)]
    assert predict.main(flags) == 1
    assert (f"error: --output {output} exists already; give another path or pass --overwrite to "
            "replace it") in capsys.readouterr().err
    assert output.read_text() == "kept\n"
    assert predict.main([*flags, "--overwrite"]) == 1  # on to the model, which is not there
    assert "holds no saved_model.pb" in capsys.readouterr().err
