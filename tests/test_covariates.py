"""Covariates from a raw CSV through prepare, series shards, training and the SavedModel.

The decisive test trains the same model with and without a past covariate that is the target
one step ahead (a leading indicator): a model that reads its covariates must beat the one that
cannot see it by far, on the same data and windows.
"""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_task, run_tool
from trainer.data.covariates import encode_covariates
from trainer.data.prepared import open_prepared
from trainer.data.schema import (
    CATEGORIES_KEY,
    FEATURE_KEY,
    FUTURE_CATEGORIES_KEY,
    FUTURE_KEY,
    PAST_CATEGORIES_KEY,
    PAST_KEY,
    STATIC_KEY,
)
from trainer.data.series import read_series
from trainer.data.series_reads import read_split_examples
from trainer.data.windows import split_codes
from trainer.model.heads import get_head
from trainer.model.model_fn import forward
from trainer.model.networks import NETWORKS
from trainer.model.serving import load_exported_model
from trainer.model.spec import ModelSpec
from trainer.prepare import PrepareConfig, prepare
from trainer.util.errors import DataError


def write_covariate_csv(path: Path, *, series: int = 4, length: int = 240, seed: int = 1,
                        promo_words: bool = False) -> Path:
    """White noise plus a promotion effect plus a level per series; `lead` is the noise one step
    ahead (a past covariate that gives the next value away), `promo` a 0/1 future covariate (or
    `yes`/`no`, a categorical one, with `promo_words`), `store` a static category, `size` a
    static number."""
    rng = random.Random(seed)
    lines = ["series_id,timestamp,value,lead,promo,store,size"]
    for index in range(series):
        noise = [rng.gauss(0, 1) for _ in range(length + 1)]
        for t in range(length):
            promo = 1.0 if rng.random() < 0.2 else 0.0
            value = noise[t] + 3 * promo + 2 * index
            promo_text = ("yes" if promo else "no") if promo_words else promo
            lines.append(f"s{index},{t},{value:.5f},{noise[t + 1]:.5f},{promo_text},"
                         f"{'north' if index % 2 else 'south'},{10 * (index + 1)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prepare_writes_the_covariates_after_the_fixed_columns(tmp_path):
    source = write_covariate_csv(tmp_path / "raw.csv", series=3, length=50)
    summary = prepare(PrepareConfig(input=str(source), output_dir=str(tmp_path / "p"),
                                    valid_points=5, test_points=5, past_covariates="lead",
                                    future_covariates="promo", static_covariates="store,size,series_id",
                                    shards=1))
    assert summary["columns"] == ["series", "segment", "split", "time", "target", "lead", "promo",
                                  "store", "size", "series_id"]
    by_name = {c["name"]: c for c in summary["covariates"]}
    assert by_name["store"] == {"name": "store", "kind": "static", "vocabulary": ["north", "south"]}
    assert by_name["series_id"]["vocabulary"] == ["s0", "s1", "s2"]
    assert by_name["size"]["kind"] == "static" and by_name["size"]["mean"] == pytest.approx(20.0)
    assert by_name["promo"]["kind"] == "future" and 0 < by_name["promo"]["mean"] < 1
    rows = np.loadtxt(tmp_path / "p" / "series-00000-of-00001.csv", delimiter=",", skiprows=1)
    raw = np.genfromtxt(source, delimiter=",", skip_header=1, usecols=(2, 3, 4))
    np.testing.assert_allclose(rows[:, 4:7], raw)  # target, lead, promo as written
    assert set(rows[rows[:, 0] == 1, 7]) == {0.0} and set(rows[rows[:, 0] == 0, 7]) == {1.0}
    assert set(rows[rows[:, 0] == 2, 9]) == {2.0}  # the series id as its vocabulary id
    prepared = open_prepared(str(tmp_path / "p"))
    features, labels = read_split_examples(prepared.files, split="test", n_inputs=4, n_outputs=2,
                                           covariates=prepared.covariates)
    assert features[FEATURE_KEY].shape == (12, 4) and labels.shape == (12, 2)
    assert features[PAST_KEY].shape == (12, 4, 1) and features[FUTURE_KEY].shape == (12, 6, 1)
    assert features[STATIC_KEY].shape == (12, 1) and features[CATEGORIES_KEY].shape == (12, 2)
    # The past covariate over the inputs is the target one step later.
    np.testing.assert_allclose(features[PAST_KEY][:, :-1, 0] + 0, features[FEATURE_KEY][:, 1:]
                               - 3 * features[FUTURE_KEY][:, 1:4, 0]
                               - 2 * features[CATEGORIES_KEY][:, 1:2], atol=1e-4)


def read_with(tmp_path, text, **names):
    path = tmp_path / "raw.csv"
    path.write_text(text)
    columns = [n for kind in names.values() for n in kind]
    series, _ = read_series(str(path), extra_columns=columns, gap_factor=0)
    codes = [split_codes(s, {"valid_points": 0, "test_points": 0}) for s in series]
    return encode_covariates(series, {k: list(v) for k, v in names.items()}, codes=codes,
                             path=str(path), series_id_column="series_id")


def test_bad_covariates_name_the_line_and_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"line 3 of .*raw.csv \(series 'a'\): past covariate 'x' "
                                        r"is 'high', not a number, while other values of the "
                                        r"column are numbers; fix it"):
        read_with(tmp_path, "series_id,timestamp,value,x\na,0,1,2\na,1,1,high\n", past=["x"])
    with pytest.raises(DataError, match=r"line 3 of .*: future covariate 'x' is empty; fill it"):
        read_with(tmp_path, "series_id,timestamp,value,x\na,0,1,2\na,1,1,\n", future=["x"])
    with pytest.raises(DataError, match=r"series 'a' of .*: static covariate 'x' changes within the "
                                        r"series \('n' on line 2, 's' on line 3\)"):
        read_with(tmp_path, "series_id,timestamp,value,x\na,0,1,n\na,1,1,s\n", static=["x"])
    with pytest.raises(DataError, match=r"has no column 'y' \(its columns: series_id, timestamp, "
                                        r"value, x\); check the covariate flags"):
        read_with(tmp_path, "series_id,timestamp,value,x\na,0,1,n\n", static=["y"])


@pytest.mark.parametrize("head,levels", [("mse", ()), ("quantile", (0.1, 0.5, 0.9, 0.95))])
def test_every_network_takes_every_kind_of_covariate(head, levels):
    from trainer.data.covariates import Covariate

    covariates = (Covariate("p", "past"), Covariate("pc", "past", vocabulary=("u", "d")),
                  Covariate("f", "future", mean=1.0, std=2.0),
                  Covariate("fc", "future", vocabulary=("x", "y", "z")),
                  Covariate("s", "static"), Covariate("c", "static", vocabulary=("a", "b", "c")))
    for model, network in NETWORKS.items():
        n_inputs = max(6, network.min_n_inputs)
        with tf.Graph().as_default():
            features = {FEATURE_KEY: tf.random.normal([5, n_inputs]),
                        PAST_KEY: tf.random.normal([5, n_inputs, 1]),
                        FUTURE_KEY: tf.random.normal([5, n_inputs + 3, 1]),
                        STATIC_KEY: tf.random.normal([5, 1]),
                        PAST_CATEGORIES_KEY: tf.random.uniform([5, n_inputs, 1], 0, 2, tf.int64),
                        FUTURE_CATEGORIES_KEY: tf.random.uniform([5, n_inputs + 3, 1], 0, 3,
                                                                 tf.int64),
                        CATEGORIES_KEY: tf.constant([[0], [1], [2], [1], [0]], tf.int64)}
            # 16 units: with 4, some draws left every ReLU of dnn dead on the 5 windows.
            spec = ModelSpec(model=model, hidden_units=16, n_inputs=n_inputs, n_outputs=3, head=head,
                             quantiles=levels, optimizer="sgd", learning_rate=0.1,
                             clip_gradient_norm=0.0, scaling="window_zscore", season=1,
                             covariates=covariates)
            output = forward(features, spec, get_head(head, levels)).output
            # The covariates' own tables (outside the network's scope; patchtst has embeddings too).
            embeddings = [v for v in tf.compat.v1.trainable_variables()
                          if "embedding" in v.name and "/" not in v.name]
            assert len(embeddings) == 3, [v.name for v in embeddings]
            gradients = tf.gradients(tf.reduce_sum(output), [features[PAST_KEY], features[FUTURE_KEY],
                                                             features[STATIC_KEY], *embeddings])
            gradients = [tf.convert_to_tensor(g) for g in gradients]  # embeddings: sparse
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                values, grads = session.run([output, gradients])
        assert values.shape == (5, 3, max(1, len(levels))), model
        assert np.all(np.diff(values, axis=-1) > 0), model  # quantiles never cross
        # Each kind reaches the output: its gradient is not zero everywhere.
        assert all(np.abs(g).sum() > 0 for g in grads), (model, [float(np.abs(g).sum()) for g in grads])


@pytest.mark.e2e
def test_a_leading_covariate_is_used_and_the_savedmodel_takes_the_covariates(tmp_path):
    # promo as yes/no: a categorical future covariate, embedded per step.
    source = write_covariate_csv(tmp_path / "raw.csv", promo_words=True)
    flags = ["--input", str(source), "--valid_points", "30", "--test_points", "30"]
    with_covariates = run_tool("trainer.prepare", *flags, "--output_dir", str(tmp_path / "with"),
                               "--past_covariates", "lead", "--future_covariates", "promo",
                               "--static_covariates", "store,series_id")
    assert with_covariates.returncode == 0, with_covariates.stderr[-3000:]
    without = run_tool("trainer.prepare", *flags, "--output_dir", str(tmp_path / "without"))
    assert without.returncode == 0, without.stderr[-3000:]
    metrics, logs = {}, {}
    for name in ("with", "without"):
        result = run_task(["--data_dir", str(tmp_path / name), "--output_dir", str(tmp_path / f"run_{name}"),
                           "--n_inputs", "10", "--n_outputs", "1", "--model", "linear",
                           "--optimizer", "adam", "--learning_rate", "0.05", "--train_steps", "1500",
                           "--batch_size", "32", "--save_checkpoints_steps", "1500",
                           # Unscaled: the lead covariate then gives the next value away exactly.
                           "--scaling", "none"])
        assert result.returncode == 0, result.stderr[-4000:]
        metrics[name] = json.loads((tmp_path / f"run_{name}" / "metrics.json").read_text())
        logs[name] = result.stderr
    assert ("covariates: lead (past), promo (future, categorical), store (static, categorical), "
            "series_id (static, categorical)") in logs["with"]
    assert "covariates:" not in logs["without"]
    # The noise is N(0, 1) and the promotion adds 3 on 20% of the days: without the covariates
    # nothing below an RMSE of about 1.5 is possible; with them the next value is given away.
    assert metrics["without"]["rmse"] > 1.2, metrics["without"]
    assert metrics["with"]["rmse"] < 0.3 * metrics["without"]["rmse"], metrics
    # The SavedModel takes the covariates in the documented layout and forecasts the same.
    exported = load_exported_model(str(tmp_path / "run_with"))
    assert {name: shape for name, (_, shape) in exported.inputs.items()} == {
        FEATURE_KEY: [None, 10], PAST_KEY: [None, 10, 1], FUTURE_CATEGORIES_KEY: [None, 11, 1],
        CATEGORIES_KEY: [None, 2]}
    prepared = open_prepared(str(tmp_path / "with"))
    features, labels = read_split_examples(prepared.files, split="test", n_inputs=10, n_outputs=1,
                                           covariates=prepared.covariates)
    inputs = features.pop(FEATURE_KEY)
    forecast = exported.predict(inputs, features)
    assert np.sqrt(np.mean((forecast - labels) ** 2)) < 0.3 * metrics["without"]["rmse"]
    with pytest.raises(DataError, match=r"takes the input 'past_covariates' of shape \[None, 10, 1\]"):
        exported.predict(inputs, {k: v for k, v in features.items() if k != PAST_KEY})
    with pytest.raises(DataError, match=r"takes 'future_categories' of shape \[windows, 11, 1\], got "
                                        r"\[120, 10, 1\]"):
        exported.predict(inputs, {**features,
                                  FUTURE_CATEGORIES_KEY: features[FUTURE_CATEGORIES_KEY][:, :10]})
    # trainer.evaluate feeds them from the prepared directory.
    evaluation = run_tool("trainer.evaluate", "--model_dir", str(tmp_path / "run_with"), "--data_dir",
                          str(tmp_path / "with"), "--output", str(tmp_path / "test.json"))
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert json.loads((tmp_path / "test.json").read_text())["windows"] == 120
    # trainer.predict feeds them from a raw CSV: a backtest of the last point of each series...
    backtest = run_tool("trainer.predict", "--model_dir", str(tmp_path / "run_with"), "--series",
                        str(source), "--backtest", "--output", str(tmp_path / "back.csv"))
    assert backtest.returncode == 0, backtest.stderr[-3000:]
    rows = np.genfromtxt(tmp_path / "back.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert len(rows) == 4
    assert np.abs(rows["forecast"] - rows["actual"]).mean() < 0.5  # the noise alone is about 0.8
    # ... and a forecast past the end, from rows with an empty value and the future covariates.
    future = tmp_path / "future.csv"
    lines = source.read_text().splitlines()
    future.write_text("\n".join(lines + [f"s{i},240,,,yes,{'north' if i % 2 else 'south'},{10 * (i + 1)}"
                                         for i in range(4)]) + "\n")
    ahead = run_tool("trainer.predict", "--model_dir", str(tmp_path / "run_with"), "--series",
                     str(future), "--output", str(tmp_path / "ahead.csv"))
    assert ahead.returncode == 0, ahead.stderr[-3000:]
    rows = np.genfromtxt(tmp_path / "ahead.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert rows["timestamp"].tolist() == [240] * 4
    # The promotion (future covariate) of the horizon row lifts the forecast by about 3.
    no_promo = tmp_path / "no_promo.csv"
    no_promo.write_text(future.read_text().replace(",,,yes,", ",,,no,"))
    lower = run_tool("trainer.predict", "--model_dir", str(tmp_path / "run_with"), "--series",
                     str(no_promo), "--output", str(tmp_path / "lower.csv"))
    assert lower.returncode == 0, lower.stderr[-3000:]
    rows_lower = np.genfromtxt(tmp_path / "lower.csv", delimiter=",", names=True, dtype=None,
                               encoding=None)
    np.testing.assert_allclose(rows["forecast"] - rows_lower["forecast"], 3.0, atol=0.5)
    missing = run_tool("trainer.predict", "--model_dir", str(tmp_path / "run_with"), "--series",
                       str(source), "--output", str(tmp_path / "f.csv"))
    assert missing.returncode == 1
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(future.read_text().replace(",,,yes,", ",,,maybe,"))
    refused = run_tool("trainer.predict", "--model_dir", str(tmp_path / "run_with"), "--series",
                       str(unknown), "--output", str(tmp_path / "u.csv"))
    assert refused.returncode == 1
    assert ("future covariate 'promo' is 'maybe', which the model never saw (its values: no, yes)"
            in refused.stderr)
    assert ("series 's0' of " in missing.stderr and "has 0 rows after its last value; the model "
            "forecasts 1 steps and needs the future covariates (promo) of each" in missing.stderr)


def test_calendar_features_are_future_covariates_from_the_timestamps(tmp_path):
    source = tmp_path / "hourly.csv"
    # 2024-01-01 is a Monday; 50 hours from 00:00.
    source.write_text("timestamp,value\n" + "".join(
        f"2024-01-{1 + h // 24:02d}T{h % 24:02d}:00:00,{h}\n" for h in range(50)))
    summary = prepare(PrepareConfig(input=str(source), output_dir=str(tmp_path / "p"), shards=1,
                                    valid_points=5, test_points=5, calendar_features="auto"))
    assert summary["calendar_features"] == ["calendar_hour_of_day", "calendar_day_of_week",
                                            "calendar_day_of_year"]
    assert [c["kind"] for c in summary["covariates"]] == ["future"] * 3
    rows = np.loadtxt(tmp_path / "p" / "series-00000-of-00001.csv", delimiter=",", skiprows=1)
    hour, weekday, yearday = rows[:, 5], rows[:, 6], rows[:, 7]
    np.testing.assert_allclose(hour[:24], np.arange(24) / 23 - 0.5)
    np.testing.assert_allclose(weekday[[0, 23, 24, 49]], [-0.5, -0.5, 1 / 6 - 0.5, 2 / 6 - 0.5])
    np.testing.assert_allclose(yearday[[0, 24, 48]], [-0.5, 1 / 365 - 0.5, 2 / 365 - 0.5])
    daily = tmp_path / "daily.csv"
    daily.write_text("timestamp,value\n" + "".join(f"2024-03-{d:02d},{d}\n" for d in range(1, 31)))
    summary = prepare(PrepareConfig(input=str(daily), output_dir=str(tmp_path / "d"),
                                    valid_points=3, test_points=3, calendar_features="auto",
                                    n_inputs=7, n_outputs=2))
    assert summary["calendar_features"] == ["calendar_day_of_week", "calendar_day_of_year"]
    index = tmp_path / "index.csv"
    index.write_text("timestamp,value\n" + "".join(f"{t},{t}\n" for t in range(30)))
    summary = prepare(PrepareConfig(input=str(index), output_dir=str(tmp_path / "i"),
                                    valid_points=3, test_points=3, calendar_features="auto",
                                    n_inputs=7, n_outputs=2))
    assert summary["calendar_features"] == [] and summary["covariates"] == []
