"""Prediction intervals on the public benchmark data: coverage, wQL and MSIS of the quantile head.

    python -m benchmarks.intervals --data_root ../shared/data --seeds 1,2,3 \\
        --output benchmarks/interval_results.json

Runs the package's own commands (`trainer.prepare`, `trainer.task --loss quantile --quantiles
0.025,0.1,0.5,0.9,0.975`, `trainer.evaluate`) as a user would, on the protocols of
`../shared/data/README.md`, once per seed, and writes per seed and as median (range):

- **ETTh2** (target OT, rows [0, 8640) train, [8640, 11520) valid, [11520, 14400) test,
  look-back 336, horizon 96): `--model linear --scaling global_zscore --optimizer adam
  --learning_rate 0.001`; on the 2785 test windows, the coverage of the 80% and 95%
  intervals, wQL, and the MSE of the median on the z-scored values, beside the naive
  forecast's empirical intervals.
- **M4 Weekly** (each train row followed by its 13 test points is one series;
  `--valid_points 13 --test_points 13`, so the test split is the competition's horizon;
  look-back 52): `--model dnn --hidden_units 128 --scaling window_zscore --optimizer adam
  --learning_rate 0.001`; coverage and sMAPE over the 359 test windows, and MSIS as the
  competition scores it: per series, scaled by that series' in-sample mean |y[t] - y[t-1]|
  over its train points, then averaged over the series, for the model and for the naive
  forecast with the empirical intervals of `trainer.model.metrics.baseline_quantiles`.

Settings are those chosen on the validation splits for the point forecast (docs/data.md,
"Covariates"); the quantile head adds no setting of its own. Each run calibrates its intervals
on the valid split (`--calibrate_intervals auto`, the default for the quantile head), and both
SavedModels are scored on test: the `uncalibrated_*` figures are the head as trained.
"""

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

LEVELS = "0.025,0.1,0.5,0.9,0.975"
ETTH2_ROWS, ETTH2_VALID, ETTH2_TEST = 14400, 8640, 11520
M4_HORIZON = 13


def run(module: str, *args: str, log: Path) -> str:
    """Run `python -m MODULE ARGS`; its stderr goes to `log`; returns its stdout."""
    with log.open("w") as handle:
        result = subprocess.run([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                                stderr=handle, text=True)
    if result.returncode:
        raise SystemExit(f"{module} {' '.join(args)} exited {result.returncode}; see {log}")
    return result.stdout


def write_etth2(source: Path, target: Path, *, columns: Sequence[str] = ()) -> Dict[str, str]:
    """The first 14,400 rows of ETTh2 (date, OT and `columns`), and the dates where valid and
    test start."""
    with source.open() as handle:
        rows = list(csv.DictReader(handle))[:ETTH2_ROWS]
    names = ["date", *columns, "OT"]
    with target.open("w") as handle:
        handle.write(",".join(names) + "\n")
        handle.writelines(",".join(row[name] for name in names) + "\n" for row in rows)
    return {"valid_start": rows[ETTH2_VALID]["date"], "test_start": rows[ETTH2_TEST]["date"]}


def read_m4(data_root: Path) -> Dict[str, Dict[str, np.ndarray]]:
    """M4 Weekly: {series id: {"train": values, "test": the 13 values after them}}."""
    series: Dict[str, Dict[str, np.ndarray]] = {}
    for split in ("train", "test"):
        with (data_root / f"M4-Weekly-{split}.csv").open() as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                values = np.array([float(v) for v in row[1:] if v != ""])
                series.setdefault(row[0], {})[split] = values
    return series


def write_m4(series: Dict[str, Dict[str, np.ndarray]], target: Path) -> None:
    """One long CSV: each series' train values then its test values, at integer time steps."""
    with target.open("w") as handle:
        handle.write("series_id,timestamp,value\n")
        for name, parts in series.items():
            values = np.concatenate([parts["train"], parts["test"]])
            handle.writelines(f"{name},{step},{value!r}\n" for step, value in enumerate(values))


def m4_msis(model_dir: Path, series: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, float]:
    """Per-series MSIS (M4 definition) of the model's and the naive forecast's 95% interval,
    averaged over series, and the coverage of each."""
    import tensorflow as tf

    from trainer.model.metrics import MSIS_ALPHA, baseline_quantiles, naive_forecast
    from trainer.model.serving import load_exported_model

    model = load_exported_model(str(model_dir))
    names = list(series)
    inputs = np.stack([series[name]["train"][-model.n_inputs:] for name in names])
    actual = np.stack([series[name]["test"] for name in names])
    scales = np.array([np.mean(np.abs(np.diff(series[name]["train"]))) for name in names])
    levels = list(model.levels)
    lower, upper = levels.index(0.025), levels.index(0.975)
    model_quantiles = model.forecast(inputs.astype(np.float32))["quantiles"]
    rawdata = tf.constant(inputs, tf.float64)
    naive_quantiles = baseline_quantiles(
        rawdata, naive_forecast(rawdata, n_outputs=model.n_outputs), levels, lag=1).numpy()
    results = {}
    for label, quantiles in (("model", model_quantiles), ("naive", naive_quantiles)):
        low, high = quantiles[..., lower], quantiles[..., upper]
        score = ((high - low) + 2 / MSIS_ALPHA * np.maximum(low - actual, 0)
                 + 2 / MSIS_ALPHA * np.maximum(actual - high, 0))
        results[f"{label}_msis"] = float(np.mean(score.mean(axis=1) / scales))
        results[f"{label}_coverage_95"] = float(100 * np.mean((actual >= low) & (actual <= high)))
    return results


def etth2_run(work: Path, seed: int, *, steps: int, prepared: Path, std: float) -> Dict[str, Any]:
    output = work / f"etth2-seed{seed}"
    run("trainer.task", "--data_dir", str(prepared), "--output_dir", str(output), "--overwrite",
        "--n_inputs", "336", "--n_outputs", "96", "--model", "linear", "--scaling",
        "global_zscore", "--optimizer", "adam", "--learning_rate", "0.001", "--train_steps",
        str(steps), "--seed", str(seed), "--loss", "quantile", "--quantiles", LEVELS,
        "--save_checkpoints_steps", str(steps), "--eval_throttle_secs", "0",
        log=work / f"etth2-seed{seed}.log")
    valid = json.loads((output / "metrics.json").read_text())
    before, after = (test_metrics(work, export, prepared, f"etth2-seed{seed}-{label}")
                     for label, export in exports(output, valid))
    metrics = after["metrics"]
    return {"windows": after["windows"],
            "mse_z": (metrics["rmse"] / std) ** 2, "naive_mse_z": (metrics["naive_rmse"] / std) ** 2,
            **{key: metrics[key] for key in ("coverage_80", "coverage_95", "wql", "width_80",
                                             "naive_coverage_80", "naive_coverage_95",
                                             "naive_wql")},
            **{f"uncalibrated_{key}": before["metrics"][key]
               for key in ("coverage_80", "coverage_95", "wql", "width_80")},
            **valid_coverage(valid)}


def exports(output: Path, valid: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The run's answer before calibration and after (its best export, calibrated by default)."""
    calibration = valid.get("calibration") or {}
    if "uncalibrated_saved_model_path" not in calibration:
        raise SystemExit(f"{output}/metrics.json has no calibration: {calibration}")
    return [("uncalibrated", calibration["uncalibrated_saved_model_path"]),
            ("calibrated", valid["saved_model_path"])]


def test_metrics(work: Path, export: str, prepared: Path, tag: str) -> Dict[str, Any]:
    """trainer.evaluate of the SavedModel `export` on the test split."""
    evaluation = work / f"{tag}-test.json"
    run("trainer.evaluate", "--model_dir", export, "--data_dir", str(prepared), "--split", "test",
        "--output", str(evaluation), log=work / f"{tag}-evaluate.log")
    return json.loads(evaluation.read_text())


def valid_coverage(valid: Dict[str, Any]) -> Dict[str, float]:
    """The valid split's coverage before calibration and after (the offsets were fitted there)."""
    calibration = valid["calibration"]
    return {f"valid_coverage_{level}_{when}": calibration[f"coverage_{when}"][level]
            for level in ("80", "95") for when in ("before", "after")}


def m4_run(work: Path, seed: int, *, steps: int, prepared: Path,
           series: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, Any]:
    output = work / f"m4-seed{seed}"
    run("trainer.task", "--data_dir", str(prepared), "--output_dir", str(output), "--overwrite",
        "--n_inputs", "52", "--n_outputs", str(M4_HORIZON), "--model", "dnn", "--hidden_units",
        "128", "--scaling", "window_zscore", "--optimizer", "adam", "--learning_rate", "0.001",
        "--train_steps", str(steps), "--seed", str(seed), "--loss", "quantile", "--quantiles",
        LEVELS, "--save_checkpoints_steps", str(steps), "--eval_throttle_secs", "0",
        log=work / f"m4-seed{seed}.log")
    valid = json.loads((output / "metrics.json").read_text())
    (_, uncalibrated), (_, calibrated) = exports(output, valid)
    before, after = (test_metrics(work, export, prepared, f"m4-seed{seed}-{label}")
                     for label, export in exports(output, valid))
    metrics = after["metrics"]
    return {"windows": after["windows"],
            **{key: metrics[key] for key in ("smape", "coverage_80", "coverage_95", "wql",
                                             "naive_smape", "naive_coverage_80", "naive_wql")},
            **m4_msis(Path(calibrated), series),
            **{f"uncalibrated_{key}": before["metrics"][key]
               for key in ("coverage_80", "coverage_95", "wql")},
            **{f"uncalibrated_{key}": value for key, value in
               m4_msis(Path(uncalibrated), series).items() if key.startswith("model_")},
            **valid_coverage(valid)}


# --point_models: the point forecasts chosen in docs/accuracy.md, given intervals
# by conformal calibration alone (`--calibrate_intervals on`): no quantile head is trained.
POINT_MODELS = {
    "etth2": ["--model", "nlinear", "--solver", "closed_form", "--scaling", "global_zscore",
              "--n_inputs", "336", "--n_outputs", "96"],
    "m4": ["--model", "nbeats", "--hidden_units", "128", "--scaling", "window_zscore",
           "--optimizer", "adam", "--learning_rate", "0.001", "--batch_size", "64",
           "--save_checkpoints_steps", "500", "--early_stopping_evals", "3",
           "--n_inputs", "52", "--n_outputs", str(M4_HORIZON)],
}


def point_run(work: Path, dataset: str, seed: int, *, steps: int, prepared: Path,
              series: Dict[str, Dict[str, np.ndarray]] = None) -> Dict[str, Any]:
    """A point model of POINT_MODELS with conformal intervals, scored on test."""
    tag = f"{dataset}-point-seed{seed}"
    output = work / tag
    started = time.time()
    run("trainer.task", "--data_dir", str(prepared), "--output_dir", str(output), "--overwrite",
        *POINT_MODELS[dataset], "--train_steps", str(steps), "--seed", str(seed),
        "--calibrate_intervals", "on", "--quantiles", LEVELS, log=work / f"{tag}.log")
    seconds = time.time() - started
    valid = json.loads((output / "metrics.json").read_text())
    metrics = test_metrics(work, valid["saved_model_path"], prepared, tag)["metrics"]
    figures = {key: metrics[key] for key in ("coverage_80", "coverage_95", "wql")}
    if series is not None:
        figures.update(m4_msis(Path(valid["saved_model_path"]), series))
    calibration = valid["calibration"]
    return {**figures, "valid_coverage_80_after": calibration["coverage_after"]["80"],
            "valid_coverage_95_after": calibration["coverage_after"]["95"],
            "seconds": round(seconds, 1)}


def summary(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Median and range over the seeds of every figure."""
    return {key: {"median": statistics.median(r[key] for r in runs),
                  "min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
            for key in runs[0]}


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intervals", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--data_root", required=True, help="The folder of ETTh2.csv and "
                        "M4-Weekly-{train,test}.csv (../shared/data).")
    parser.add_argument("--work_dir", default="/tmp/intervals", help="Where the prepared data, "
                        "runs and logs go.")
    parser.add_argument("--seeds", default="1,2,3", help="Comma-separated training seeds.")
    parser.add_argument("--train_steps", type=int, default=4000, help="Training steps per run.")
    parser.add_argument("--only", choices=("etth2", "m4"), default=None,
                        help="Run one data set only.")
    parser.add_argument("--point_models", action="store_true",
                        help="Also give the point models chosen in the README (ETTh2: nlinear in "
                        "closed form, one run; M4 Weekly: nbeats, per seed) intervals by "
                        "--calibrate_intervals on, and score them on test.")
    parser.add_argument("--output", default="", help="JSON file for the results.")
    args = parser.parse_args(argv)
    data_root, work = Path(args.data_root), Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results: Dict[str, Any] = {"levels": LEVELS, "train_steps": args.train_steps, "seeds": seeds}
    started = time.time()
    if args.only in (None, "etth2"):
        dates = write_etth2(data_root / "ETTh2.csv", work / "etth2.csv")
        prepared = work / "etth2-prepared"
        run("trainer.prepare", "--input", str(work / "etth2.csv"), "--output_dir", str(prepared),
            "--target", "OT", "--timestamp_column", "date", "--valid_start", dates["valid_start"],
            "--test_start", dates["test_start"], "--n_inputs", "336", "--n_outputs", "96",
            "--overwrite", log=work / "etth2-prepare.log")
        std = float(json.loads((prepared / "prepare.json").read_text())["statistics"]["std"])
        runs: List[Dict[str, Any]] = [etth2_run(work, seed, steps=args.train_steps,
                                                prepared=prepared, std=std) for seed in seeds]
        results["etth2"] = {"runs": runs, "summary": summary(runs)}
        print(json.dumps({"etth2": results["etth2"]["summary"]}, indent=1), flush=True)
        if args.point_models:  # closed form: no randomness, one run
            point = [point_run(work, "etth2", seeds[0], steps=args.train_steps, prepared=prepared)]
            results["etth2_point"] = {"runs": point, "summary": summary(point)}
    if args.only in (None, "m4"):
        series = read_m4(data_root)
        write_m4(series, work / "m4.csv")
        prepared = work / "m4-prepared"
        run("trainer.prepare", "--input", str(work / "m4.csv"), "--output_dir", str(prepared),
            "--valid_points", str(M4_HORIZON), "--test_points", str(M4_HORIZON), "--n_inputs",
            "52", "--n_outputs", str(M4_HORIZON), "--overwrite", log=work / "m4-prepare.log")
        runs = [m4_run(work, seed, steps=args.train_steps, prepared=prepared, series=series)
                for seed in seeds]
        results["m4_weekly"] = {"runs": runs, "summary": summary(runs)}
        print(json.dumps({"m4_weekly": results["m4_weekly"]["summary"]}, indent=1), flush=True)
        if args.point_models:
            point = [point_run(work, "m4", seed, steps=args.train_steps, prepared=prepared,
                               series=series) for seed in seeds]
            results["m4_point"] = {"runs": point, "summary": summary(point)}
    results["wall_seconds"] = round(time.time() - started, 1)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
