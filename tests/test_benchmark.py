"""The benchmark runs end to end on tiny data (so that it cannot rot) and reports what it claims.

No speed is asserted here: speed is what the benchmark itself measures.
"""

import json
import subprocess
import sys

import pytest

from benchmarks import data
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


def test_tiny_benchmark_writes_the_table_and_json(tmp_path):
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rows", "3000", "--shards", "3",
         "--data_dir", str(tmp_path / "data"), "--repeats", "2", "--train_steps", "20",
         "--warmup_steps", "5", "--json", str(report_path), "--",
         "--n_inputs", "7", "--n_outputs", "3", "--batch_size", "50", "--hidden_units", "8"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    names = ["trainer", "pyarrow", "reference", "estimator_lstm", "keras_lstm",
             "estimator_linear", "keras_linear"]
    assert list(report["results"]) == names
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
    assert report["table"] in result.stdout
    for name in names:
        assert f"\n{name} " in "\n" + result.stdout
