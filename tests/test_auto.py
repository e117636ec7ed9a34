"""`forecast auto` end to end: real training runs as members, the ensemble chosen on the
valid split's backtest windows, exported as one SavedModel that trainer.evaluate scores as it
scores one model, a leaderboard, a failed member as a line, and a rerun that resumes."""

import json

import numpy as np
import pytest

from tests.conftest import run_tool
from trainer.model.export_assets import read_export_assets
from trainer.model.serving import load_exported_model

SEASON, N_OUTPUTS = 4, 3
INCLUDE = ("naive,seasonal_naive,nlinear-closed_form-L12-window_zscore,"
           "linear-closed_form-L8-global_zscore,dnn-L8-s1")
FLAGS = ["--time_limit", "400", "--look_backs", "8,12", "--include", INCLUDE,
         "--trainer_flags", "--train_steps 300 --save_checkpoints_steps 100"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """4 noisy series of season 4 on scales 1 to 1000: 6 backtest windows of 3 in valid, 2 in
    test (24 valid windows: enough to calibrate)."""
    from trainer.prepare import PrepareConfig, prepare

    directory = tmp_path_factory.mktemp("auto")
    rng = np.random.default_rng(0)
    lines = ["series_id,timestamp,value"]
    for s in range(4):
        level = 10.0 ** s
        lines += [f"s{s},{t},{level * (5 + np.sin(2 * np.pi * t / SEASON) + 0.2 * rng.normal()):.5f}"
                  for t in range(120)]
    (directory / "raw.csv").write_text("\n".join(lines) + "\n")
    prepare(PrepareConfig(input=str(directory / "raw.csv"), output_dir=str(directory / "prepared"),
                          n_inputs=8, n_outputs=N_OUTPUTS, valid_windows=6, test_windows=2,
                          season=SEASON))
    return directory / "prepared"


@pytest.fixture(scope="module")
def search(prepared, tmp_path_factory):
    """One search, with one member made to fail: its directory holds another run's checkpoint."""
    run = tmp_path_factory.mktemp("search") / "run"
    broken = run / "members" / "linear-closed_form-L8-global_zscore"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text(json.dumps({"model": "dnn", "n_inputs": 99}))
    (broken / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir", str(run), *FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return run, result


def test_the_search_trains_each_candidate_as_a_run_and_writes_a_leaderboard(search):
    run, result = search
    rows = {row["member"]: row for row in json.loads((run / "leaderboard.json").read_text())}
    assert set(rows) == set(INCLUDE.split(",")) | {"ensemble"}
    assert rows["naive"]["status"] == rows["seasonal_naive"]["status"] == "baseline"
    assert rows["dnn-L8-s1"]["status"] == "done" and rows["dnn-L8-s1"]["seconds"] > 0
    assert rows["nlinear-closed_form-L12-window_zscore"]["status"] == "done"
    failed = rows["linear-closed_form-L8-global_zscore"]
    assert failed["status"] == "failed" and failed["valid_mase"] is None
    assert "resume" in failed["message"] and failed["weight"] == 0
    assert sum(row["weight"] for name, row in rows.items() if name != "ensemble") == pytest.approx(1)
    trained = [row["valid_mase"] for row in rows.values() if row["status"] == "done"]
    assert rows["ensemble"]["valid_mase"] <= min(trained) + 1e-12
    for name in ("dnn-L8-s1", "nlinear-closed_form-L12-window_zscore"):
        member = json.loads((run / "members" / name / "search.json").read_text())
        assert member["status"] == "done" and (run / "members" / name / "metrics.json").exists()
    assert (run / "leaderboard.csv").read_text().splitlines()[1].startswith("ensemble,")
    # The printed table and the verdict against seasonal naive.
    assert result.stdout.splitlines()[1].startswith("ensemble")
    assert "seasonal naive" in result.stdout and "SavedModel:" in result.stdout
    assert "search 5/5 dnn-L8-s1: valid mase" in result.stderr and " left" in result.stderr


def test_the_ensemble_is_one_savedmodel_that_evaluate_scores_as_the_search_did(search, prepared,
                                                                                tmp_path):
    run, _ = search
    rows = {row["member"]: row for row in json.loads((run / "leaderboard.json").read_text())}
    exported = load_exported_model(str(run))
    assert exported.n_outputs == N_OUTPUTS and exported.levels == (0.025, 0.1, 0.5, 0.9, 0.975)
    members = read_export_assets(exported.path).ensemble["members"]
    assert {m["name"]: m["weight"] for m in members} == pytest.approx(
        {name: row["weight"] for name, row in rows.items()
         if name != "ensemble" and row["weight"] > 0})
    output = tmp_path / "valid.json"
    result = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_dir", str(prepared),
                      "--split", "valid", "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(output.read_text())["metrics"]
    # The same windows, the same per-series MASE: the graph computes what the selection scored.
    assert metrics["mase"] == pytest.approx(rows["ensemble"]["valid_mase"], rel=1e-4)
    assert metrics["seasonal_naive_mase"] == pytest.approx(rows["seasonal_naive"]["valid_mase"],
                                                           rel=1e-4)
    # Calibrated on those windows: the 80% and 95% intervals hold at least their share there.
    assert metrics["coverage_80"] >= 80 and metrics["coverage_95"] >= 95 - 100 / 24
    test = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_dir", str(prepared),
                    "--split", "test")
    assert test.returncode == 0 and "8 windows x 3 steps from the test split" in test.stdout


def test_a_search_run_again_resumes_and_trains_nothing_twice(search, prepared):
    run, _ = search
    before = json.loads((run / "members" / "dnn-L8-s1" / "search.json").read_text())
    for name in ("config.json", "checkpoint"):  # the other run's files, moved away by the user
        (run / "members" / "linear-closed_form-L8-global_zscore" / name).unlink()
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir", str(run), *FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dnn-L8-s1: done in an earlier search" in result.stderr
    assert json.loads((run / "members" / "dnn-L8-s1" / "search.json").read_text()) == before
    rows = {row["member"]: row for row in json.loads((run / "leaderboard.json").read_text())}
    assert rows["linear-closed_form-L8-global_zscore"]["status"] == "done"  # the failure, rerun
    assert len(list((run / "export" / "best").iterdir())) == 2


def test_bad_flags_and_data_say_what_to_do(prepared, tmp_path):
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir",
                      str(tmp_path / "r"), "--look_backs", "2,8")
    assert result.returncode == 1
    assert "--look_backs 2 shorter than the data's season 4" in result.stderr
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir",
                      str(tmp_path / "r"), "--include", "prophet*")
    assert result.returncode == 1 and "--include prophet* matches no candidate" in result.stderr
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir",
                      str(tmp_path / "r"), "--quantiles", "0.9,0.1")
    assert result.returncode == 2 and "--quantiles" in result.stderr
    result = run_tool("trainer.auto", "--output_dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "give --data_dir" in result.stderr


def test_forecast_ensemble_builds_the_ensemble_of_finished_runs(search, prepared, tmp_path):
    """The runs of a search's members (as a tuning job's trials would be), ensembled again."""
    run, _ = search
    output = tmp_path / "ensemble"
    result = run_tool("trainer.ensemble", "--data_dir", str(prepared), "--members",
                      f"{run}/members/*", "--output_dir", str(output), "--quantiles", "")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["member"]: row for row in json.loads((output / "leaderboard.json").read_text())}
    searched = {row["member"]: row for row in json.loads((run / "leaderboard.json").read_text())}
    for name in ("dnn-L8-s1", "nlinear-closed_form-L12-window_zscore"):
        assert rows[name]["status"] == "done"
        assert rows[name]["valid_mase"] == pytest.approx(searched[name]["valid_mase"], rel=1e-9)
        assert "model=" in rows[name]["settings"] and "n_inputs=" in rows[name]["settings"]
    assert rows["ensemble"]["valid_mase"] == pytest.approx(searched["ensemble"]["valid_mase"])
    exported = load_exported_model(str(output))
    assert exported.levels == ()  # --quantiles "": a point forecast
    done = [row for row in rows.values() if row["status"] == "done"]
    assert f"{len(done)} member runs scored" in result.stdout


def test_forecast_ensemble_and_a_trial_name_what_is_wrong(prepared, tmp_path):
    result = run_tool("trainer.ensemble", "--data_dir", str(prepared), "--members",
                      str(tmp_path / "nothing-*"), "--output_dir", str(tmp_path / "e"))
    assert result.returncode == 1 and "matches nothing" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_tool("trainer.ensemble", "--data_dir", str(prepared), "--members",
                      str(tmp_path / "empty"), "--output_dir", str(tmp_path / "e"))
    assert result.returncode == 1 and "holds an export to ensemble" in result.stderr
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--look_backs", "8",
                      "--candidate", "prophet-L8-s1")
    assert result.returncode == 1
    assert "--candidate prophet-L8-s1 is not a candidate" in result.stderr
    assert "--list_candidates" in result.stderr


def test_refit_exports_the_chosen_members_refit_on_train_and_valid(prepared, tmp_path):
    run = tmp_path / "run"
    result = run_tool("trainer.auto", "--data_dir", str(prepared), "--output_dir", str(run),
                      "--time_limit", "300", "--look_backs", "8", "--refit", "--include",
                      "naive,seasonal_naive,linear-closed_form-L8-window_zscore,"
                      "nlinear-closed_form-L8-window_zscore")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["member"]: row for row in json.loads((run / "leaderboard.json").read_text())}
    chosen = [name for name, row in rows.items()
              if name != "ensemble" and row["weight"] > 0 and row["status"] == "done"]
    assert chosen
    members = {m["name"]: m for m in read_export_assets(
        load_exported_model(str(run)).path).ensemble["members"]}
    for name in chosen:
        refit = run / "members" / name / "refit"
        assert json.loads((refit / "refit.json").read_text())["train_on"] == ["train", "valid"]
        assert members[name]["path"].startswith(str(refit / "export" / "best"))
        assert rows[name]["message"].startswith("refit on train and valid: ")
    # The weights were chosen before the refit, on held-out forecasts.
    assert {name: members[name]["weight"] for name in members} == pytest.approx(
        {name: row["weight"] for name, row in rows.items()
         if name != "ensemble" and row["weight"] > 0})


def test_the_ensembles_intervals_hold_near_nominal_on_held_out_windows(tmp_path):
    """40 series, 5 valid and 5 test backtest windows each: the intervals are calibrated on the
    200 valid windows and scored on the 200 test windows, which nothing chose on."""
    from trainer.prepare import PrepareConfig, prepare

    rng = np.random.default_rng(7)
    lines = ["series_id,timestamp,value"]
    for s in range(40):
        level, noise = rng.uniform(5, 50), rng.uniform(0.5, 2.0)
        values = level + 3 * np.sin(2 * np.pi * np.arange(80) / SEASON) + noise * rng.normal(size=80)
        lines += [f"s{s},{t},{value:.4f}" for t, value in enumerate(values)]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepare(PrepareConfig(input=str(tmp_path / "raw.csv"), output_dir=str(tmp_path / "prepared"),
                          n_inputs=8, n_outputs=N_OUTPUTS, valid_windows=5, test_windows=5,
                          season=SEASON))
    run = tmp_path / "run"
    result = run_tool("trainer.auto", "--data_dir", str(tmp_path / "prepared"), "--output_dir",
                      str(run), "--time_limit", "300", "--include",
                      "naive,seasonal_naive,linear-closed_form-L8-*")
    assert result.returncode == 0, result.stderr[-3000:]
    # No --look_backs: the series hold 62 points before their last valid window's targets, so
    # the search would take 8, 16 and 24; --include leaves look-back 8 alone, and the choice is
    # made on the windows of that look-back, as many as calibrate the intervals below.
    assert "searching look-backs 8,16,24" in result.stderr
    assert "on 200 backtest windows of the valid split (look-back 8 for all" in result.stderr
    output = tmp_path / "test.json"
    result = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_dir",
                      str(tmp_path / "prepared"), "--split", "test", "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    evaluation = json.loads(output.read_text())
    assert evaluation["windows"] == 200
    metrics = evaluation["metrics"]
    assert 72 <= metrics["coverage_80"] <= 88 and 90 <= metrics["coverage_95"] <= 99
