"""The benchmark runs end to end on tiny data (so that it cannot rot) and reports what it claims.

No speed is asserted here: speed is what the benchmark itself measures.
"""

import json
import subprocess
import sys

import pytest

from benchmarks import data, series
from benchmarks.measure import Result
from benchmarks.run import parse_args, summarize
from tests.conftest import REPO_ROOT

pytest.importorskip("pyarrow", reason="pyarrow is in the test and bench extras")


def test_generated_shards_hold_the_rows_and_are_reused(tmp_path):
    files = data.ensure_dataset(str(tmp_path), rows=10, shards=3, n_inputs=4, n_outputs=2, seed=1)
    lines = [line for path in files for line in open(path).read().splitlines()]
    assert [len(open(p).read().splitlines()) for p in files] == [4, 3, 3]
    assert all(len(line.split(",")) == 6 for line in lines)
    stamps = [(tmp_path / p).stat().st_mtime_ns for p in files]
    assert data.ensure_dataset(str(tmp_path), rows=10, shards=3, n_inputs=4, n_outputs=2,
                               seed=1) == files
    assert [(tmp_path / p).stat().st_mtime_ns for p in files] == stamps
    # Another shape rewrites them.
    data.ensure_dataset(str(tmp_path), rows=10, shards=3, n_inputs=5, n_outputs=2, seed=1)
    assert len(open(files[0]).readline().split(",")) == 7


def test_trainer_flags_after_the_separator_configure_every_candidate():
    args, config, models = parse_args(["--rows", "500", "--models", "linear", "--",
                                       "--batch_size", "128", "--n_inputs", "6"])
    assert (args.rows, models) == (500, ["linear"])
    assert (config.batch_size, config.n_inputs, config.n_outputs) == (128, 6, 5)


@pytest.mark.parametrize("argv, message", [
    (["--models", "gru"], "--models 'gru'"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--rows", "5", "--shards", "8"], "--rows 5 is fewer than --shards 8"),
    (["--", "--batch_size", "0"], "--batch_size"),
    (["--only", "rows"], "--only: invalid choice: 'rows'"),
    (["--series_examples", "0"], "--series_examples must be at least 1, got 0"),
    (["--series_n_outputs", "-3"], "--series_n_outputs must be at least 1, got -3"),
    (["--series_points", "1000", "--short_series", "3"],
     "--series_points 1000 is not a multiple of --short_series 3"),
    (["--short_series", "5000"], "--short_series 5000 leaves 200 points per series"),
    (["--series_slice_points", "431"],
     "--series_slice_points 431 must hold at least one window of --series_n_inputs 336 + "
     "--series_n_outputs 96 = 432 points"),
    (["--series_points", "2000", "--short_series", "4", "--series_slice_points", "3000"],
     "at most --series_points 2000"),
])
def test_bad_flags_exit_2_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_ratios_are_quotients_of_medians_and_judged_against_the_targets():
    results = {}
    for name, kind, rates in [("trainer", "input", [3.0, 9.0, 4.0]), ("pyarrow", "input", [10.0]),
                              ("reference", "input", [0.5]),
                              ("estimator_lstm", "training", [2.0]),
                              ("keras_lstm", "training", [1.0, 2.0, 1.0])]:
        results[name] = Result(name, kind, "", rates=rates)
    ratios = summarize(results)
    assert ratios["input_vs_pyarrow"] == {"ratio": 0.4, "target": 0.25, "met": True,
                                          "of": "trainer / pyarrow"}
    assert ratios["input_vs_reference"]["ratio"] == 8.0
    assert ratios["input_vs_reference"]["met"] is False
    assert ratios["training_vs_keras"]["ratio"] == 2.0
    assert "training_linear_vs_keras" not in ratios


# The series section on tiny data: 3000 points, 6 short series of 500, windows of 20 + 5.
TINY_SERIES_FLAGS = ["--series_points", "3000", "--short_series", "6", "--series_n_inputs", "20",
                     "--series_n_outputs", "5", "--series_slice_points", "1000",
                     "--series_examples", "1500"]
SERIES_NAMES = ["prepare_long", "prepare_short", "series_long", "rows_long", "series_short",
                "rows_short"]


def run_benchmark(argv, tmp_path):
    """python -m benchmarks.run ARGV --json PATH in a subprocess -> (the report, stdout)."""
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--data_dir", str(tmp_path / "data"),
         "--json", str(report_path), *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(report_path.read_text()), result.stdout


def test_tiny_benchmark_writes_the_table_and_json(tmp_path):
    report, stdout = run_benchmark(
        ["--rows", "3000", "--shards", "3", "--repeats", "2", "--train_steps", "20",
         "--warmup_steps", "5", *TINY_SERIES_FLAGS, "--",
         "--n_inputs", "7", "--n_outputs", "3", "--batch_size", "50", "--hidden_units", "8"],
        tmp_path)
    names = ["trainer", "pyarrow", "reference", "estimator_lstm", "keras_lstm",
             "estimator_linear", "keras_linear"]
    # Without --only, every section runs, the series section last.
    assert list(report["results"]) == names + SERIES_NAMES
    for name in names:
        entry = report["results"][name]
        assert len(entry["runs"]) == 2 and all(rate > 0 for rate in entry["runs"])
        assert entry["median"] == pytest.approx(sum(entry["runs"]) / 2)
        assert entry["peak_rss_mib"] > 0
    medians = {name: report["results"][name]["median"] for name in names}
    assert report["ratios"]["input_vs_pyarrow"]["ratio"] == pytest.approx(
        medians["trainer"] / medians["pyarrow"])
    assert report["ratios"]["input_vs_reference"]["ratio"] == pytest.approx(
        medians["trainer"] / medians["reference"])
    assert report["ratios"]["training_vs_keras"]["ratio"] == pytest.approx(
        medians["estimator_lstm"] / medians["keras_lstm"])
    assert report["settings"]["trainer_config"]["batch_size"] == 50
    # The printed table is the JSON's.
    assert report["table"] in stdout
    for name in names + SERIES_NAMES:
        assert f"\n{name} " in "\n" + stdout


def test_series_data_is_written_once_as_raw_long_csvs_and_reused(tmp_path):
    shape = dict(points=1200, short_series=3, slice_points=500, n_inputs=6, n_outputs=2, seed=4)
    made = series.ensure_series_data(str(tmp_path), **shape)
    long_lines = open(made.raw["long"]).read().splitlines()
    short_lines = open(made.raw["short"]).read().splitlines()
    assert long_lines[0] == short_lines[0] == "series_id,timestamp,value"
    assert len(long_lines) == len(short_lines) == 1 + 1200
    assert long_lines[1].startswith("s0,2020-01-01T00:00:00,")
    assert long_lines[-1].startswith("s0,2020-02-19T23:00:00,")  # hour 1199
    assert [line.split(",")[0] for line in short_lines[1::400]] == ["s0", "s1", "s2"]
    assert short_lines[401].startswith("s1,2020-01-01T00:00:00,")  # the same hours each
    # The slices are the first points of the same data: 500 of the long series, and one
    # short series of 400 (as many whole series as fit in 500 points, at least one).
    assert open(made.slices["long"]).read().splitlines() == long_lines[:501]
    assert open(made.slices["short"]).read().splitlines() == short_lines[:401]
    assert (made.slice_points, made.slice_series) == ({"long": 500, "short": 400},
                                                      {"long": 1, "short": 1})
    windows = json.loads(open(f"{made.slice_dir('long', 'windows')}/prepare.json").read())
    assert windows["layout"] == "windows" and windows["splits"]["train"]["windows"] == 500 - 7
    assert windows["splits"]["valid"]["points"] == windows["splits"]["test"]["points"] == 0
    stamp = (tmp_path / "series" / "raw-long.csv").stat().st_mtime_ns
    assert series.ensure_series_data(str(tmp_path), **shape) == made
    assert (tmp_path / "series" / "raw-long.csv").stat().st_mtime_ns == stamp
    # Another window shape rewrites it all.
    series.ensure_series_data(str(tmp_path), **{**shape, "n_inputs": 5})
    windows = json.loads(open(f"{made.slice_dir('long', 'windows')}/prepare.json").read())
    assert windows["n_inputs"] == 5


def test_series_ratios_are_quotients_of_the_figures_and_judged_against_the_targets():
    results = {name: Result(name, "series", "", rates=rates) for name, rates in [
        ("series_long", [90.0, 100.0, 200.0]), ("rows_long", [2.0]),
        ("series_short", [30.0]), ("rows_short", [1.0, 1.0])]}
    results["series_long"].extras[series.WITH_FIRST_BATCH] = [40.0, 60.0, 80.0]
    results["rows_long"].extras[series.WITH_FIRST_BATCH] = [1.5]
    results["prepare_long"] = Result("prepare_long", "prepare", "", rates=[2e6, 1e6, 3e6])
    sizes = {"long_slice": {"of": "the first 10 points", "series_bytes": 40, "rows_bytes": 2000},
             "short_slice": {"of": "the first 2 short series", "series_bytes": 50,
                             "rows_bytes": 100}}
    ratios = series.summarize_series(results, sizes)
    assert ratios["series_vs_rows_examples"] == {
        "ratio": 50.0, "target": 40.0, "met": True,
        "of": "series_long / rows_long (examples/s after the first batch)"}
    assert ratios["series_vs_rows_examples_with_first_batch"] == {
        "ratio": 40.0, "of": "series_long / rows_long (examples/s, the first batch included)"}
    assert "series_vs_rows_examples_short_with_first_batch" not in ratios  # no such figures
    assert ratios["series_vs_rows_examples_short"]["ratio"] == 30.0
    assert ratios["series_vs_rows_examples_short"]["met"] is False
    assert ratios["rows_vs_series_bytes"]["ratio"] == 50.0
    assert ratios["rows_vs_series_bytes"]["met"] is True
    assert ratios["rows_vs_series_bytes_short"] == {
        "ratio": 2.0, "of": "rows bytes / series bytes of the first 2 short series"}
    assert ratios["prepare_points_per_sec"] == {
        "value": 2e6, "unit": "points/s", "target": 1e6, "met": True,
        "of": "median of prepare_long"}
    assert "prepare_points_per_sec_short" not in ratios


def test_tiny_series_section_alone_reports_rates_bytes_and_ratios(tmp_path):
    report, stdout = run_benchmark(["--only", "series", "--repeats", "1", *TINY_SERIES_FLAGS,
                                    "--", "--batch_size", "50", "--steps_per_run", "2"], tmp_path)
    results = report["results"]
    assert list(results) == SERIES_NAMES  # the series section only
    for name in SERIES_NAMES:
        entry = results[name]
        assert len(entry["runs"]) == 1 and entry["runs"][0] > 0
        assert entry["median"] == entry["runs"][0] and entry["peak_rss_mib"] > 0
        assert entry["unit"] == ("points/s" if name.startswith("prepare_") else "examples/s")
    sizes = report["bytes"]
    assert list(sizes) == ["long_slice", "short_slice", "long_all", "short_all"]
    assert sizes["long_slice"]["points"] == 1000 and sizes["long_slice"]["windows"] == 1000 - 24
    assert sizes["short_slice"]["points"] == 1000 and sizes["short_slice"]["series"] == 2
    assert sizes["short_slice"]["windows"] == 2 * (500 - 24)
    for entry in sizes.values():
        assert entry["series_bytes"] > 0 and entry.get("rows_bytes", 1) > 0
    # A window row holds 25 values, a point of a series shard 5 numbers: rows are larger.
    assert sizes["long_slice"]["rows_bytes"] > sizes["long_slice"]["series_bytes"]
    assert sizes["long_all"]["points"] == 3000 and sizes["short_all"]["series"] == 6

    medians = {name: results[name]["median"] for name in SERIES_NAMES}
    ratios = report["ratios"]
    # Each training-input candidate also has its first batch timed apart.
    for name in SERIES_NAMES[2:]:
        first, whole = results[name]["first_batch_secs"], results[name]["examples_per_sec_with_first_batch"]
        assert len(first["runs"]) == 1 and first["runs"][0] > 0
        assert 0 < whole["median"] < medians[name]  # the first batch's time slows the whole drain
        assert f"\n{name:<18} {first['median']:>14.3f} {whole['median']:>20,.0f}\n" in stdout
    assert ratios["series_vs_rows_examples_with_first_batch"]["ratio"] == pytest.approx(
        results["series_long"]["examples_per_sec_with_first_batch"]["median"]
        / results["rows_long"]["examples_per_sec_with_first_batch"]["median"])
    block = stdout.split("\nfirst batch ")[1].split("\n\n")[0]
    assert [line.split()[0] for line in block.splitlines()[1:]] == SERIES_NAMES[2:]  # no prepare
    assert ratios["series_vs_rows_examples"]["ratio"] == pytest.approx(
        medians["series_long"] / medians["rows_long"])
    assert ratios["series_vs_rows_examples_short"]["ratio"] == pytest.approx(
        medians["series_short"] / medians["rows_short"])
    for name, kind in (("rows_vs_series_bytes", "long"), ("rows_vs_series_bytes_short", "short")):
        entry = sizes[f"{kind}_slice"]
        assert ratios[name]["ratio"] == pytest.approx(entry["rows_bytes"] / entry["series_bytes"])
        assert entry["of"] in ratios[name]["of"]
    for name, candidate in (("prepare_points_per_sec", "prepare_long"),
                            ("prepare_points_per_sec_short", "prepare_short")):
        assert ratios[name]["value"] == medians[candidate]
        assert ratios[name]["met"] == (medians[candidate] >= 1e6)
    for name in ("series_vs_rows_examples", "rows_vs_series_bytes", "prepare_points_per_sec"):
        assert ratios[name]["met"] == (ratios[name].get("ratio", ratios[name].get("value"))
                                       >= ratios[name]["target"])
    assert "input_vs_pyarrow" not in ratios
    settings = report["settings"]["series"]
    assert (settings["series_n_inputs"], settings["series_n_outputs"]) == (20, 5)
    assert settings["points_per_short_series"] == 500
    assert report["settings"]["trainer_config"]["steps_per_run"] == 2
    # The printed table is the JSON's, with the bytes block and what its slices are.
    assert report["table"] in stdout
    assert "the first 1,000 points of the long series: 976 windows of 20 + 5" in stdout
    assert "prepare_points_per_sec" in stdout and "points/s" in stdout
    # No rows data set of the other sections was written.
    assert not (tmp_path / "data" / "benchmark.json").exists()
