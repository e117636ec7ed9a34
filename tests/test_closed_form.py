"""--solver closed_form: the linear models' weights from their normal equations.

The decisive tests compare the checkpoint a run writes with `numpy.linalg.lstsq` and a ridge
solution made by hand, on data read back from the files the run read, and check that the
SavedModel exported from it serves those weights.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool, write_rows
from tests.test_covariates import write_covariate_csv
from tests.test_networks import two_seasons
from trainer.data.prepared import open_prepared
from trainer.data.series_reads import read_split_examples
from trainer.model.closed_form import NormalEquations, Solver, design
from trainer.model.metrics import compute_metrics
from trainer.model.spec import ModelSpec
from trainer.training.config import make_config
from trainer.util.errors import ConfigError

N_INPUTS, N_OUTPUTS = 6, 2


def ar_rows(rows: int, seed: int) -> np.ndarray:
    """Windows of an AR(2) process with noise: a linear forecast is the right one."""
    rng = np.random.default_rng(seed)
    values = np.zeros((rows, N_INPUTS + N_OUTPUTS))
    values[:, :2] = rng.normal(0, 1, (rows, 2))
    for t in range(2, N_INPUTS + N_OUTPUTS):
        values[:, t] = 0.6 * values[:, t - 1] - 0.3 * values[:, t - 2] + 5 + rng.normal(0, 0.5, rows)
    return values


def checkpoint_values(run: Path, step: int, *names: str) -> list:
    reader = tf.train.load_checkpoint(str(run / f"model.ckpt-{step}"))
    return [reader.get_tensor(name) for name in names]


def ridge(x: np.ndarray, y: np.ndarray, penalty: float):
    """The ridge solution by hand: centred features, lambda = penalty * the mean centred square
    of a feature, the intercept unpenalised."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    lam = penalty * np.mean(np.sum(xc ** 2, axis=0))
    weights = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    return weights, y_mean - x_mean @ weights


@pytest.fixture(scope="module")
def row_run(tmp_path_factory):
    """A closed-form linear run on rows, unscaled, with penalties 0 and 0.5."""
    root = tmp_path_factory.mktemp("closed_form_rows")
    train = write_rows(root / "train-0.csv", ar_rows(300, seed=1))
    write_rows(root / "eval-0.csv", ar_rows(80, seed=2))
    result = run_task(["--train_data_paths", str(train), "--eval_data_paths", str(root / "eval-0.csv"),
                       "--output_dir", str(root / "run"), "--n_inputs", str(N_INPUTS),
                       "--n_outputs", str(N_OUTPUTS), "--model", "linear", "--scaling", "none",
                       "--solver", "closed_form", "--ridge_penalties", "0,0.5",
                       "--monitored_metric", "rmse"])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "run": root / "run", "log": result.stderr + result.stdout,
            "train": np.loadtxt(train, delimiter=",", ndmin=2)}


def test_the_fit_equals_lstsq_and_a_ridge_solution_by_hand(row_run):
    rows = row_run["train"]  # the values as the CSV holds them (5 decimals), as the run read them
    x, y = rows[:, :N_INPUTS], rows[:, N_INPUTS:]
    design_matrix = np.hstack([x, np.ones((len(x), 1))])
    expected = np.linalg.lstsq(design_matrix, y, rcond=None)[0]
    kernel, bias = checkpoint_values(row_run["run"], 1, "linear/output/kernel", "linear/output/bias")
    np.testing.assert_allclose(kernel, expected[:-1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, expected[-1], rtol=1e-4, atol=1e-4)

    weights, intercept = ridge(x, y, 0.5)
    kernel, bias = checkpoint_values(row_run["run"], 2, "linear/output/kernel", "linear/output/bias")
    np.testing.assert_allclose(kernel, weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, intercept, rtol=1e-4, atol=1e-4)
    assert np.abs(weights - expected[:-1]).max() > 1e-3  # the penalty did shrink the weights

    fits = json.loads((row_run["run"] / "closed_form.json").read_text())
    assert [(f["step"], f["penalty"], f["forced"]) for f in fits["fits"]] == [(1, 0.0, ""),
                                                                               (2, 0.5, "")]
    assert fits["windows"] == 300 and fits["weights_per_output"] == N_INPUTS
    assert "closed form: the normal equations of 300 training windows" in row_run["log"]


def test_the_answer_is_the_better_penalty_on_valid_and_its_savedmodel_serves(row_run):
    run = row_run["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    fits = json.loads((run / "closed_form.json").read_text())["fits"]
    best = min(fits, key=lambda f: f["rmse"])
    assert metrics["global_step"] == best["step"]
    assert metrics["rmse"] == pytest.approx(best["rmse"], rel=1e-6)
    evaluations = json.loads((run / "evaluations.json").read_text())
    assert [e["global_step"] for e in evaluations["evaluations"]] == [1, 2]

    kernel, bias = checkpoint_values(run, best["step"], "linear/output/kernel", "linear/output/bias")
    inputs = np.loadtxt(row_run["root"] / "eval-0.csv", delimiter=",", ndmin=2)[:, :N_INPUTS]
    serve = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
    predicted = serve(rawdata=tf.constant(inputs, tf.float32))["predicted"].numpy()
    np.testing.assert_allclose(predicted, inputs @ kernel + bias, rtol=1e-5, atol=1e-4)


def test_a_gradient_run_resumes_from_the_closed_form_checkpoint(row_run, tmp_path):
    """The checkpoint holds every variable of the training graph (the optimizer's too)."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(row_run["run"], run)
    config = json.loads((run / "config.json").read_text())
    result = run_task(["--train_data_paths", config["train_data_paths"],
                       "--eval_data_paths", config["eval_data_paths"], "--output_dir", str(run),
                       "--n_inputs", str(N_INPUTS), "--n_outputs", str(N_OUTPUTS),
                       "--model", "linear", "--scaling", "none", "--train_steps", "40",
                       "--save_checkpoints_steps", "20", "--monitored_metric", "rmse"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from the checkpoint at step 2" in result.stderr
    steps = [e["global_step"] for e in
             json.loads((run / "evaluations.json").read_text())["evaluations"]]
    assert steps[:2] == [1, 2] and steps[-1] == 40


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """A closed-form linear run on series shards with a past, a future and a static covariate,
    each window less its last value (z-scored windows sum to 0: their fit at penalty 0 is
    singular, and lstsq's weights would not be comparable)."""
    root = tmp_path_factory.mktemp("closed_form_series")
    rng = np.random.default_rng(3)
    lines = ["series_id,timestamp,value,lead,promo,size"]
    for index in range(4):  # covariates drawn apart from the values: no exact collinearity
        size, value = rng.uniform(5, 50), 0.0
        lead, promo = rng.normal(size=121), (rng.random(121) < 0.3).astype(float)
        for t in range(120):
            value = 0.5 * value + lead[t] + 2 * promo[t] + 0.05 * size + rng.normal(0, 0.3)
            lines.append(f"s{index},{t},{value:.5f},{lead[t + 1]:.5f},{promo[t]:.0f},{size:.3f}")
    (root / "raw.csv").write_text("\n".join(lines) + "\n")
    prepared = run_tool("trainer.prepare", "--input", str(root / "raw.csv"), "--output_dir",
                        str(root / "prepared"), "--valid_points", "20", "--test_points", "10",
                        "--past_covariates", "lead", "--future_covariates", "promo",
                        "--static_covariates", "size", "--n_inputs", str(N_INPUTS),
                        "--n_outputs", str(N_OUTPUTS))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    result = run_task(["--data_dir", str(root / "prepared"), "--output_dir", str(root / "run"),
                       "--model", "linear", "--solver", "closed_form", "--ridge_penalties", "0",
                       "--monitored_metric", "rmse", "--scaling", "last_value"])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"prepared": root / "prepared", "run": root / "run"}


def spec_of_run(run: Path) -> ModelSpec:
    from trainer.training.experiment import model_spec
    config = json.loads((run / "config.json").read_text())
    return model_spec(make_config(**{k: v for k, v in config.items() if k in (
        "data_dir", "model", "solver", "ridge_penalties", "monitored_metric", "output_dir",
        "scaling")}))


def test_with_covariates_the_fit_equals_lstsq_on_the_features_the_model_sees(series_run):
    prepared = open_prepared(str(series_run["prepared"]))
    spec = spec_of_run(series_run["run"])
    assert [c.kind for c in spec.covariates] == ["past", "future", "static"]
    features, labels = read_split_examples(prepared.files, split="train", n_inputs=N_INPUTS,
                                           n_outputs=N_OUTPUTS, covariates=prepared.covariates)
    batch = design({k: tf.constant(v) for k, v in features.items()}, tf.constant(labels), spec)
    x, t = batch.features.numpy(), batch.targets.numpy()
    # inputs, the lead at each input step, the promo at every step, the size
    assert x.shape == (len(labels), N_INPUTS + N_INPUTS + (N_INPUTS + N_OUTPUTS) + 1)
    assert (np.abs(x).max(axis=0) == 0).sum() == 1  # the last input less itself: weight 0 in both
    expected = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), t, rcond=None)[0]
    kernel, bias = checkpoint_values(series_run["run"], 1, "linear/output/kernel",
                                     "linear/output/bias")
    np.testing.assert_allclose(kernel, expected[:-1], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(bias, expected[-1], rtol=1e-3, atol=1e-4)


def test_with_covariates_the_evaluation_scores_the_solved_weights(series_run):
    """The rmse the run's own evaluation reports (the network restored from the checkpoint)
    equals the rmse of the solved weights applied to the valid windows by hand."""
    from trainer.data.schema import FEATURE_KEY
    from trainer.model import scaling
    prepared = open_prepared(str(series_run["prepared"]))
    spec = spec_of_run(series_run["run"])
    features, labels = read_split_examples(prepared.files, split="valid", n_inputs=N_INPUTS,
                                           n_outputs=N_OUTPUTS, covariates=prepared.covariates)
    batch = design({k: tf.constant(v) for k, v in features.items()}, tf.constant(labels), spec)
    kernel, bias = checkpoint_values(series_run["run"], 1, "linear/output/kernel",
                                     "linear/output/bias")
    scaled = batch.features.numpy() @ kernel + bias
    _, state = scaling.scale_inputs(tf.constant(features[FEATURE_KEY]), scheme=spec.scaling)
    forecast = scaling.unscale(tf.constant(scaled, tf.float32), state).numpy()
    metrics = json.loads((series_run["run"] / "metrics.json").read_text())
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((forecast - labels) ** 2)), rel=1e-4)


def test_the_closed_form_learns_a_sum_of_two_seasons(tmp_path):
    train_inputs, train_labels = two_seasons(4000, seed=1)
    test_inputs, test_labels = two_seasons(500, seed=2)
    n_inputs = train_inputs.shape[1]
    write_rows(tmp_path / "train.csv", np.hstack([train_inputs, train_labels]))
    write_rows(tmp_path / "eval.csv", np.hstack([test_inputs[:200], test_labels[:200]]))
    for model in ("linear", "dlinear", "nlinear"):
        run = tmp_path / model
        result = run_task(["--train_data_paths", str(tmp_path / "train.csv"), "--eval_data_paths",
                           str(tmp_path / "eval.csv"), "--output_dir", str(run), "--model", model,
                           "--n_inputs", str(n_inputs), "--n_outputs", str(train_labels.shape[1]),
                           "--solver", "closed_form"])
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = json.loads((run / "metrics.json").read_text())
        serve = tf.saved_model.load(metrics["saved_model_path"]).signatures["serving_default"]
        forecast = serve(rawdata=tf.constant(test_inputs[200:]))["predicted"].numpy()
        scores = compute_metrics(actual=test_labels[200:], forecast=forecast,
                                 inputs=test_inputs[200:], season=8, mase_scale=None)
        best_baseline = min(scores["naive_rmse"], scores["seasonal_naive_rmse"])
        assert scores["rmse"] < 0.5 * best_baseline, (model, scores["rmse"], best_baseline)
        # dlinear's parts are collinear by construction (and z-scored windows, the default,
        # nearly): said when the penalty is raised, without a warning.
        assert ("dlinear's trend and remainder add up to its inputs" in result.stderr) == (
            model == "dlinear")
        assert "WARNING closed form" not in result.stderr


def test_a_singular_system_raises_the_penalty_and_says_why():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 8))  # 5 windows for 8 weights
    equations = NormalEquations(parameters=8, outputs=1)
    t = x @ rng.normal(size=(8, 1))
    equations.add({"windows": 5, "x_sum": x.sum(0), "t_sum": t.sum(0), "xx": x.T @ x, "xt": x.T @ t})
    solution = Solver(equations).solve(0.0)
    assert "5 training windows for 8 weights per output" in solution.forced
    assert "the penalty 0 was raised to" in solution.forced and solution.used_penalty > 0
    assert np.all(np.isfinite(solution.weights))
    # A constant feature gets weight 0 and raises nothing.
    x = np.hstack([rng.normal(size=(50, 3)), np.full((50, 1), 2.0)])
    t = x[:, :1] * 3.0
    equations = NormalEquations(parameters=4, outputs=1)
    equations.add({"windows": 50, "x_sum": x.sum(0), "t_sum": t.sum(0), "xx": x.T @ x, "xt": x.T @ t})
    solution = Solver(equations).solve(0.0)
    assert solution.forced == ""
    np.testing.assert_allclose(solution.weights[:, 0], [3.0, 0.0, 0.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("flags, message", [
    ({"model": "lstm"}, "--solver closed_form fits the models linear in their weights (dlinear, "
                        "linear, nlinear), not --model lstm; use --solver gradient"),
    ({"model": "linear", "loss": "quantile"}, "minimises the squared error (--loss mse), not "
                                              "--loss quantile"),
    ({"model": "linear", "ridge_penalties": "0,-1"}, "-1 is not >= 0"),
    ({"model": "linear", "ridge_penalties": "small"}, "are not comma-separated numbers"),
])
def test_the_flags_it_cannot_fit_are_refused_with_what_to_do(flags, message):
    with pytest.raises(ConfigError) as raised:
        make_config(solver="closed_form", **flags)
    assert message in str(raised.value)


def test_categorical_covariates_are_refused_with_what_to_do(tmp_path):
    write_covariate_csv(tmp_path / "raw.csv", series=2, length=60)
    prepared = run_tool("trainer.prepare", "--input", str(tmp_path / "raw.csv"), "--output_dir",
                        str(tmp_path / "prepared"), "--valid_points", "10", "--test_points", "5",
                        "--static_covariates", "store", "--n_inputs", str(N_INPUTS),
                        "--n_outputs", str(N_OUTPUTS))
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    result = run_task(["--data_dir", str(tmp_path / "prepared"), "--output_dir",
                       str(tmp_path / "run"), "--model", "nlinear", "--solver", "closed_form"])
    assert result.returncode != 0
    assert ("--solver closed_form cannot fit the embeddings of the categorical covariates store"
            in result.stderr), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_refit_fits_the_chosen_penalty_alone_on_train_and_valid(row_run, tmp_path):
    run = row_run["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = next(f for f in json.loads((run / "closed_form.json").read_text())["fits"]
                  if f["step"] == metrics["global_step"])
    result = run_tool("trainer.refit", "--run_dir", str(run), "--output_dir", str(tmp_path / "refit"))
    assert result.returncode == 0, result.stderr[-3000:]
    fits = json.loads((tmp_path / "refit" / "closed_form.json").read_text())
    assert [f["penalty"] for f in fits["fits"]] == [chosen["penalty"]]
    assert fits["windows"] == 300 + 80  # the train rows and the valid rows
    rows = np.vstack([row_run["train"],
                      np.loadtxt(row_run["root"] / "eval-0.csv", delimiter=",", ndmin=2)])
    weights, intercept = ridge(rows[:, :N_INPUTS], rows[:, N_INPUTS:], chosen["penalty"])
    kernel, bias = checkpoint_values(tmp_path / "refit", 1, "linear/output/kernel",
                                     "linear/output/bias")
    np.testing.assert_allclose(kernel, weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, intercept, rtol=1e-4, atol=1e-4)
