"""Accuracy benchmark: chosen models on the public data's protocols and on synthetic data.

    ./scripts/benchmark.sh --only accuracy --data_root ../shared/data \\
        --output benchmarks/accuracy_results.json
    python -m benchmarks.accuracy --datasets synthetic --models linear,dnn --seeds 1,2 \\
        --train_steps 200                               # no data needed: what the tests run

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
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from benchmarks.intervals import M4_HORIZON, read_m4, run, write_etth2, write_m4

DATASETS = ("etth2", "etth2_covariates", "m4_weekly", "synthetic")
DEFAULTS = "defaults"  # the pseudo-model of the package's defaults
DEFAULT_MODELS = "linear,dlinear,nlinear,dnn,nbeats,tide,patchtst,lstm"
ETTH2_COVARIATES = "HUFL,HULL,MUFL,MULL,LUFL,LULL"
M4_NAIVE2 = {"smape": 9.161, "mase": 2.777}  # the competition's Naive2 on weekly data

# Per data set: what the protocol fixes (window sizes, the season of the baselines and MASE)...
WINDOW_FLAGS = {
    "etth2": ["--n_inputs", "336", "--n_outputs", "96", "--season", "24"],
    "etth2_covariates": ["--n_inputs", "336", "--n_outputs", "96", "--season", "24"],
    "m4_weekly": ["--n_inputs", "52", "--n_outputs", str(M4_HORIZON)],
    "synthetic": ["--n_inputs", "168", "--n_outputs", "24", "--season", "24"],
}
# ... and the flags every model but `defaults` shares there.
DATASET_FLAGS = {
    "etth2": ["--scaling", "global_zscore"],
    "etth2_covariates": ["--scaling", "global_zscore"],
    "m4_weekly": ["--scaling", "window_zscore"],
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


def prepare(dataset: str, data_root: Path, work: Path, *, synthetic_series: int) -> Dict[str, Any]:
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
    write_synthetic(work / "synthetic.csv", series=synthetic_series)
    run("trainer.prepare", "--input", str(work / "synthetic.csv"), "--output_dir", str(prepared),
        "--valid_points", "48", "--test_points", "48", "--n_inputs", "168", "--n_outputs", "24",
        "--season", "24", "--overwrite", log=log)
    return {"prepared": prepared}


def m4_scores(forecast: np.ndarray, actual: np.ndarray, scales: np.ndarray) -> Dict[str, float]:
    """The competition's per-series sMAPE and MASE, averaged over series, and OWA."""
    smape = np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast)), axis=1)
    mase = np.mean(np.abs(actual - forecast), axis=1) / scales
    scores = {"smape": float(smape.mean()), "mase": float(mase.mean())}
    scores["owa"] = (scores["smape"] / M4_NAIVE2["smape"] + scores["mase"] / M4_NAIVE2["mase"]) / 2
    return scores


def m4_windows(series: Dict[str, Dict[str, np.ndarray]], n_inputs: int):
    names = list(series)
    inputs = np.stack([series[name]["train"][-n_inputs:] for name in names])
    actual = np.stack([series[name]["test"] for name in names])
    scales = np.array([np.mean(np.abs(np.diff(series[name]["train"]))) for name in names])
    return inputs, actual, scales


def score(dataset: str, output: Path, context: Dict[str, Any], work: Path, tag: str
          ) -> Dict[str, float]:
    """The test figures of the run in `output`, as the data set's protocol computes them."""
    if dataset == "m4_weekly":
        from trainer.model.serving import load_exported_model

        model = load_exported_model(str(output))
        inputs, actual, scales = m4_windows(context["series"], model.n_inputs)
        scores = m4_scores(model.predict(inputs.astype(np.float32)), actual, scales)
        # The package's own per-series scoring of the same test windows must agree with the
        # competition's, computed above from the raw files.
        evaluation = output / "test.json"
        run("trainer.evaluate", "--model_dir", str(output), "--data_dir", str(context["prepared"]),
            "--split", "test", "--season", "1", "--output", str(evaluation),
            log=work / f"{tag}-evaluate.log")
        package = json.loads(evaluation.read_text())["metrics"]
        scores["package_mase_difference"] = abs(package["mase"] - scores["mase"])
        scores["package_smape_difference"] = abs(package["smape"] - scores["smape"])
        return scores
    evaluation = output / "test.json"
    run("trainer.evaluate", "--model_dir", str(output), "--data_dir", str(context["prepared"]),
        "--split", "test", "--season", "1" if dataset == "m4_weekly" else "24",
        "--output", str(evaluation), log=work / f"{tag}-evaluate.log")
    metrics = json.loads(evaluation.read_text())["metrics"]
    if dataset.startswith("etth2"):
        std = context["std"]
        return {"mse": (metrics["rmse"] / std) ** 2, "mae": metrics["mae"] / std}
    return {"rmse": metrics["rmse"], "mase": metrics["mase"]}


def baselines(dataset: str, context: Dict[str, Any], work: Path, first_run: Path
              ) -> Dict[str, Dict[str, float]]:
    """The naive (and seasonal naive) figures of the same windows, the same way."""
    if dataset == "m4_weekly":
        inputs, actual, scales = m4_windows(context["series"], 52)
        naive = np.repeat(inputs[:, -1:], M4_HORIZON, axis=1)
        return {"naive": m4_scores(naive, actual, scales)}
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
            for key in runs[0] if isinstance(runs[0][key], (int, float))}


def training_flags(dataset: str, model: str, *, train_steps: int, checkpoint_steps: int,
                   early_stopping_evals: int, extra: Sequence[str] = ()) -> Sequence[str]:
    """The flags of one run beyond data, output, seed and window sizes (none for `defaults`);
    `extra` comes last, so that it overrides the settings above."""
    if model == DEFAULTS:
        return []
    return ["--model", model, "--train_steps", str(train_steps), "--save_checkpoints_steps",
            str(checkpoint_steps), "--early_stopping_evals", str(early_stopping_evals),
            *DATASET_FLAGS[dataset], *MODEL_FLAGS.get(model, []), *COMMON_FLAGS, *extra]


def benchmark(dataset: str, models: Sequence[str], seeds: Sequence[int], *, data_root: Path,
              work: Path, train_steps: int, early_stopping_evals: int, checkpoint_steps: int,
              synthetic_series: int, say: Callable[[str], None], extra: Sequence[str] = (),
              refit: bool = False) -> Dict[str, Any]:
    context = prepare(dataset, data_root, work, synthetic_series=synthetic_series)
    results: Dict[str, Any] = {"models": {}}
    first_run: Optional[Path] = None
    for model in models:
        runs = []
        for seed in seeds:
            tag = f"{dataset}-{model}-seed{seed}"
            output = work / tag
            started = time.time()
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
            runs.append({**figures, "valid_rmse": valid["rmse"], "valid_mase": valid.get("mase"),
                         "monitored_metric": valid.get("monitored_metric"),
                         "best_step": valid["global_step"],
                         "last_step": valid["last_global_step"],
                         "seconds": round(time.time() - started, 1)})
            say(f"{dataset} {model} seed {seed}: " + "  ".join(
                f"{k} {v:.4f}" for k, v in figures.items()) + f"  ({runs[-1]['seconds']:.0f} s)")
            if first_run is None and dataset != "m4_weekly":
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
                        "M4-Weekly-{train,test}.csv (../shared/data); not needed for synthetic.")
    parser.add_argument("--datasets", default="etth2,m4_weekly,synthetic",
                        help=f"Comma-separated, from {', '.join(DATASETS)}.")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"Comma-separated --model names, or {DEFAULTS!r}: trainer.task with "
                        "no flag but the window sizes, the package's defaults.")
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
    parser.add_argument("--work_dir", default="/tmp/accuracy", help="Prepared data, runs, logs.")
    parser.add_argument("--output", default="", help="JSON file for the results.")
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set {unknown[0]!r}; expected some of {', '.join(DATASETS)}")
    if any(d != "synthetic" for d in datasets) and not args.data_root:
        parser.error("--data_root is needed for " + ", ".join(d for d in datasets if d != "synthetic")
                     + " (the folder of ETTh2.csv and M4-Weekly-*.csv)")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: Dict[str, Any] = {"settings": {
        "models": args.models.split(","), "seeds": [int(s) for s in args.seeds.split(",")],
        "train_steps": args.train_steps, "early_stopping_evals": args.early_stopping_evals,
        "checkpoint_steps": args.checkpoint_steps, "common_flags": COMMON_FLAGS,
        "window_flags": WINDOW_FLAGS, "dataset_flags": DATASET_FLAGS,
        "model_flags": MODEL_FLAGS, "trainer_flags": args.trainer_flags.split(),
        "refit": args.refit}, "datasets": {}}
    for dataset in datasets:
        results["datasets"][dataset] = benchmark(
            dataset, results["settings"]["models"], results["settings"]["seeds"],
            data_root=Path(args.data_root), work=work, train_steps=args.train_steps,
            early_stopping_evals=args.early_stopping_evals, checkpoint_steps=args.checkpoint_steps,
            synthetic_series=args.synthetic_series, say=lambda line: print(line, flush=True),
            extra=results["settings"]["trainer_flags"], refit=args.refit)
        if args.output:  # after each data set: a long run keeps what it has
            Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    results["wall_seconds"] = round(time.time() - started, 1)
    print(table(results))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
