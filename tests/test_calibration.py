"""Split-conformal calibration of the intervals: the offsets against hand-computed ranks, the
graph op (never crossing, the median and `predicted` unchanged), the flags; end to end, a
quantile head made too narrow that calibration brings to 80% on held-out data, a point head
that gains intervals in its SavedModel, the refit that reuses its run's calibration, and too
few valid windows."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool, write_rows
from trainer.model.calibration import (
    CALIBRATION_MIN_WINDOWS,
    Calibration,
    calibrate_predictions,
    conformal_offsets,
    conformal_rank,
    fit_calibration,
    interval_coverage,
)
from trainer.model.heads import QuantileHead
from trainer.model.metrics import compute_metrics
from trainer.model.model_fn import model_fn
from trainer.model.serving import holds_saved_model, load_exported_model, resolve_saved_model
from trainer.model.spec import ModelSpec
from trainer.training.config import make_config, parse_config
from trainer.util.errors import ConfigError

MODES = tf.estimator.ModeKeys
LEVELS = (0.1, 0.5, 0.9)


# --- the offsets ---------------------------------------------------------------------------

def test_the_ranks_are_the_finite_sample_ones_above_and_below_the_median():
    # n = 19: (n + 1) tau = 2, 5, 15, 18, 19 exactly; n = 99: 100 * 0.9 is 90.00000000000001
    # in floating point, which must still be rank 90, not 91.
    assert [conformal_rank(19, tau) for tau in (0.05, 0.1, 0.25, 0.75, 0.9, 0.95)] == \
        [1, 2, 5, 15, 18, 19]
    assert conformal_rank(99, 0.9) == 90 and conformal_rank(99, 0.1) == 10
    assert conformal_rank(24, 0.9) == 23  # ceil(22.5)
    assert conformal_rank(24, 0.1) == 2  # floor(2.5)
    assert conformal_rank(10, 0.975) == 10 and conformal_rank(10, 0.025) == 1  # clipped to 1..n


def test_offsets_of_a_hand_made_sample_are_its_finite_sample_quantiles():
    rng = np.random.default_rng(0)
    step_one = rng.permutation(np.arange(1.0, 20.0))  # 1..19 in random order
    step_two = rng.permutation(np.arange(-9.0, 10.0)) * 2.0  # -18, -16, ..., 18
    residuals = np.stack([step_one, step_two], axis=1)[:, :, None]
    # A central interval's ends (0.1 and 0.9) move apart by one offset: the scores
    # max(-r_0.1, r_0.9) are |r|, and the 80% rank is ceil(20 * 0.8) = 16 (step one: 16 of
    # 1..19; step two: 16 of 0, 2, 2, 4, 4, ..., 18, 18). 0.25 has no 0.75: one-sided, rank
    # floor(20 * 0.25) = 5 of r itself (5; -10). The median: none.
    one_sided = conformal_offsets(residuals * np.ones((1, 1, 4)), (0.1, 0.25, 0.5, 0.9))
    assert one_sided.tolist() == [[-16.0, 5.0, 0.0, 16.0], [-16.0, -10.0, 0.0, 16.0]]
    # With 0.75 too, the 50% interval's rank is ceil(20 * 0.5) = 10: 10 of either sample.
    paired = conformal_offsets(residuals * np.ones((1, 1, 5)), (0.1, 0.25, 0.5, 0.75, 0.9))
    assert paired.tolist() == [[-16.0, -10.0, 0.0, 10.0, 16.0]] * 2
    # A biased sample (every value above the model's interval by 1..19) widens only as far
    # as the interval must reach: its centre stays.
    biased = np.arange(1.0, 20.0)[:, None, None] * np.ones((1, 1, 3))
    assert conformal_offsets(biased, LEVELS).tolist() == [[-16.0, 0.0, 16.0]]


def test_fit_calibration_scales_each_window_by_its_mean_absolute_change():
    windows = 20
    # Inputs alternating 0, s: mean |x[t] - x[t-1]| = s. One flat window (scale 0) takes the
    # median scale of all twenty, which is 2 here.
    scales = np.array([2.0] * 12 + [4.0] * 7 + [0.0])
    inputs = np.stack([np.tile([0.0, s], 3) for s in scales])
    point = np.zeros((windows, 1))
    unit_residuals = np.arange(1.0, windows + 1.0)  # 1..20, what r = (y - point) / s should be
    fallback = 2.0
    actual = (unit_residuals * np.where(scales > 0, scales, fallback))[:, None]
    calibration = fit_calibration(actual=actual, inputs=inputs, levels=LEVELS, point=point)
    assert calibration.fallback_scale == fallback and calibration.windows == windows
    # n = 20: the 80% interval's rank ceil(21 * 0.8) = 17 of the scores |r| = 1..20.
    assert calibration.offsets == ((-17.0, 0.0, 17.0),)


# --- the graph op --------------------------------------------------------------------------

def quantile_predictions(raw: np.ndarray, levels=LEVELS):
    head = QuantileHead(levels)
    return head.predictions(head.output(tf.constant(raw, tf.float32)))


def test_calibrated_quantiles_never_cross_and_the_median_and_predicted_stay():
    raw = np.array([[[-1.0, 0.0, 1.0], [-2.0, 3.0, 4.0]]])  # [batch 1, n_outputs 2, Q 3]
    predictions = quantile_predictions(raw)
    before = predictions["quantiles"].numpy()
    rawdata = tf.constant([[0.0, 1.0, 0.0, 1.0]])  # scale 1
    # Built to cross: the 0.1 level moved above the median, the 0.9 level below it.
    crossing = Calibration(levels=LEVELS, offsets=((3.0, 0.0, -3.0), (-0.5, 0.0, 0.25)),
                           fallback_scale=1.0, windows=20)
    after = calibrate_predictions(predictions, rawdata=rawdata, calibration=crossing)
    quantiles = after["quantiles"].numpy()
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    np.testing.assert_array_equal(quantiles[..., 1], before[..., 1])  # the median never moves
    np.testing.assert_array_equal(after["predicted"].numpy(), predictions["predicted"].numpy())
    # Step 1: both outer levels crossed the median and are held at it. Step 2: moved as asked
    # (q0.1 - 0.5 and q0.9 + 0.25 stay on their sides of the median).
    np.testing.assert_allclose(quantiles[0, 0], [before[0, 0, 1]] * 3)
    np.testing.assert_allclose(quantiles[0, 1], before[0, 1] + [-0.5, 0.0, 0.25], rtol=1e-6)
    # Without the running max/min, the same offsets would cross.
    assert before[0, 0, 0] + 3.0 > before[0, 0, 1] > before[0, 0, 2] - 3.0
    np.testing.assert_array_equal(after["quantile_levels"].numpy(), [list(np.float32(LEVELS))])


def test_non_crossing_runs_outward_from_the_median_over_five_levels():
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    predictions = {"predicted": tf.constant([[10.0]])}  # a point head
    calibration = Calibration(levels=levels, offsets=((-1.0, 0.5, 0.0, 2.0, 1.0),),
                              fallback_scale=1.0, windows=30)
    quantiles = calibrate_predictions(predictions, rawdata=tf.constant([[5.0, 5.0]]),  # flat
                                      calibration=calibration)["quantiles"].numpy()
    # 0.25 rose above the median: held at 10; 0.95 fell below 0.75: held at 12.
    assert quantiles.tolist() == [[[9.0, 10.0, 10.0, 12.0, 12.0]]]


def spec(head: str, calibration=None, **more) -> ModelSpec:
    return ModelSpec(model="linear", hidden_units=4, n_inputs=6, n_outputs=2, head=head,
                     optimizer="sgd", learning_rate=0.1, clip_gradient_norm=5.0, scaling="none",
                     season=1, calibration=calibration, **more)


POINT_CALIBRATION = Calibration(levels=LEVELS, offsets=((-1.0, 0.0, 1.5), (-2.0, 0.0, 2.5)),
                                fallback_scale=0.7, windows=25)


def run_model_fn(mode, params, inputs, labels):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(3)
        tf.compat.v1.train.create_global_step()
        estimator_spec = model_fn({"rawdata": tf.constant(inputs)},
                                  None if mode == MODES.PREDICT else tf.constant(labels), mode, params)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(tf.compat.v1.local_variables_initializer())
            if mode == MODES.EVAL:
                session.run([update for _, update in estimator_spec.eval_metric_ops.values()])
                metrics = session.run({k: v for k, (v, _) in estimator_spec.eval_metric_ops.items()})
            else:
                metrics = None
            return estimator_spec, session.run(estimator_spec.predictions), metrics


def test_a_calibrated_point_head_predicts_exports_and_is_evaluated_with_its_quantiles():
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(5, 6)).astype(np.float32)
    inputs[0] = 2.0  # a flat window: the fallback scale
    labels = rng.normal(size=(5, 2)).astype(np.float32)
    plain_spec, _, _ = run_model_fn(MODES.PREDICT, spec("mse"), inputs, labels)
    assert set(plain_spec.export_outputs["serving_default"].outputs) == {"predicted"}
    estimator_spec, calibrated, _ = run_model_fn(MODES.PREDICT, spec("mse", POINT_CALIBRATION),
                                                 inputs, labels)
    keys = {"predicted", "quantiles", "quantile_levels"}
    assert set(calibrated) == keys
    assert set(estimator_spec.export_outputs["serving_default"].outputs) == keys
    # (That `predicted` is the uncalibrated model's own is checked on SavedModels of the same
    # variables below: two graphs here would initialise different ones.)
    scale = np.mean(np.abs(np.diff(inputs, axis=1)), axis=1)
    scale[0] = 0.7
    expected = calibrated["predicted"][:, :, None] + np.array(POINT_CALIBRATION.offsets)[None] * \
        scale[:, None, None]
    np.testing.assert_allclose(calibrated["quantiles"], expected, rtol=1e-5, atol=1e-6)
    assert calibrated["quantile_levels"].shape == (5, 3)

    # EVAL: the interval metrics of the calibrated quantiles, as compute_metrics has them.
    _, predictions, metrics = run_model_fn(MODES.EVAL, spec("mse", POINT_CALIBRATION), inputs, labels)
    assert {"wql", "coverage_80", "width_80", "naive_coverage_80"} <= set(metrics)
    numpy_metrics = compute_metrics(actual=labels, forecast=predictions["predicted"], inputs=inputs,
                                    season=1, mase_scale=None, quantiles=predictions["quantiles"],
                                    levels=LEVELS)
    for name in ("wql", "coverage_80", "width_80", "rmse"):
        assert metrics[name] == pytest.approx(numpy_metrics[name], rel=1e-4, abs=1e-5), name
    assert interval_coverage(labels, predictions["quantiles"], LEVELS)["coverage"]["80"] == \
        pytest.approx(metrics["coverage_80"], rel=1e-5)


def test_the_spec_refuses_a_calibration_of_other_steps_or_levels():
    with pytest.raises(ValueError, match="offsets for 2 steps, the model forecasts n_outputs 3"):
        ModelSpec(model="linear", hidden_units=4, n_inputs=6, n_outputs=3, head="mse",
                  optimizer="sgd", learning_rate=0.1, clip_gradient_norm=5.0, scaling="none",
                  season=1, calibration=POINT_CALIBRATION)
    with pytest.raises(ValueError, match=r"levels \(0.1, 0.5, 0.9\), the quantile head forecasts "
                                         r"\(0.25, 0.5, 0.75\)"):
        spec("quantile", POINT_CALIBRATION, quantiles=(0.25, 0.5, 0.75))
    with pytest.raises(ValueError, match="0.5 level of a calibration keeps its quantile"):
        Calibration(levels=LEVELS, offsets=((-1.0, 0.2, 1.0),), fallback_scale=1.0, windows=20)
    with pytest.raises(ValueError, match="old.json is not a calibration .no 'offsets'"):
        Calibration.from_json({"levels": [0.5], "fallback_scale": 1, "windows": 3},
                              source="old.json")


# --- the flags -------------------------------------------------------------------------------

def test_auto_calibrates_the_quantile_head_only_and_on_gives_point_heads_intervals(tmp_path):
    assert parse_config([]).calibrate_intervals == "auto"
    assert parse_config(["--loss", "quantile"]).calibrates_intervals
    assert not parse_config([]).calibrates_intervals  # mse: the export keeps its signature
    assert parse_config(["--loss", "mae", "--calibrate_intervals", "on"]).calibrates_intervals
    assert parse_config(["--calibrate_intervals", "on"]).interval_levels == LEVELS
    assert not parse_config(["--loss", "quantile", "--calibrate_intervals", "off"]).calibrates_intervals
    with pytest.raises(ConfigError, match="--calibrate_intervals off with --loss quantile "
                                          "calibrates none"):
        make_config(loss="quantile", calibrate_intervals="off",
                    calibration_file=str(tmp_path / "calibration.json"))
    with pytest.raises(ConfigError, match="calibration.json does not exist"):
        make_config(loss="quantile", calibration_file=str(tmp_path / "calibration.json"))


# --- end to end ------------------------------------------------------------------------------

N_INPUTS, N_OUTPUTS, PERIOD = 24, 4, 12


def noisy_windows(rows: int, *, noise: float, seed: int) -> np.ndarray:
    """Windows of a sine of period 12 with a random phase, plus Gaussian noise of std `noise`."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(rows, 1))
    clean = np.sin(2 * np.pi * np.arange(N_INPUTS + N_OUTPUTS) / PERIOD + phase)
    return clean + rng.normal(0, noise, size=clean.shape)


def coverage_80(model_path: str, windows: np.ndarray) -> float:
    """Percent of the actual values inside [q0.1, q0.9] of the SavedModel at `model_path`,
    called through its serving signature."""
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    quantiles = serve(rawdata=tf.constant(windows[:, :N_INPUTS], tf.float32))["quantiles"].numpy()
    actual = windows[:, N_INPUTS:]
    return 100 * float(np.mean((actual >= quantiles[..., 0]) & (actual <= quantiles[..., 2])))


@pytest.mark.e2e
def test_calibration_brings_a_too_narrow_interval_to_80_percent_on_held_out_data(tmp_path):
    """The head learns its quantiles on training data with noise of std 0.1, then forecasts
    data with noise of std 0.3 (valid and test alike): its 80% interval is far too narrow.
    Calibrated on the 2000 valid windows, it holds 80% of 4000 held-out test windows."""
    write_rows(tmp_path / "train.csv", noisy_windows(4000, noise=0.1, seed=1))
    write_rows(tmp_path / "valid.csv", noisy_windows(2000, noise=0.3, seed=2))
    test = noisy_windows(4000, noise=0.3, seed=3)
    run = tmp_path / "run"
    result = run_task([
        "--train_data_paths", str(tmp_path / "train.csv"),
        "--eval_data_paths", str(tmp_path / "valid.csv"), "--output_dir", str(run),
        "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS), "--model", "linear",
        "--loss", "quantile", "--optimizer", "adam", "--learning_rate", "0.01",
        "--batch_size", "128", "--train_steps", "600", "--save_checkpoints_steps", "600",
        "--season", str(PERIOD), "--progress_interval_secs", "5"])
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    calibration = metrics["calibration"]
    assert calibration["windows"] == 2000 and calibration["levels"] == list(LEVELS)
    assert calibration["coverage_before"]["80"] < 60  # on valid, before: far too narrow
    assert abs(calibration["coverage_after"]["80"] - 80) < 1.5  # the offsets were fitted there
    assert calibration["width_after"]["80"] > calibration["width_before"]["80"]

    # Held out: the test windows, through both SavedModels.
    uncalibrated = calibration["uncalibrated_saved_model_path"]
    calibrated = resolve_saved_model(str(run))  # what evaluate and predict take: the newest best
    assert calibrated == metrics["saved_model_path"] != uncalibrated
    before, after = coverage_80(uncalibrated, test), coverage_80(calibrated, test)
    print(f"held-out 80% coverage: {before:.1f}% before calibration, {after:.1f}% after")
    assert before < 60, before
    assert abs(after - 80) <= 3, after

    # trainer.evaluate reads the calibrated export with nothing new and agrees.
    write_rows(tmp_path / "test.csv", test)
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_paths",
                          str(tmp_path / "test.csv"), "--output", str(tmp_path / "test.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    scored = json.loads((tmp_path / "test.json").read_text())
    assert scored["model"] == calibrated
    assert scored["metrics"]["coverage_80"] == pytest.approx(after, abs=0.2)

    # The files: calibration.json beside metrics.json, head.json of the export, the log lines.
    record = json.loads((run / "calibration.json").read_text())
    assert record["computed_from"]["saved_model_path"] == uncalibrated
    assert record["computed_from"]["windows"] == 2000
    assert len(record["offsets"]) == N_OUTPUTS and all(row[1] == 0.0 for row in record["offsets"])
    head = json.loads((Path(calibrated) / "assets.extra" / "head.json").read_text())
    assert head["loss"] == "quantile" and head["calibration"]["offsets"] == record["offsets"]
    assert "calibrated intervals (split conformal on 2000 valid windows per step)" in result.stderr
    assert f"80% interval held {calibration['coverage_before']['80']:.1f}% -> " in result.stderr
    assert "intervals calibrated on 2000 valid windows: 80% interval held" in result.stdout
    assert f"SavedModel: {calibrated}" in result.stdout


SERIES, LENGTH = 8, 120
SERIES_IN, SERIES_OUT = 12, 3


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """Eight noisy sines prepared as series with 4 backtest windows each in the valid split
    (32 windows) and 2 in the test split; a point head (mse) trained with
    --calibrate_intervals on, its best model also written to $AIP_MODEL_DIR."""
    root = tmp_path_factory.mktemp("calibrated_series")
    rng = np.random.default_rng(5)
    lines = ["series_id,timestamp,value"]
    for index in range(SERIES):
        phase = rng.uniform(0, 2 * np.pi)
        values = 10 + 3 * np.sin(2 * np.pi * np.arange(LENGTH) / PERIOD + phase) + \
            rng.normal(0, 0.5, LENGTH)
        lines += [f"s{index},{t},{value:.4f}" for t, value in enumerate(values)]
    (root / "raw.csv").write_text("\n".join(lines) + "\n")
    prepared = root / "prepared"
    result = run_tool("trainer.prepare", "--input", str(root / "raw.csv"), "--output_dir",
                      str(prepared), "--timestamp_column", "timestamp", "--n_inputs",
                      str(SERIES_IN), "--n_outputs", str(SERIES_OUT), "--valid_windows", "4",
                      "--test_windows", "2", "--season", str(PERIOD))
    assert result.returncode == 0, result.stderr[-3000:]
    run, model_dir = root / "run", root / "aip_model"
    result = run_task(["--data_dir", str(prepared), "--output_dir", str(run), "--model", "dnn",
                       "--hidden_units", "8", "--loss", "mse", "--calibrate_intervals", "on",
                       "--optimizer", "adam", "--learning_rate", "0.01", "--train_steps", "60",
                       "--save_checkpoints_steps", "30", "--steps_per_run", "5"],
                      env={"AIP_MODEL_DIR": str(model_dir)})
    assert result.returncode == 0, result.stderr[-4000:]
    return {"prepared": prepared, "run": run, "model_dir": model_dir, "result": result,
            "metrics": json.loads((run / "metrics.json").read_text())}


@pytest.mark.e2e
def test_a_calibrated_point_model_serves_quantiles_and_says_it_is_calibrated(series_run):
    run, metrics = series_run["run"], series_run["metrics"]
    assert metrics["calibration"]["windows"] == SERIES * 4
    assert metrics["calibration"]["coverage_before"] is None  # a point head had no interval
    assert "intervals at the levels 0.1,0.5,0.9 (the default; --quantiles sets others)" in \
        series_run["result"].stderr
    export = resolve_saved_model(str(run))
    assert export == metrics["saved_model_path"]
    serve = tf.saved_model.load(export).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"predicted", "quantiles", "quantile_levels"}
    rawdata = tf.constant(np.random.default_rng(0).normal(10, 3, (5, SERIES_IN)), tf.float32)
    outputs = serve(rawdata=rawdata)
    assert outputs["predicted"].shape == (5, SERIES_OUT)
    assert outputs["quantiles"].shape == (5, SERIES_OUT, 3)
    np.testing.assert_allclose(outputs["quantile_levels"].numpy(), np.tile(LEVELS, (5, 1)))
    quantiles = outputs["quantiles"].numpy()
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    # The point forecast is the uncalibrated model's, and the 0.5 level is that forecast.
    plain = tf.saved_model.load(metrics["calibration"]["uncalibrated_saved_model_path"])
    plain_outputs = plain.signatures["serving_default"](rawdata=rawdata)
    assert set(plain_outputs) == {"predicted"}
    np.testing.assert_allclose(outputs["predicted"].numpy(), plain_outputs["predicted"].numpy())
    np.testing.assert_allclose(quantiles[..., 1], outputs["predicted"].numpy())
    head = json.loads((Path(export) / "assets.extra" / "head.json").read_text())
    assert head["loss"] == "mse" and head["quantiles"] == list(LEVELS)
    assert head["calibration"]["windows"] == SERIES * 4
    assert head["calibration"]["fallback_scale"] > 0
    assert load_exported_model(export).levels == LEVELS
    # $AIP_MODEL_DIR holds the calibrated model itself.
    assert holds_saved_model(str(series_run["model_dir"]), export)
    assert metrics["model_dir"] == str(series_run["model_dir"])

    # trainer.evaluate scores its intervals on the test split with no flag.
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(run), "--data_dir",
                          str(series_run["prepared"]), "--split", "test", "--output",
                          str(run.parent / "test.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    scored = json.loads((run.parent / "test.json").read_text())
    assert scored["quantiles"] == list(LEVELS) and "coverage_80" in scored["metrics"]


@pytest.mark.e2e
def test_a_refit_applies_the_calibration_of_the_run_it_refits(series_run):
    run = series_run["run"]
    result = run_tool("trainer.refit", "--run_dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    refit = run / "refit"
    source = json.loads((run / "calibration.json").read_text())
    assert json.loads((refit / "refit.json").read_text())["calibration_file"] == \
        str(run / "calibration.json")
    assert f"its intervals calibrated with {run / 'calibration.json'}" in result.stdout
    calibration = json.loads((refit / "metrics.json").read_text())["calibration"]
    assert calibration["calibration_file"] == str(run / "calibration.json")
    assert calibration["in_sample"] is True and calibration["windows"] == source["windows"]
    record = json.loads((refit / "calibration.json").read_text())
    assert record["computed_from"] == {"calibration_file": str(run / "calibration.json")}
    export = resolve_saved_model(str(refit))
    head = json.loads((Path(export) / "assets.extra" / "head.json").read_text())
    assert head["calibration"]["offsets"] == source["offsets"]


@pytest.mark.e2e
def test_too_few_valid_windows_warn_and_calibrate_nothing(tmp_path):
    few = CALIBRATION_MIN_WINDOWS - 8
    write_rows(tmp_path / "train.csv", noisy_windows(300, noise=0.2, seed=1))
    write_rows(tmp_path / "valid.csv", noisy_windows(few, noise=0.2, seed=2))
    run = tmp_path / "run"
    result = run_task(["--train_data_paths", str(tmp_path / "train.csv"), "--eval_data_paths",
                       str(tmp_path / "valid.csv"), "--output_dir", str(run), "--n_inputs",
                       str(N_INPUTS), "--n_outputs", str(N_OUTPUTS), "--model", "linear",
                       "--loss", "quantile", "--optimizer", "adam", "--train_steps", "20",
                       "--save_checkpoints_steps", "20"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert (f"no calibration of the intervals: only {few} valid windows per step to calibrate on "
            f"(it needs {CALIBRATION_MIN_WINDOWS}); give the valid split more of them: more "
            "backtest windows (python -m trainer.prepare --valid_windows), or a longer valid "
            "split") in result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["calibration"] == {
        "skipped": f"{few} valid windows, fewer than the {CALIBRATION_MIN_WINDOWS} per step that "
                   "calibration needs"}
    assert f"intervals not calibrated: {few} valid windows" in result.stdout
    assert not (run / "calibration.json").exists()
    exports = list((run / "export" / "best").iterdir())
    assert exports and all("calibration" not in json.loads(
        (path / "assets.extra" / "head.json").read_text()) for path in exports)
    assert metrics["saved_model_path"] == resolve_saved_model(str(run))

    # A refit trains on the valid windows: with no calibration.json to reuse, it computes none.
    result = run_tool("trainer.refit", "--run_dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    skipped = json.loads((run / "refit" / "metrics.json").read_text())["calibration"]["skipped"]
    assert skipped.startswith("--train_on_valid: the model trained on the valid windows")
