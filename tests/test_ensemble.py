"""trainer.model.ensemble: a weighted ensemble of real exports (tests/exported_models.py) and
baselines, exported as one SavedModel that serves as a single model does.

Sizes differ per dimension: look-backs 6 and 9, 4 steps, 3 levels, batches of 5, a season of 3
(so that the seasonal naive forecast wraps within the horizon).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_tool
from tests.exported_models import COVARIATES, LEVELS, export_model, serve_request
from trainer.model.calibration import Calibration
from trainer.model.ensemble import Member, export_ensemble, normalised, read_members
from trainer.model.export_assets import read_export_assets
from trainer.model.serving import load_exported_model, serving_input_shapes

SHORT, LONG, N_OUTPUTS, BATCH, SEASON = 6, 9, 4, 5, 3


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    def export(name, **kwargs):
        settings = {"n_inputs": SHORT, "n_outputs": N_OUTPUTS, **kwargs}
        return export_model(tmp_path_factory.mktemp(name), **settings)

    return {"short": export("short"), "long": export("long", n_inputs=LONG),
            "q_short": export("q_short", head="quantile", quantiles=LEVELS),
            "q_long": export("q_long", n_inputs=LONG, head="quantile", quantiles=LEVELS),
            "q_other_levels": export("q_other", head="quantile", quantiles=(0.2, 0.5, 0.8)),
            "two_steps": export("two_steps", n_outputs=2),
            "c_short": export("c_short", covariates=COVARIATES),
            "c_long": export("c_long", n_inputs=LONG, covariates=COVARIATES)}


def random_windows(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(50.0, 10.0, size=(BATCH, LONG)).astype(np.float32)


def serve(path: str, **inputs: np.ndarray):
    """A member (or the ensemble) called on `inputs` through its own signature."""
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {name: value.numpy().astype(np.float64)
            for name, value in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def seasonal_naive(windows: np.ndarray, season: int) -> np.ndarray:
    """Step h repeats the input one season (or a multiple) before it, written out here."""
    n = windows.shape[1]
    return np.stack([windows[:, n - season + h % season] for h in range(N_OUTPUTS)], axis=1)


def outputs_of(path: str):
    """The signature's outputs: {name: (dtype, shape)}."""
    outputs = tf.saved_model.load(path).signatures["serving_default"].structured_outputs
    return {name: (value.dtype, value.shape.as_list()) for name, value in outputs.items()}


def point_members(exports):
    return [Member("saved_model", 1.0, path=exports["short"], name="short"),
            Member("saved_model", 2.0, path=exports["long"], name="long"),
            Member("seasonal_naive", 1.0, season=SEASON)]


@pytest.fixture(scope="module")
def point_ensemble(exports, tmp_path_factory):
    return export_ensemble(point_members(exports),
                           export_dir_base=str(tmp_path_factory.mktemp("ensemble") / "export"))


def weighted_point_forecast(exports, windows):
    return (0.25 * serve(exports["short"], rawdata=windows[:, -SHORT:])["predicted"]
            + 0.5 * serve(exports["long"], rawdata=windows)["predicted"]
            + 0.25 * seasonal_naive(windows, SEASON))


def test_predicted_is_the_weighted_sum_of_members_of_different_look_backs(
        exports, point_ensemble):
    assert Path(point_ensemble).name.isdigit()  # a timestamped export, like an exporter's
    model = load_exported_model(point_ensemble)
    assert (model.n_inputs, model.n_outputs, model.levels) == (LONG, N_OUTPUTS, ())
    assert model.inputs == serving_input_shapes(n_inputs=LONG, n_outputs=N_OUTPUTS)
    assert outputs_of(point_ensemble) == outputs_of(exports["long"])  # a single model's
    assert model.head["loss"] == "ensemble" and model.head["quantiles"] == []
    windows = random_windows()
    expected = weighted_point_forecast(exports, windows)
    np.testing.assert_allclose(model.predict(windows), expected, rtol=1e-5)
    # Each member really contributes: the members' forecasts differ from one another.
    assert np.abs(serve(exports["short"], rawdata=windows[:, -SHORT:])["predicted"]
                  - seasonal_naive(windows, SEASON)).min() > 1e-3


def test_quantiles_combine_level_by_level_without_crossing(exports, tmp_path):
    members = [Member("saved_model", 0.5, path=exports["q_short"]),
               Member("saved_model", 0.3, path=exports["q_long"]),
               Member("saved_model", 0.2, path=exports["short"]),
               Member("naive", 0.5)]
    export = export_ensemble(members, export_dir_base=str(tmp_path / "export"))
    model = load_exported_model(export)
    assert model.levels == LEVELS and model.head["quantiles"] == list(LEVELS)
    assert outputs_of(export) == outputs_of(exports["q_long"])
    windows = random_windows(seed=4)
    short = serve(exports["q_short"], rawdata=windows[:, -SHORT:])
    long = serve(exports["q_long"], rawdata=windows)
    outputs = model.forecast(windows)
    assert outputs["quantiles"].shape == (BATCH, N_OUTPUTS, len(LEVELS))
    # Weights 0.5, 0.3, 0.2, 0.5 -> 1/3, 1/5, 2/15, 1/3; the quantiles of the two quantile
    # members only, weighted 0.5 / 0.8 and 0.3 / 0.8.
    np.testing.assert_allclose(outputs["quantiles"], (5 * short["quantiles"]
                                                      + 3 * long["quantiles"]) / 8, rtol=1e-5)
    np.testing.assert_allclose(outputs["predicted"], (
        5 * short["predicted"] + 3 * long["predicted"]
        + 2 * serve(exports["short"], rawdata=windows[:, -SHORT:])["predicted"]
        + 5 * np.repeat(windows[:, -1:], N_OUTPUTS, axis=1)) / 15, rtol=1e-5)
    assert np.all(np.diff(outputs["quantiles"], axis=-1) >= 0)
    levels = serve(export, rawdata=windows)["quantile_levels"]
    np.testing.assert_allclose(levels, np.tile(LEVELS, (BATCH, 1)), rtol=1e-6)


@pytest.mark.parametrize("other, says", [
    ("q_other_levels", "has the quantile levels 0.2,0.5,0.8, but 'q_short'"),
    ("two_steps", "forecasts n_outputs 2, but 'q_short'"),
    ("c_short", "takes the covariates temp (past, mean 20, std 5), promo (future, vocabulary "
                "no/yes), store (static, vocabulary north/south), but 'q_short'"),
])
def test_a_member_that_does_not_fit_is_refused_by_name(exports, tmp_path, other, says):
    members = [Member("saved_model", 1.0, path=exports["q_short"], name="q_short"),
               Member("saved_model", 1.0, path=exports[other], name=other)]
    with pytest.raises(ValueError, match=f"ensemble member '{other}' ") as error:
        export_ensemble(members, export_dir_base=str(tmp_path / "export"))
    assert says in str(error.value)
    assert not (tmp_path / "export").exists() or not any((tmp_path / "export").iterdir())


def test_members_are_checked_before_anything_loads(tmp_path):
    base = str(tmp_path / "export")
    for members, says in (([Member("seasonal_naive", 1.0, season=SEASON)], "at least one member"),
                          ([], "at least one member")):
        with pytest.raises(ValueError, match=says):
            export_ensemble(members, export_dir_base=base)
    for kwargs, says in (({"kind": "arima", "weight": 1.0}, "kind 'arima'"),
                         ({"kind": "naive", "weight": 0.0}, "weight 0.0"),
                         ({"kind": "saved_model", "weight": 1.0}, "needs path"),
                         ({"kind": "seasonal_naive", "weight": 1.0}, "season >= 1"),
                         ({"kind": "naive", "weight": 1.0, "season": 7}, "season >= 1")):
        with pytest.raises(ValueError, match=says):
            Member(**kwargs)


def test_covariates_are_sliced_to_each_members_look_back(exports, tmp_path):
    export = export_ensemble([Member("saved_model", 0.4, path=exports["c_short"]),
                              Member("saved_model", 0.6, path=exports["c_long"])],
                             export_dir_base=str(tmp_path / "export"))
    model = load_exported_model(export)
    assert model.covariates == COVARIATES
    assert model.inputs == serving_input_shapes(n_inputs=LONG, n_outputs=N_OUTPUTS,
                                                covariates=COVARIATES)
    assert model.inputs["future_categories"][1] == [None, LONG + N_OUTPUTS, 1]
    rng = np.random.default_rng(6)
    windows = random_windows(seed=5)
    covariates = {
        "past_covariates": rng.normal(20, 5, size=(BATCH, LONG, 1)).astype(np.float32),
        "future_categories": rng.integers(0, 2, size=(BATCH, LONG + N_OUTPUTS, 1)),
        "static_categories": rng.integers(0, 2, size=(BATCH, 1))}
    short = serve(exports["c_short"], rawdata=windows[:, -SHORT:],
                  past_covariates=covariates["past_covariates"][:, -SHORT:],
                  future_categories=covariates["future_categories"][:, LONG - SHORT:],
                  static_categories=covariates["static_categories"])["predicted"]
    long = serve(exports["c_long"], rawdata=windows, **covariates)["predicted"]
    np.testing.assert_allclose(model.predict(windows, covariates), 0.4 * short + 0.6 * long,
                               rtol=1e-5)
    # A slice from the other end would change the answer: the test can tell them apart.
    for name, wrong in (("past_covariates", covariates["past_covariates"][:, :SHORT]),
                        ("future_categories", covariates["future_categories"][:, :SHORT + N_OUTPUTS])):
        inputs = dict(rawdata=windows[:, -SHORT:],
                      past_covariates=covariates["past_covariates"][:, -SHORT:],
                      future_categories=covariates["future_categories"][:, LONG - SHORT:],
                      static_categories=covariates["static_categories"])
        inputs[name] = wrong
        assert np.abs(serve(exports["c_short"], **inputs)["predicted"] - short).max() > 1e-4, name

CALIBRATION = Calibration(levels=LEVELS, offsets=((-1.0, 0.0, 2.0), (-1.5, 0.0, 1.0),
                                                  (-2.0, 0.0, 0.5), (-0.5, 0.0, 3.0)),
                          fallback_scale=1.0, windows=20)


def calibrated(base: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """base [batch, steps, Q] moved by CALIBRATION's offsets times each window's mean |change|."""
    scale = np.abs(np.diff(windows.astype(np.float64), axis=1)).mean(axis=1)
    return base + np.array(CALIBRATION.offsets)[None] * scale[:, None, None]


def test_a_calibration_gives_a_point_ensemble_quantiles(exports, tmp_path):
    export = export_ensemble(point_members(exports), export_dir_base=str(tmp_path / "export"),
                             calibration=CALIBRATION)
    model = load_exported_model(export)
    assert model.levels == LEVELS
    assert model.head["calibration"] == CALIBRATION.to_json()
    assert model.head["quantiles"] == list(LEVELS) and model.head["loss"] == "ensemble"
    assert outputs_of(export) == outputs_of(exports["q_long"])
    windows = random_windows(seed=7)
    outputs = model.forecast(windows)
    point = weighted_point_forecast(exports, windows)
    np.testing.assert_allclose(outputs["predicted"], point, rtol=1e-5)
    np.testing.assert_allclose(outputs["quantiles"], calibrated(
        np.repeat(point[:, :, None], len(LEVELS), axis=2), windows), rtol=1e-5)


def test_a_calibration_moves_the_combined_quantiles(exports, tmp_path):
    members = [Member("saved_model", 1.0, path=exports["q_short"]),
               Member("saved_model", 1.0, path=exports["q_long"])]
    export = export_ensemble(members, export_dir_base=str(tmp_path / "export"),
                             calibration=CALIBRATION)
    windows = random_windows(seed=8)
    combined = (serve(exports["q_short"], rawdata=windows[:, -SHORT:])["quantiles"]
                + serve(exports["q_long"], rawdata=windows)["quantiles"]) / 2
    np.testing.assert_allclose(load_exported_model(export).forecast(windows)["quantiles"],
                               calibrated(combined, windows), rtol=1e-5, atol=1e-4)
    other = Calibration(levels=(0.05, 0.5, 0.95), offsets=((-1.0, 0.0, 1.0),) * N_OUTPUTS,
                        fallback_scale=1.0, windows=20)
    with pytest.raises(ValueError, match=r"calibrates the levels \[0.05, 0.5, 0.95\] over 4 "
                                         r"steps; its members forecast 4 steps at the levels "
                                         r"\[0.1, 0.5, 0.9\]"):
        export_ensemble(members, export_dir_base=str(tmp_path / "other"), calibration=other)


def test_the_commands_serve_it_as_a_single_model(exports, point_ensemble, tmp_path):
    windows = random_windows(seed=9)
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in windows))
    windows = np.loadtxt(rows, delimiter=",", ndmin=2).astype(np.float32)  # as written
    expected = weighted_point_forecast(exports, windows)
    predicted = tmp_path / "predicted.csv"
    result = run_tool("trainer.predict", "--model_dir", point_ensemble, "--rows", str(rows),
                      "--output", str(predicted))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = predicted.read_text().splitlines()
    assert lines[0].startswith("row,step,forecast")
    forecast = np.array([float(line.split(",")[2]) for line in lines[1:]])
    np.testing.assert_allclose(forecast.reshape(BATCH, N_OUTPUTS), expected, rtol=1e-5)
    # TensorFlow Serving's row format: the request trainer.instances makes, the answer it reads.
    request, response, served = tmp_path / "request.json", tmp_path / "r.json", tmp_path / "s.csv"
    for flags in (("--output", str(request)), ("--response", str(response), "--output", str(served))):
        if flags[0] == "--response":
            response.write_text(serve_request(point_ensemble, request.read_text()))
        result = run_tool("trainer.instances", "--model_dir", point_ensemble, "--rows", str(rows),
                          *flags)
        assert result.returncode == 0, result.stderr[-3000:]
    assert served.read_text() == predicted.read_text()


def test_ensemble_json_round_trips(exports, point_ensemble):
    members = point_members(exports)
    assert read_members(point_ensemble) == normalised(members)
    assert [m.weight for m in read_members(point_ensemble)] == [0.25, 0.5, 0.25]
    entries = read_export_assets(point_ensemble).ensemble["members"]
    assert [(e["name"], e["n_inputs"], e["season"]) for e in entries] == [
        ("short", SHORT, 0), ("long", LONG, 0), ("seasonal_naive (season 3)", SEASON, SEASON)]
    assert json.loads(json.dumps(entries)) == entries
    with pytest.raises(ValueError, match="is not the export of an ensemble"):
        read_members(exports["short"])
