"""Benchmark CLI: input rows/s and training examples/s of the trainer beside its peers.

    python -m benchmarks.run                                  # defaults below, table on stdout
    python -m benchmarks.run --rows 200000 --json out.json -- --batch_size 512 --hidden_units 64
    python -m benchmarks.run --only series --json benchmarks/series_results.json

Three sections: `input` and `training` (on rows of the trainer's --n_inputs + --n_outputs),
and `series` (`benchmarks.series`: prepare's points/s, the bytes of the series layout against
window rows, and the training input of series shards against window rows, at a look-back of
336 and a horizon of 96). A plain run has all three; `--only` picks one.

Flags after `--` are the trainer's own (`python -m trainer.task --help`): the benchmark builds
the trainer's configuration from them, so it measures exactly what a run with those flags
does. Candidates run in turns (trainer, pyarrow, reference, trainer, ...) after one unrecorded
warm-up round, so that a slow phase of the machine hits all of them alike; the figures are the
medians of the recorded rounds.
"""

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from benchmarks import data, series
from benchmarks.input_pipelines import INPUT_DESCRIPTIONS, input_candidates
from benchmarks.measure import Result, measure
from benchmarks.training import KERAS_MODELS, training_candidates, training_description
from trainer.training.config import TrainerConfig, parse_config
from trainer.util.cli import setup_logging
from trainer.util.errors import TrainerError

logger = logging.getLogger("benchmarks")

SECTIONS = ("input", "training", "series")
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks", "data")
# The targets, as ratios of medians from one run.
TARGETS = {
    "input_vs_pyarrow": ("input", "trainer", "pyarrow", 0.25),
    "input_vs_reference": ("input", "trainer", "reference", 10.0),
    "training_vs_keras": ("training", "estimator_lstm", "keras_lstm", 1.5),
}


def build_benchmark_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark", description=__doc__.split("\n\n")[0],
        epilog="Trainer flags go after --, e.g. -- --batch_size 512 --model lstm.")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="Rows of generated data; the input benchmark reads them all once per "
                        "round (default: %(default)s).")
    parser.add_argument("--shards", type=int, default=8,
                        help="CSV files the rows are spread over (default: %(default)s).")
    parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR,
                        help="Where the generated shards live; reused while --rows, --shards and "
                        "the shape match (default: benchmarks/data).")
    parser.add_argument("--repeats", type=int, default=5,
                        help="Recorded rounds per candidate, after one warm-up round; the "
                        "figures are their medians (default: %(default)s).")
    parser.add_argument("--train_steps", type=int, default=3000,
                        help="Timed training steps per round and candidate (default: %(default)s).")
    parser.add_argument("--warmup_steps", type=int, default=200,
                        help="Untimed training steps before the clock starts (default: "
                        "%(default)s).")
    parser.add_argument("--models", default="lstm,linear",
                        help=f"Trainer models to time against Keras, comma-separated, from "
                        f"{', '.join(KERAS_MODELS)} (default: %(default)s).")
    parser.add_argument("--only", choices=SECTIONS,
                        help="Run one section of the benchmark only (default: all of them).")
    parser.add_argument("--json", metavar="PATH",
                        help="Also write the figures, ratios and settings as JSON to PATH.")
    series.add_series_flags(parser)
    return parser


def positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("rows", "shards", "repeats", "train_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.rows < args.shards:
        parser.error(f"--rows {args.rows} is fewer than --shards {args.shards}; give at least one "
                     "row per shard")
    if args.warmup_steps < 0:
        parser.error(f"--warmup_steps must be 0 or more, got {args.warmup_steps}")
    series.check_series_flags(parser, args)


def parse_args(argv: Sequence[str]):
    """(benchmark args, trainer config) from argv: benchmark flags, then -- and trainer flags."""
    argv = list(argv)
    trainer_argv: List[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, trainer_argv = argv[:split], argv[split + 1:]
    parser = build_benchmark_parser()
    args = parser.parse_args(argv)
    positive(parser, args)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in KERAS_MODELS]
    if unknown or not models:
        parser.error(f"--models {args.models!r}: each must be one of {', '.join(KERAS_MODELS)}")
    config = parse_config(trainer_argv)
    return args, config, models


def ratio(results: Dict[str, Result], numerator: str, denominator: str) -> Optional[float]:
    if numerator not in results or denominator not in results:
        return None
    return results[numerator].median / results[denominator].median


def summarize(results: Dict[str, Result]) -> Dict[str, Dict[str, object]]:
    ratios: Dict[str, Dict[str, object]] = {}
    for name, (_, numerator, denominator, target) in TARGETS.items():
        value = ratio(results, numerator, denominator)
        if value is not None:
            ratios[name] = {"ratio": value, "target": target, "met": value >= target,
                            "of": f"{numerator} / {denominator}"}
    for model in ("linear",):
        value = ratio(results, f"estimator_{model}", f"keras_{model}")
        if value is not None:
            ratios[f"training_{model}_vs_keras"] = {"ratio": value,
                                                   "of": f"estimator_{model} / keras_{model}"}
    return ratios


def format_table(results: Dict[str, Result], ratios: Dict[str, Dict[str, object]],
                 notes: Sequence[str] = ()) -> str:
    """The results (one line each), then `notes` (the series section's bytes), then the ratios.

    A ratios entry with a `ratio` is printed as "N x"; one with a `value` and a `unit` (a rate
    against its target, such as prepare's points/s) as "N unit".
    """
    runs = {name: " ".join(f"{rate:,.0f}" for rate in result.rates)
            for name, result in results.items()}
    width = max([len("runs"), *map(len, runs.values())])
    lines = [f"{'candidate':<18} {'median':>14} {'unit':<11} {'runs':<{width}} {'peak RSS':>9} "
             f"{'+RSS':>8}"]
    for name, result in results.items():
        summary = result.as_dict()
        peak = summary["peak_rss_mib"]
        increase = summary["rss_increase_mib"]
        lines.append(
            f"{result.name:<18} {result.median:>14,.0f} {summary['unit']:<11} {runs[name]:<{width}} "
            f"{'' if peak is None else f'{peak:,.0f} MiB':>9} "
            f"{'' if increase is None else f'{increase:,.0f} MiB':>8}")
    lines.append("")
    if notes:
        lines.extend([*notes, ""])
    name_width = max([29, *map(len, ratios)])
    for name, entry in ratios.items():
        target = entry.get("target")
        shown = f"{target:,.0f}" if target is not None and target >= 1000 else target
        verdict = "" if target is None else (
            f"  (target >= {shown}: {'met' if entry['met'] else 'NOT met'})")
        figure = (f"{entry['ratio']:6.3g} x " if "ratio" in entry
                  else f"{entry['value']:,.0f} {entry['unit']}")
        lines.append(f"{name:<{name_width}} {figure} = {entry['of']}{verdict}")
    return "\n".join(lines)


def run(args: argparse.Namespace, config: TrainerConfig, models: List[str]) -> Dict[str, object]:
    results: Dict[str, Result] = {}
    candidates = {}
    if args.only in (None, "input", "training"):
        files = data.ensure_dataset(args.data_dir, rows=args.rows, shards=args.shards,
                                    n_inputs=config.n_inputs, n_outputs=config.n_outputs,
                                    seed=config.seed)
    if args.only in (None, "input"):
        for name, function in input_candidates(config, files=files, rows=args.rows).items():
            results[name] = Result(name, "input", INPUT_DESCRIPTIONS[name])
            candidates[name] = function
    work_dir = tempfile.mkdtemp(prefix="benchmark-")
    if args.only in (None, "training"):
        configs = {model: dataclasses.replace(config, model=model) for model in models}
        for name, function in training_candidates(configs, files=files, steps=args.train_steps,
                                                  warmup_steps=args.warmup_steps,
                                                  work_dir=work_dir).items():
            model = name.split("_", 1)[1]
            results[name] = Result(name, "training", training_description(name, configs[model]))
            candidates[name] = function
    series_data = None
    if args.only in (None, "series"):
        series_data = series.ensure_for(args, config)
        results.update(series.series_results(args, series_data))
        candidates.update(series.series_candidates(args, config, series_data))
    for round_index in range(args.repeats + 1):
        recorded = round_index > 0
        for name, function in candidates.items():
            rate = measure(results[name], function, record=recorded)
            logger.info("round %d%s  %-16s %14s/s", round_index, "" if recorded else " (warm-up)",
                        name, f"{rate:,.0f}")
    tf.io.gfile.rmtree(work_dir)
    ratios = summarize(results)
    notes: List[str] = []
    settings = {"only": args.only, "rows": args.rows, "shards": args.shards,
                "repeats": args.repeats, "train_steps": args.train_steps,
                "warmup_steps": args.warmup_steps, "trainer_config": dataclasses.asdict(config)}
    report: Dict[str, object] = {}
    if series_data is not None:
        sizes = series.measure_bytes(series_data, points=args.series_points,
                                     short_series=args.short_series)
        ratios.update(series.summarize_series(results, sizes))
        notes = series.format_bytes(sizes, n_inputs=args.series_n_inputs,
                                    n_outputs=args.series_n_outputs)
        first_batches = series.format_first_batches(results)
        if first_batches:
            notes += ["", *first_batches]
        report["bytes"] = sizes
        settings["series"] = series.series_settings(args, series_data)
    return {
        "results": {name: result.as_dict() for name, result in results.items()},
        "ratios": ratios,
        **report,
        "settings": settings,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "table": format_table(results, ratios, notes),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, config, models = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(config.verbosity)
    logger.setLevel(config.verbosity)
    try:
        report = run(args, config, models)
    except TrainerError as error:
        logger.error("%s", error)
        return 1
    print(report["table"])
    if args.json:
        with tf.io.gfile.GFile(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
