"""The model search's parts: the portfolio, one candidate's run (real `trainer.task`
processes), the backtest windows and forecasts, the leaderboard."""

import dataclasses
import json

import numpy as np
import pytest

from trainer.data.covariates import Covariate
from trainer.data.prepared import open_prepared
from trainer.model.ensemble import member_features
from trainer.model.networks import NETWORKS
from trainer.model.serving import serving_input_shapes
from trainer.search.backtest import baseline_forecast, member_forecast, read_backtest
from trainer.search.leaderboard import Row, table, write_leaderboard
from trainer.search.members import DONE, FAILED, STOPPED, read_member_run, run_member
from trainer.search.portfolio import (
    NAIVE,
    SEASONAL_NAIVE,
    Candidate,
    linear_networks,
    portfolio,
    searched_networks,
)
from trainer.training.config import TrainerConfig, make_config

SEASON, N_OUTPUTS = 4, 3


def prepare_seasonal(directory, *, series=3, points=80, seed=0):
    """`series` noisy series of season 4 on scales 1, 10, 100..., 2 backtest windows of 3 in
    valid and in test."""
    from trainer.prepare import PrepareConfig, prepare

    rng = np.random.default_rng(seed)
    lines = ["series_id,timestamp,value"]
    for s in range(series):
        level = 10.0 ** s
        lines += [f"s{s},{t},{level * (5 + np.sin(2 * np.pi * t / SEASON) + 0.2 * rng.normal()):.5f}"
                  for t in range(points)]
    raw = directory / "raw.csv"
    raw.write_text("\n".join(lines) + "\n")
    prepare(PrepareConfig(input=str(raw), output_dir=str(directory / "prepared"), n_inputs=8,
                          n_outputs=N_OUTPUTS, valid_windows=2, test_windows=2, season=SEASON))
    return directory / "prepared"


def test_the_portfolio_goes_from_the_baselines_to_closed_forms_to_trained_networks():
    candidates = portfolio(look_backs=(8, 12), seeds=(1, 2))
    names = [c.name for c in candidates]
    assert len(set(names)) == len(names)
    assert [c.baseline for c in candidates[:2]] == [NAIVE, SEASONAL_NAIVE]
    solvers = [c.flag_dict.get("solver", "gradient") for c in candidates[2:]]
    closed = solvers.count("closed_form")
    assert closed == 2 * 2 * len(linear_networks()) and set(solvers[:closed]) == {"closed_form"}
    trained = candidates[2 + closed:]
    ranked = searched_networks()
    assert [c.flag_dict["model"] for c in trained[:len(ranked)]] == ranked
    assert ranked == sorted(ranked, key=lambda name: NETWORKS[name].search_rank)
    assert all(c.n_inputs == 8 and c.seed == 1 for c in trained[:len(ranked)])
    assert {c.n_inputs for c in trained[len(ranked):2 * len(ranked)]} == {12}
    assert {c.seed for c in trained[-len(ranked):]} == {2}
    # The search chooses by MASE, so its networks learn the MAE; the squared error is a variant.
    assert {c.flag_dict["loss"] for c in trained[:len(ranked)]} == {"mae"}
    assert [c.name for c in trained if c.flag_dict["loss"] == "mse"] == [
        f"{model}-mse-L8-s1" for model in ranked]


def test_every_candidate_is_a_valid_trainer_configuration():
    fields = {field.name for field in dataclasses.fields(TrainerConfig)}
    for candidate in portfolio(look_backs=(8,), seeds=(1,)):
        if candidate.baseline:
            continue
        assert set(candidate.flag_dict) <= fields, candidate.name
        config = make_config(**candidate.flag_dict, n_outputs=N_OUTPUTS, season=SEASON,
                             scale_mean=0.0, scale_std=1.0 if candidate.flag_dict.get(
                                 "scaling") == "global_zscore" else 0.0)
        assert config.model == candidate.flag_dict["model"] and config.n_inputs == 8


def test_a_portfolio_needs_a_look_back_and_a_seed():
    with pytest.raises(ValueError, match="at least one look-back and one seed"):
        portfolio(look_backs=(), seeds=(1,))


def test_the_backtest_reads_the_evaluated_windows_at_the_longest_look_back(tmp_path):
    prepared = open_prepared(str(prepare_seasonal(tmp_path)))
    backtest = read_backtest(prepared, n_inputs=12, n_outputs=N_OUTPUTS, season=SEASON)
    assert backtest.windows == 3 * 2  # 3 series, 2 backtest windows each
    assert backtest.scored.features["rawdata"].shape == (6, 12)
    assert backtest.scored.labels.shape == (6, N_OUTPUTS)
    assert np.bincount(backtest.scored.series).tolist() == [2, 2, 2]
    naive = baseline_forecast(backtest, NAIVE)
    seasonal = baseline_forecast(backtest, SEASONAL_NAIVE)
    inputs = backtest.scored.features["rawdata"]
    assert np.allclose(naive, inputs[:, -1:].repeat(N_OUTPUTS, axis=1))
    assert np.allclose(seasonal, inputs[:, -SEASON:][:, :N_OUTPUTS])
    assert backtest.score(seasonal) < backtest.score(naive)  # a seasonal signal
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_forecast(backtest, "drift")


def test_a_shorter_look_back_reads_the_end_of_each_window():
    """What the search's backtest and the ensemble's graph feed a member of look-back 5 and
    horizon 3, from windows of look-back 12."""
    features = {"rawdata": np.arange(24.0).reshape(2, 12),
                "past_covariates": np.arange(48.0).reshape(2, 12, 2),
                "future_covariates": np.arange(30.0).reshape(2, 15, 1),
                "static_covariates": np.ones((2, 3))}
    inputs = serving_input_shapes(n_inputs=5, n_outputs=3, covariates=(
        Covariate("t", "past"), Covariate("u", "past"), Covariate("p", "future"),
        Covariate("a", "static"), Covariate("b", "static"), Covariate("c", "static")))
    assert set(inputs) == set(features)
    cut = member_features(features, inputs)
    assert cut["rawdata"].tolist() == [list(range(7, 12)), list(range(19, 24))]
    assert cut["past_covariates"].shape == (2, 5, 2)
    assert (cut["past_covariates"] == features["past_covariates"][:, 7:]).all()
    assert (cut["future_covariates"] == features["future_covariates"][:, 7:]).all()
    assert cut["future_covariates"].shape == (2, 8, 1)
    assert (cut["static_covariates"] == 1).all() and cut["static_covariates"].shape == (2, 3)


def closed_form(n_inputs=8):
    flags = {"model": "linear", "solver": "closed_form", "loss": "mse",
             "scaling": "window_zscore", "n_inputs": n_inputs, "seed": 1}
    return Candidate(name=f"linear-closed_form-L{n_inputs}", flags=tuple(flags.items()),
                     n_inputs=n_inputs, seed=1)


def test_a_candidate_runs_as_an_ordinary_run_and_is_not_run_twice(tmp_path):
    data_dir = str(prepare_seasonal(tmp_path))
    directory = tmp_path / "members" / "linear"
    member = run_member(closed_form(), data_dir=data_dir, directory=str(directory),
                        time_limit=300)
    assert member.status == DONE and member.exit_code == 0 and member.has_export()
    assert json.loads((directory / "search.json").read_text())["status"] == DONE
    assert "done: step" in (directory / "train.log").read_text()
    assert member.metrics()["mase"] > 0
    # Its forecast of the backtest windows equals its own evaluation's windows' forecast.
    from trainer.model.serving import load_exported_model

    backtest = read_backtest(open_prepared(data_dir), n_inputs=12, n_outputs=N_OUTPUTS,
                             season=SEASON)
    exported = load_exported_model(str(directory))
    forecast = member_forecast(backtest, exported)
    direct = exported.forecast(backtest.scored.features["rawdata"][:, -8:])["predicted"]
    assert forecast.shape == (6, N_OUTPUTS) and np.allclose(forecast, direct)
    again = run_member(closed_form(), data_dir=data_dir, directory=str(directory), time_limit=300)
    assert again == member  # read back, not run again
    assert read_member_run(str(directory)) == member


def test_a_failing_candidate_is_a_line_not_the_end(tmp_path):
    data_dir = str(prepare_seasonal(tmp_path))
    directory = tmp_path / "members" / "linear"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model": "dnn", "n_inputs": 99}))
    (directory / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')  # another run's
    member = run_member(closed_form(), data_dir=data_dir, directory=str(directory),
                        time_limit=300)
    assert member.status == FAILED and member.exit_code == 1 and not member.has_export()
    assert member.message.startswith("error:") and "resume" in member.message


def test_a_candidate_out_of_time_is_stopped_cleanly(tmp_path):
    data_dir = str(prepare_seasonal(tmp_path))
    flags = {"model": "dnn", "n_inputs": 8, "train_steps": 10 ** 7, "save_checkpoints_secs": 1,
             "eval_start_delay_secs": 0, "eval_throttle_secs": 1}
    candidate = Candidate(name="dnn", flags=tuple(flags.items()), n_inputs=8, seed=1)
    directory = tmp_path / "members" / "dnn"
    # Long enough for TensorFlow to start on a loaded machine (before its handler is in place,
    # SIGTERM ends the process at once: exit -15, no checkpoint).
    member = run_member(candidate, data_dir=data_dir, directory=str(directory), time_limit=40)
    assert member.status == STOPPED and member.exit_code == 128 + 15  # SIGTERM, a clean stop
    assert list(directory.glob("model.ckpt-*.index"))  # the checkpoint of the stop
    log = (directory / "train.log").read_text()
    assert "SIGTERM" in log


def test_the_leaderboard_puts_the_ensemble_first_then_the_best(tmp_path):
    rows = [Row("b", "x=1", DONE, 0.9, 10.0, 0.25), Row("a", "x=2", FAILED, None, 3.0, 0.0,
                                                         "error: bad"),
            Row("ensemble", "0.75 c + 0.25 b", "ensemble", 0.7, 40.0, 1.0),
            Row("c", "x=3", DONE, 0.8, 20.0, 0.75)]
    lines = table(rows)
    assert [line.split()[0] for line in lines] == ["member", "ensemble", "c", "b", "a"]
    assert "failed: error: bad" in lines[-1]
    csv_path, json_path = write_leaderboard(str(tmp_path), rows)
    records = json.loads(open(json_path).read())
    assert [r["member"] for r in records] == ["ensemble", "c", "b", "a"]
    assert records[-1]["valid_mase"] is None and records[1]["weight"] == 0.75
    assert open(csv_path).read().splitlines()[0] == (
        "member,settings,status,valid_mase,seconds,weight,message")


def test_the_search_chooses_its_look_backs_from_what_the_series_valid_windows_hold(tmp_path,
                                                                                     caplog, capsys):
    """Series of 30, 40 and 80 points and one of 80 with a gap after its 40th: with 2 valid and
    2 test windows of 3, the last valid window's targets start 9 points before the end, so the
    series hold look-backs of 21, 31, 71 and (its last segment) 31. 24 = 3 x 8 is held by 3
    of 4, so the search takes 8, 16 and 24; at a share of 1, only 2 x 8 = 16 is held by all."""
    from trainer.auto import main
    from trainer.data.series_reads import split_histories
    from trainer.prepare import PrepareConfig, prepare
    from trainer.search.auto import data_look_backs, default_look_backs

    rng = np.random.default_rng(0)
    times = {"a": range(30), "b": range(40), "c": range(80),
             "d": [*range(40), *range(60, 100)]}
    lines = ["series_id,timestamp,value"] + [
        f"{name},{t},{5 + np.sin(2 * np.pi * t / SEASON) + 0.1 * rng.normal():.5f}"
        for name, steps in times.items() for t in steps]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepare(PrepareConfig(input=str(tmp_path / "raw.csv"), output_dir=str(tmp_path / "prepared"),
                          n_inputs=8, n_outputs=N_OUTPUTS, valid_windows=2, test_windows=2,
                          season=SEASON, shards=2, on_bad_values="drop"))
    prepared = open_prepared(str(tmp_path / "prepared"))
    assert sorted(split_histories(prepared, split="valid", n_outputs=N_OUTPUTS)) == [21, 31, 31, 71]
    # The test split's last windows start 3 points before the end.
    assert sorted(split_histories(prepared, split="test", n_outputs=N_OUTPUTS)) == [27, 37, 37, 77]
    with caplog.at_level("INFO", logger="trainer.search.auto"):
        assert data_look_backs(prepared) == (8, 16, 24)
    assert "searching look-backs 8,16,24" in caplog.text and "of the 4 series" in caplog.text
    assert default_look_backs([21, 31, 31, 71], n_inputs=8, season=SEASON, share=1.0) == (8, 12, 16)
    assert default_look_backs([21, 31, 31, 71], n_inputs=8, season=1) == (8, 16, 24)
    assert default_look_backs([], n_inputs=8, season=SEASON) == (8,)
    # forecast auto without --look_backs lists the candidates of those look-backs.
    capsys.readouterr()
    assert main(["--data_dir", str(tmp_path / "prepared"), "--list_candidates"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"linear-closed_form-L8-window_zscore", "linear-closed_form-L16-window_zscore",
            "linear-closed_form-L24-window_zscore", "dnn-L24-s1"} <= set(listed)
    assert not [name for name in listed if "-L12-" in name or "-L32-" in name]
