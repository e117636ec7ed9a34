"""Flag parsing and validation, and the saved-config rules for resuming."""

import dataclasses

import pytest

from trainer.model.networks import NETWORKS
from trainer.model.optimizers import OPTIMIZERS
from trainer.training.config import TrainerConfig, build_parser, parse_config


def parse_error(capsys: pytest.CaptureFixture, argv) -> str:
    """Parse argv expecting argparse's exit 2; return what it printed to stderr."""
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_defaults_come_from_the_dataclass():
    config = parse_config([])
    assert config == TrainerConfig()
    assert (config.model, config.optimizer, config.loss) == ("lstm", "sgd", "mse")
    # Chosen by a scale-free metric; the tuning service gets rmse, as the package was designed.
    assert config.monitored_metric == "mase"
    assert (config.hypertune_metric, config.metric_tag) == ("rmse", "rmse")
    assert (config.save_checkpoints_steps, config.eval_throttle_secs) == (0, 30)
    assert config.quantile_levels == ()
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
    assert [parse_config(["--model", m]).model for m in NETWORKS] == list(NETWORKS)
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
    (["--hypertune_metric_tag", " "], "--hypertune_metric_tag ' ' has blanks"),
    (["--hypertune_metric", "wql"], "--hypertune_metric wql scores quantiles, but --loss mse"),
    (["--hypertune_metric", "msis", "--loss", "quantile"], "give --loss quantile and --quantiles "
     "with 0.025 and 0.975 (got --loss quantile, --quantiles 0.1,0.5,0.9)"),
    (["--hypertune_metric", "coverage_80"], "argument --hypertune_metric: invalid choice"),
    # The same checks for the metric that chooses.
    (["--monitored_metric", "wql"], "--monitored_metric wql scores quantiles, but --loss mse"),
    (["--monitored_metric", "msis", "--loss", "quantile"], "--monitored_metric msis scores the "
     "95% interval: give --loss quantile and --quantiles with 0.025 and 0.975 (got --loss "
     "quantile, --quantiles 0.1,0.5,0.9)"),
    (["--monitored_metric", "naive_mase"], "argument --monitored_metric: invalid choice"),
    (["--loss", "huber"], "argument --loss: invalid choice: 'huber'"),
    (["--loss", "quantile", "--quantiles", "0.9,0.1"], "--quantiles '0.9,0.1': quantile levels "
     "0.9,0.1 must be strictly increasing"),
    (["--loss", "quantile", "--quantiles", "0,0.5"], "quantile level 0 is not between 0 and 1"),
    (["--loss", "quantile", "--quantiles", "low,high"], "are not comma-separated numbers"),
])
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, expected):
    assert expected in parse_error(capsys, argv)


def test_quantile_metrics_can_be_monitored_and_tuned_with_the_levels_they_need():
    config = parse_config(["--loss", "quantile", "--quantiles", "0.025,0.5,0.975",
                           "--monitored_metric", "wql", "--hypertune_metric", "msis"])
    assert (config.monitored_metric, config.hypertune_metric, config.metric_tag) == (
        "wql", "msis", "msis")


def test_a_step_schedule_evaluates_every_checkpoint_unless_a_throttle_is_given():
    # By time: 30 s between evaluations, as before.
    assert parse_config(["--save_checkpoints_secs", "60"]).eval_throttle_secs == 30
    # By steps: every checkpoint, so that early stopping counts each of them.
    stepped = parse_config(["--save_checkpoints_steps", "500"])
    assert stepped.eval_throttle_secs == 0
    assert stepped.to_dict()["eval_throttle_secs"] == 0  # what config.json records
    # Given, it stays, with steps or without.
    for argv in (["--save_checkpoints_steps", "500", "--eval_throttle_secs", "30"],
                 ["--eval_throttle_secs", "30"]):
        assert parse_config(argv).eval_throttle_secs == 30
    assert parse_config(["--save_checkpoints_steps", "5", "--eval_throttle_secs", "7"]
                        ).eval_throttle_secs == 7


def prepared_dir(tmp_path, layout: str):
    """A real preparation of 80 points, windows of 28 + 7, season 7."""
    from trainer.prepare import PrepareConfig, prepare

    raw = tmp_path / "raw.csv"
    raw.write_text("timestamp,value\n" + "".join(f"{t},{t % 7}.5\n" for t in range(300)))
    directory = tmp_path / layout
    prepare(PrepareConfig(input=str(raw), output_dir=str(directory), layout=layout, n_inputs=28,
                          n_outputs=7, season=7))
    return directory


def test_window_and_season_come_from_prepare_json_unless_given(tmp_path):
    directory = prepared_dir(tmp_path, "series")
    config = parse_config(["--data_dir", str(directory)])
    assert (config.n_inputs, config.n_outputs, config.season) == (28, 7, 7)
    # Flags given win; the series layout fits any window.
    config = parse_config(["--data_dir", str(directory), "--n_inputs", "14", "--season", "1"])
    assert (config.n_inputs, config.n_outputs, config.season) == (14, 7, 1)
    # Without prepared data, the defaults.
    assert (parse_config([]).n_inputs, parse_config([]).season) == (20, 1)


def test_rows_of_another_window_than_given_are_an_error_naming_both_shapes(tmp_path, capsys):
    directory = prepared_dir(tmp_path, "windows")
    stats = str(directory / "prepare.json")
    rows = ["--train_data_paths", str(directory / "train-*.csv"), "--eval_data_paths",
            str(directory / "valid-*.csv")]
    err = parse_error(capsys, rows + ["--stats_file", stats, "--n_inputs", "30", "--n_outputs", "5"])
    assert (f"error: --n_inputs 30 --n_outputs 5 do not fit {stats}: its rows are windows of 28 + 7 "
            "values (--layout windows), which would be read as 30 inputs and 5 targets. Give "
            "--n_inputs 28 --n_outputs 7 (or neither)") in err
    err = parse_error(capsys, ["--data_dir", str(directory), "--n_outputs", "5"])
    assert "--n_inputs 28 --n_outputs 5 do not fit" in err
    config = parse_config(rows + ["--stats_file", stats])
    assert (config.n_inputs, config.n_outputs, config.season) == (28, 7, 7)
