"""Flag parsing and validation, and the saved-config rules for resuming."""

import dataclasses

import pytest

from trainer.config import (
    ARCHITECTURE_KEYS,
    MODELS,
    OPTIMIZERS,
    TrainerConfig,
    build_parser,
    check_resume_compatible,
    load_config_dict,
    make_config,
    parse_config,
    save_config,
    split_patterns,
)
from trainer.errors import ConfigError


def parse_error(capsys: pytest.CaptureFixture, argv) -> str:
    """Parse argv expecting argparse's exit 2; return what it printed to stderr."""
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_defaults_come_from_the_dataclass():
    config = parse_config([])
    assert config == TrainerConfig()
    assert (config.model, config.optimizer, config.hypertune_metric_tag) == ("lstm", "sgd", "rmse")
    assert config.overwrite is False
    assert config.uses_synthetic_data


def test_every_flag_has_help_text():
    parser = build_parser()
    flags = [action for action in parser._actions if action.dest != "help"]
    assert {action.dest for action in flags} == {f.name for f in dataclasses.fields(TrainerConfig)}
    for action in flags:
        assert action.help and len(action.help) > 10, action.dest


def test_values_are_typed():
    config = parse_config(["--train_steps", "12", "--learning_rate", "0.05", "--model", "gru",
                           "--optimizer", "adam", "--n_inputs", "9", "--n_outputs", "2"])
    assert config.train_steps == 12 and isinstance(config.train_steps, int)
    assert config.learning_rate == pytest.approx(0.05)
    assert (config.model, config.optimizer, config.n_inputs, config.n_outputs) == ("gru", "adam", 9, 2)


def test_integer_flags_accept_whole_floats_from_tuning_services():
    config = parse_config(["--batch_size", "128.0", "--hidden_units", "16"])
    assert (config.batch_size, config.hidden_units) == (128, 16)
    assert isinstance(config.batch_size, int)


def test_boolean_flags_switch_both_ways():
    assert parse_config(["--overwrite"]).overwrite is True
    assert parse_config(["--overwrite", "--no-overwrite"]).overwrite is False


@pytest.mark.parametrize("spelling", ["--output_dir", "--job-dir", "--job_dir"])
def test_job_dir_is_output_dir(spelling):
    assert parse_config([spelling, "gs://bucket/run"]).output_dir == "gs://bucket/run"


def test_all_models_and_optimizers_are_accepted():
    assert [parse_config(["--model", m]).model for m in MODELS] == list(MODELS)
    assert [parse_config(["--optimizer", o]).optimizer for o in OPTIMIZERS] == list(OPTIMIZERS)


@pytest.mark.parametrize("argv, expected", [
    (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
    (["--train_step", "5"], "unrecognized arguments: --train_step"),  # no abbreviations
    (["--model", "transformer"], "argument --model: invalid choice: 'transformer'"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
    (["--n_outputs", "0"], "argument --n_outputs: expected an integer >= 1, got '0'"),
    (["--n_inputs", "-3"], "argument --n_inputs: expected an integer >= 1, got '-3'"),
    (["--batch_size", "0"], "argument --batch_size: expected an integer >= 1, got '0'"),
    (["--batch_size", "-8"], "argument --batch_size: expected an integer >= 1, got '-8'"),
    (["--batch_size", "3.5"], "argument --batch_size: expected an integer >= 1, got '3.5'"),
    (["--batch_size", "inf"], "argument --batch_size: expected an integer >= 1, got 'inf'"),
    (["--batch_size", "many"], "argument --batch_size: expected an integer >= 1, got 'many'"),
    (["--learning_rate", "0"], "argument --learning_rate: expected a number > 0.0, got '0'"),
    (["--learning_rate", "-0.1"], "argument --learning_rate: expected a number > 0.0, got '-0.1'"),
    (["--learning_rate", "nan"], "argument --learning_rate: expected a number > 0.0, got 'nan'"),
    (["--learning_rate", "fast"], "argument --learning_rate: expected a number > 0.0, got 'fast'"),
    (["--train_steps", "0"], "argument --train_steps: expected an integer >= 1, got '0'"),
    (["--steps_per_run", "0"], "argument --steps_per_run: expected an integer >= 1, got '0'"),
    (["--clip_gradient_norm", "-1"], "argument --clip_gradient_norm: expected a number >= 0.0"),
    (["--train_data_paths", "a.csv"], "--train_data_paths was given but --eval_data_paths was not"),
    (["--eval_data_paths", "a.csv"], "--eval_data_paths was given but --train_data_paths was not"),
    (["--model", "cnn", "--n_inputs", "2"], "--model cnn needs --n_inputs >= 3"),
    (["--hypertune_metric_tag", " "], "--hypertune_metric_tag must not be empty"),
])
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, expected):
    assert expected in parse_error(capsys, argv)


def test_split_patterns():
    assert split_patterns(" a*.csv, gs://b/c*,, ") == ["a*.csv", "gs://b/c*"]


def test_saved_config_round_trips(tmp_path):
    config = make_config(model="gru", hidden_units=7, output_dir=str(tmp_path))
    path = save_config(config, str(tmp_path))
    assert path == f"{tmp_path}/config.json"
    assert load_config_dict(str(tmp_path)) == config.to_dict()
    assert load_config_dict(str(tmp_path / "missing")) is None


def test_resume_with_other_architecture_names_every_differing_key(tmp_path):
    saved = make_config(model="lstm", hidden_units=32, n_inputs=20, n_outputs=5).to_dict()
    check_resume_compatible(make_config(learning_rate=0.5, train_steps=10), saved, where="d")
    with pytest.raises(ConfigError) as error:
        check_resume_compatible(make_config(model="gru", hidden_units=16), saved, where="gs://b/r")
    message = str(error.value)
    assert "gs://b/r" in message
    assert "model: saved 'lstm', now 'gru'" in message
    assert "hidden_units: saved 32, now 16" in message
    assert "n_inputs" not in message and "--overwrite" in message
    assert set(ARCHITECTURE_KEYS) >= {"model", "hidden_units", "n_inputs", "n_outputs"}


def test_corrupt_saved_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json is not valid JSON"):
        load_config_dict(str(tmp_path))
