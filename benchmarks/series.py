"""Series section (`--only series`): the series layout of `trainer.prepare` beside window rows.

At a look-back of `--series_n_inputs` (336) and a horizon of `--series_n_outputs` (96), on
data generated once under DATA_DIR/series (`ensure_series_data`):

- **data**: raw long CSVs (`series_id,timestamp,value`, hourly ISO 8601 timestamps from
  2020-01-01T00:00:00, values with 5 decimals), each series a level plus a daily and a
  weekly season and Gaussian noise: ONE series of `--series_points` points (`raw-long.csv`)
  and `--short_series` series sharing the same total (`raw-short.csv`, 2000 series of 500
  points by default, all on the same hours). Every point is in the train split
  (`--valid_fraction 0 --test_fraction 0`): a held-out tail of 96 + 96 points per series
  would leave a 500-point series no training window of 432 points, and would make the two
  layouts hold different windows (the windows layout repeats the inputs of held-out
  windows).
- **prepare** (points/s; `prepare_long`, `prepare_short`): `trainer.prepare.prepare`
  in-process, `--layout series`, on each raw CSV, whatever reader and writer it has now;
  reading, checking, splitting, the window counts, the statistics and the shards all count.
  Its output (`prepared-long/`, `prepared-short/`) is what the series candidates then read.
- **bytes**: writing every window of the long series as a row would take about 3.5 GB, so
  both layouts are written, untimed, of one slice of the same data: the first
  `--series_slice_points` points of the long series (`raw-long-slice.csv`), and as many whole
  short series as hold that many points (`raw-short-slice.csv`). The windows layout is every
  window of n_inputs + n_outputs values, stride 1, as a row. The figures are the bytes of the
  shards (prepare.json left out).
- **training input** (examples/s): the trainer's training input, drained in the graph
  (`benchmarks.input_pipelines.drain_timed`) for `--series_examples` examples each, after the
  files were read once untimed. The figure is the examples/s once the first batch is out,
  what a training run then gets; the seconds to the first batch (iterator, reading and
  decoding the first files, compiling) and the examples/s of the whole drain with it are
  reported beside it (`first_batch_secs`, `examples_per_sec_with_first_batch`).
  `series_long` / `series_short`: `make_series_input_fn` over the series shards of the
  whole data (windows cut in tf.data); `rows_long` / `rows_short`:
  `trainer.training.data_source.make_train_input_fn` over the window rows of the slice (rows
  repeat once the slice's windows are used up, as training repeats them). Both with the
  trainer config's `--batch_size`, `--steps_per_run`, `--seed` (and `--shuffle_buffer_size`
  for rows), as after `--` on the command line.

The slices and their two layouts are rewritten only when a `benchmark.json` beside them
records other settings; the raw CSVs likewise. `prepare_*` rewrite `prepared-*/` every round.
"""

import argparse
import dataclasses
import itertools
import json
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from benchmarks.input_pipelines import Drained, drain_timed, read_through
from benchmarks.measure import Result, Stopwatch
from trainer.data.prepared import open_prepared
from trainer.data.series_pipeline import make_series_input_fn
from trainer.prepare import PrepareConfig, prepare
from trainer.training.config import TrainerConfig
from trainer.training.data_source import make_train_input_fn

logger = logging.getLogger(__name__)

SUBDIRECTORY = "series"
SPEC_FILENAME = "benchmark.json"
SPEC_VERSION = 1  # raised when what is generated changes
HEADER = "series_id,timestamp,value\n"
START = np.datetime64("2020-01-01T00", "h")
DECIMALS = 5
WRITE_CHUNK_POINTS = 100_000
DAY, WEEK = 24, 168  # the seasons, in hourly steps
NOISE_STDDEV = 0.5

DEFAULT_N_INPUTS, DEFAULT_N_OUTPUTS = 336, 96
DEFAULT_POINTS = 1_000_000
DEFAULT_SHORT_SERIES = 2000
DEFAULT_SLICE_POINTS = 100_000
DEFAULT_EXAMPLES = 384_000  # a training run at the trainer's defaults: 6000 steps of 64

PREPARE_TARGET = 1e6  # points/s
# The extras of a training-input candidate (`timed`).
FIRST_BATCH = "first_batch_secs"
WITH_FIRST_BATCH = "examples_per_sec_with_first_batch"
# name -> (numerator, denominator, target or None), as run.py's TARGETS; over Result medians.
EXAMPLE_TARGETS = {
    "series_vs_rows_examples": ("series_long", "rows_long", 40.0),
    "series_vs_rows_examples_short": ("series_short", "rows_short", 40.0),
}
BYTES_TARGETS = {"long": ("rows_vs_series_bytes", 50.0), "short": ("rows_vs_series_bytes_short", None)}
PREPARE_TARGETS = {"prepare_long": "prepare_points_per_sec",
                   "prepare_short": "prepare_points_per_sec_short"}


@dataclasses.dataclass(frozen=True)
class SeriesData:
    """The paths of the generated data of this section (see the module's docstring)."""

    directory: str
    raw: Dict[str, str]  # "long", "short" -> the raw CSV of all points
    slices: Dict[str, str]  # "long", "short" -> the raw CSV of the slice
    slice_points: Dict[str, int]
    slice_series: Dict[str, int]

    def prepared(self, kind: str) -> str:
        """Where `prepare_<kind>` writes the series shards of all points."""
        return f"{self.directory}/prepared-{kind}"

    def slice_dir(self, kind: str, layout: str) -> str:
        return f"{self.directory}/slice-{kind}-{layout}"


# --- flags ---------------------------------------------------------------------------------


def add_series_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this section, on the benchmark's parser."""
    group = parser.add_argument_group("series section (--only series)")
    group.add_argument("--series_points", type=int, default=DEFAULT_POINTS,
                       help="Points of the one long series, and the total of the short series "
                       "(default: %(default)s).")
    group.add_argument("--short_series", type=int, default=DEFAULT_SHORT_SERIES,
                       help="How many short series share --series_points between them, each of "
                       "--series_points / --short_series points (default: %(default)s: 500 "
                       "points each).")
    group.add_argument("--series_n_inputs", type=int, default=DEFAULT_N_INPUTS,
                       help="Look-back of the windows, in points (the trainer's --n_inputs for "
                       "this section; default: %(default)s).")
    group.add_argument("--series_n_outputs", type=int, default=DEFAULT_N_OUTPUTS,
                       help="Horizon of the windows, in points (the trainer's --n_outputs for "
                       "this section; default: %(default)s).")
    group.add_argument("--series_slice_points", type=int, default=DEFAULT_SLICE_POINTS,
                       help="Points of the slice written in both layouts, for the bytes and the "
                       "window-row candidates: the first this many points of the long series, "
                       "and the first short series that hold as many (default: %(default)s).")
    group.add_argument("--series_examples", type=int, default=DEFAULT_EXAMPLES,
                       help="Examples each training-input candidate drains per round from a "
                       "fresh pipeline, the same for all (default: %(default)s, what a training "
                       "run at the trainer's defaults takes: 6000 steps of 64).")


def check_series_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The rules between this section's flags; parser.error (exit 2) naming the flag."""
    for name in ("series_points", "short_series", "series_n_inputs", "series_n_outputs",
                 "series_slice_points", "series_examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    width = args.series_n_inputs + args.series_n_outputs
    shape = (f"one window of --series_n_inputs {args.series_n_inputs} + --series_n_outputs "
             f"{args.series_n_outputs} = {width} points")
    if args.series_points % args.short_series:
        parser.error(f"--series_points {args.series_points} is not a multiple of --short_series "
                     f"{args.short_series}; the short series share the points equally")
    per_series = args.series_points // args.short_series
    if per_series < width:
        parser.error(f"--short_series {args.short_series} leaves {per_series} points per series "
                     f"(--series_points {args.series_points} / {args.short_series}), fewer than "
                     f"{shape}; give fewer short series or smaller windows")
    if not width <= args.series_slice_points <= args.series_points:
        parser.error(f"--series_slice_points {args.series_slice_points} must hold at least "
                     f"{shape} and at most --series_points {args.series_points}")


# --- data ----------------------------------------------------------------------------------


def series_values(points: int, *, seed: int) -> np.ndarray:
    """One hourly series: a level, a daily and a weekly season of random size and phase, noise.

    >>> series_values(3, seed=0).shape
    (3,)
    """
    rng = np.random.default_rng(seed)
    level, daily, weekly = rng.uniform(5.0, 15.0), rng.uniform(1.0, 3.0), rng.uniform(0.5, 2.0)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=2)
    hours = np.arange(points, dtype=np.float64)
    return (level + daily * np.sin(2 * np.pi * hours / DAY + phases[0])
            + weekly * np.sin(2 * np.pi * hours / WEEK + phases[1])
            + rng.normal(0.0, NOISE_STDDEV, size=points))


def format_points(series_id: str, first_hour: int, values: np.ndarray) -> str:
    """Lines `series_id,timestamp,value` of consecutive hours from START + first_hour.

    >>> format_points("a", 1, np.array([1.0, 2.5]))
    'a,2020-01-01T01:00:00,1.00000\\na,2020-01-01T02:00:00,2.50000\\n'
    """
    hours = START + np.arange(first_hour, first_hour + len(values)).astype("timedelta64[h]")
    stamps = np.datetime_as_string(hours, unit="s").tolist()
    return "".join(f"{series_id},{stamp},{value:.{DECIMALS}f}\n"
                   for stamp, value in zip(stamps, values.tolist()))


def write_raw(path: str, *, series: int, points_each: int, seed: int) -> None:
    """A raw long CSV of `series` series of `points_each` hourly points, all on the same hours."""
    width = len(str(series - 1))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(HEADER)
        for index in range(series):
            series_id = f"s{index:0{width}d}"
            values = series_values(points_each, seed=seed + index)
            for begin in range(0, points_each, WRITE_CHUNK_POINTS):
                handle.write(format_points(series_id, begin,
                                           values[begin:begin + WRITE_CHUNK_POINTS]))


def write_head(source: str, path: str, *, points: int) -> None:
    """The header and the first `points` rows of the raw CSV `source`, as `path`."""
    with tf.io.gfile.GFile(source, "r") as reader, tf.io.gfile.GFile(path, "w") as writer:
        writer.write("".join(itertools.islice(reader, points + 1)))


def prepare_config(raw: str, output_dir: str, *, layout: str, n_inputs: int,
                   n_outputs: int) -> PrepareConfig:
    """`python -m trainer.prepare --input RAW --output_dir DIR --layout L --valid_fraction 0
    --test_fraction 0 --n_inputs N --n_outputs M --overwrite` (stride 1, 4 shards)."""
    return PrepareConfig(input=raw, output_dir=output_dir, layout=layout, n_inputs=n_inputs,
                         n_outputs=n_outputs, valid_fraction=0.0, test_fraction=0.0,
                         overwrite=True)


def ensure_series_data(data_dir: str, *, points: int, short_series: int, slice_points: int,
                       n_inputs: int, n_outputs: int, seed: int) -> SeriesData:
    """Write the raw CSVs, the slices and the slices in both layouts under DATA_DIR/series,
    unless a `benchmark.json` there records the same settings. Returns their paths."""
    directory = f"{data_dir.rstrip('/')}/{SUBDIRECTORY}"
    per_series = points // short_series
    short_slice_series = max(1, slice_points // per_series)
    data = SeriesData(
        directory=directory,
        raw={kind: f"{directory}/raw-{kind}.csv" for kind in ("long", "short")},
        slices={kind: f"{directory}/raw-{kind}-slice.csv" for kind in ("long", "short")},
        slice_points={"long": slice_points, "short": short_slice_series * per_series},
        slice_series={"long": 1, "short": short_slice_series})
    spec = {"version": SPEC_VERSION, "points": points, "short_series": short_series,
            "slice_points": slice_points, "n_inputs": n_inputs, "n_outputs": n_outputs,
            "seed": seed, "timestamps": f"hourly ISO 8601 from {START}:00:00",
            "decimals": DECIMALS}
    spec_path = f"{directory}/{SPEC_FILENAME}"
    outputs = [*data.raw.values(), *data.slices.values(),
               *(f"{data.slice_dir(kind, layout)}/prepare.json" for kind in ("long", "short")
                 for layout in ("series", "windows"))]
    if tf.io.gfile.exists(spec_path) and all(tf.io.gfile.exists(path) for path in outputs):
        with tf.io.gfile.GFile(spec_path) as handle:
            if json.load(handle) == spec:
                logger.info("reusing the series data in %s", directory)
                return data
    tf.io.gfile.makedirs(directory)
    if tf.io.gfile.exists(spec_path):
        tf.io.gfile.remove(spec_path)  # a crash while rewriting must not leave a stale spec
    logger.info("writing one series of %d points and %d series of %d points to %s", points,
                short_series, per_series, directory)
    write_raw(data.raw["long"], series=1, points_each=points, seed=seed)
    write_raw(data.raw["short"], series=short_series, points_each=per_series, seed=seed + 1)
    for kind in ("long", "short"):
        write_head(data.raw[kind], data.slices[kind], points=data.slice_points[kind])
        for layout in ("series", "windows"):
            logger.info("preparing the %s slice (%d points) as %s", kind,
                        data.slice_points[kind], layout)
            prepare(prepare_config(data.slices[kind], data.slice_dir(kind, layout),
                                   layout=layout, n_inputs=n_inputs, n_outputs=n_outputs))
    with tf.io.gfile.GFile(spec_path, "w") as handle:
        json.dump(spec, handle)
    return data


def shard_files(prepared_dir: str) -> List[str]:
    """The CSV shards of a prepared directory (both layouts), prepare.json left out."""
    return sorted(tf.io.gfile.glob(f"{prepared_dir}/*.csv"))


def total_bytes(files: Sequence[str]) -> int:
    return sum(tf.io.gfile.stat(path).length for path in files)


def rows_train_files(prepared_dir: str) -> List[str]:
    return sorted(tf.io.gfile.glob(f"{prepared_dir}/train-*-of-*.csv"))


# --- candidates ----------------------------------------------------------------------------


def prepare_points_per_sec(raw: str, output_dir: str, *, points: int, n_inputs: int,
                           n_outputs: int) -> float:
    """Time `trainer.prepare.prepare` of `raw` (series layout) into `output_dir`; points/s."""
    config = prepare_config(raw, output_dir, layout="series", n_inputs=n_inputs,
                            n_outputs=n_outputs)
    read_through([raw])
    stopwatch = Stopwatch()
    stopwatch.start()
    summary = prepare(config)
    seconds = stopwatch.stop()
    if summary["points"] != points:
        raise RuntimeError(f"prepare of {raw} kept {summary['points']} points, expected {points}")
    return points / seconds


def timed(drained: Drained) -> Tuple[float, Dict[str, float]]:
    """A training-input candidate's figures: examples/s once its first batch is out (what
    training then runs at), and as extras the seconds to that first batch and the examples/s
    of the whole drain, the first batch included."""
    return drained.rate_after_first, {FIRST_BATCH: drained.first_batch_secs,
                                      WITH_FIRST_BATCH: drained.rate}


def series_candidates(args: argparse.Namespace, config: TrainerConfig,
                      data: SeriesData) -> Dict[str, Callable[[], object]]:
    """name -> a function that runs once and returns points/s (prepare_*), or examples/s after
    the first batch and the extras of `timed`."""
    n_inputs, n_outputs = args.series_n_inputs, args.series_n_outputs
    rows_config = dataclasses.replace(config, n_inputs=n_inputs, n_outputs=n_outputs)
    per_element = config.batch_size * config.steps_per_run
    examples = args.series_examples

    def prepare_candidate(kind: str) -> Callable[[], float]:
        return lambda: prepare_points_per_sec(data.raw[kind], data.prepared(kind),
                                              points=args.series_points, n_inputs=n_inputs,
                                              n_outputs=n_outputs)

    def series_candidate(kind: str) -> Callable[[], Tuple[float, Dict[str, float]]]:
        def run() -> Tuple[float, Dict[str, float]]:
            files = open_prepared(data.prepared(kind)).files  # as prepare_<kind> left them
            read_through(files)
            dataset = make_series_input_fn(
                files=files, split="train", training=True, batch_size=config.batch_size,
                n_inputs=n_inputs, n_outputs=n_outputs, seed=config.seed,
                steps_per_run=config.steps_per_run)()
            return timed(drain_timed(dataset, rows=examples, rows_per_element=per_element))
        return run

    def rows_candidate(kind: str) -> Callable[[], Tuple[float, Dict[str, float]]]:
        def run() -> Tuple[float, Dict[str, float]]:
            files = rows_train_files(data.slice_dir(kind, "windows"))
            read_through(files)
            return timed(drain_timed(make_train_input_fn(rows_config, files=files)(),
                                     rows=examples, rows_per_element=per_element))
        return run

    # Each series candidate right before its rows: their ratio is the target.
    return {"prepare_long": prepare_candidate("long"), "prepare_short": prepare_candidate("short"),
            "series_long": series_candidate("long"), "rows_long": rows_candidate("long"),
            "series_short": series_candidate("short"), "rows_short": rows_candidate("short")}


def series_descriptions(args: argparse.Namespace, data: SeriesData) -> Dict[str, str]:
    per_series = args.series_points // args.short_series
    shape = f"{args.series_n_inputs} + {args.series_n_outputs}"
    long_slice, short_slice = (describe_points(kind, points=data.slice_points[kind],
                                               series=data.slice_series[kind])
                               for kind in ("long", "short"))
    return {
        "prepare_long": f"trainer.prepare --layout series, 1 series of {args.series_points:,} "
                        "points",
        "prepare_short": f"trainer.prepare --layout series, {args.short_series:,} series of "
                         f"{per_series:,} points",
        "series_long": f"make_series_input_fn, windows of {shape} cut from the long series",
        "rows_long": f"make_train_input_fn over window rows ({shape}) of {long_slice}",
        "series_short": f"make_series_input_fn, windows of {shape} cut from the short series",
        "rows_short": f"make_train_input_fn over window rows ({shape}) of {short_slice}",
    }


def series_results(args: argparse.Namespace, data: SeriesData) -> Dict[str, Result]:
    """Empty Results of the candidates, in their order: kind `prepare` (points/s) or `series`."""
    descriptions = series_descriptions(args, data)
    return {name: Result(name, "prepare" if name.startswith("prepare_") else "series",
                         descriptions[name]) for name in descriptions}


# --- bytes, ratios, table ------------------------------------------------------------------


def describe_points(kind: str, *, points: int, series: int) -> str:
    """'the first 1,000 points of the long series', 'the first 2 short series (1,000 points)'."""
    if kind == "long":
        return f"the first {points:,} points of the long series"
    return f"the first {series:,} short series ({points:,} points)"


def measure_bytes(data: SeriesData, *, points: int, short_series: int
                  ) -> Dict[str, Dict[str, object]]:
    """Bytes of the shards: `<kind>_slice` in both layouts (`series_bytes`, `rows_bytes`, and
    the `windows` the rows are), `<kind>_all` of all points in the series layout only."""
    sizes: Dict[str, Dict[str, object]] = {}
    for kind in ("long", "short"):
        with tf.io.gfile.GFile(f"{data.slice_dir(kind, 'windows')}/prepare.json") as handle:
            windows = json.load(handle)["splits"]["train"]["windows"]
        count = dict(points=data.slice_points[kind], series=data.slice_series[kind])
        sizes[f"{kind}_slice"] = {
            "of": describe_points(kind, **count), **count, "windows": windows,
            "series_bytes": total_bytes(shard_files(data.slice_dir(kind, "series"))),
            "rows_bytes": total_bytes(shard_files(data.slice_dir(kind, "windows"))),
        }
    for kind, series in (("long", 1), ("short", short_series)):
        files = shard_files(data.prepared(kind))
        if files:  # written by prepare_<kind>
            sizes[f"{kind}_all"] = {
                "of": f"all {points:,} points of the {kind} series" if kind == "long" else
                f"all {series:,} short series ({points:,} points)",
                "points": points, "series": series, "series_bytes": total_bytes(files)}
    return sizes


def summarize_series(results: Dict[str, Result],
                     sizes: Dict[str, Dict[str, object]]) -> Dict[str, Dict[str, object]]:
    """This section's entries of the report's `ratios`: the examples/s and bytes ratios (a
    `ratio`), and the prepare rates against their target (a `value` in points/s)."""
    ratios: Dict[str, Dict[str, object]] = {}
    for name, (numerator, denominator, target) in EXAMPLE_TARGETS.items():
        if numerator in results and denominator in results:
            value = results[numerator].median / results[denominator].median
            ratios[name] = {"ratio": value, "target": target, "met": value >= target,
                            "of": f"{numerator} / {denominator} (examples/s after the first batch)"}
            if all(WITH_FIRST_BATCH in results[n].extras for n in (numerator, denominator)):
                value = (results[numerator].extra_median(WITH_FIRST_BATCH)
                         / results[denominator].extra_median(WITH_FIRST_BATCH))
                ratios[f"{name}_with_first_batch"] = {
                    "ratio": value, "of": f"{numerator} / {denominator} (examples/s, the first "
                    "batch included)"}
    for kind, (name, target) in BYTES_TARGETS.items():
        entry = sizes.get(f"{kind}_slice")
        if entry:
            value = entry["rows_bytes"] / entry["series_bytes"]
            ratios[name] = {"ratio": value, "of": f"rows bytes / series bytes of {entry['of']}"}
            if target is not None:
                ratios[name].update(target=target, met=value >= target)
    for candidate, name in PREPARE_TARGETS.items():
        if candidate in results:
            value = results[candidate].median
            ratios[name] = {"value": value, "unit": "points/s", "target": PREPARE_TARGET,
                            "met": value >= PREPARE_TARGET, "of": f"median of {candidate}"}
    return ratios


def format_first_batches(results: Dict[str, Result]) -> List[str]:
    """The block of the training-input candidates' start: seconds to the first batch, and the
    examples/s of the whole drain with it."""
    lines = [f"{'first batch':<18} {'seconds':>14} {'examples/s with it':>20}"]
    for name, result in results.items():
        if FIRST_BATCH in result.extras:
            lines.append(f"{name:<18} {result.extra_median(FIRST_BATCH):>14.3f} "
                         f"{result.extra_median(WITH_FIRST_BATCH):>20,.0f}")
    return lines if len(lines) > 1 else []


def format_bytes(sizes: Dict[str, Dict[str, object]], *, n_inputs: int,
                 n_outputs: int) -> List[str]:
    """The bytes block of the table."""
    lines = [f"{'bytes':<18} {'series':>14} {'window rows':>14}  of"]
    for name, entry in sizes.items():
        if "rows_bytes" in entry:
            rows = f"{entry['rows_bytes']:>14,}"
            what = (f"{entry['of']}: {entry['windows']:,} windows of {n_inputs} + {n_outputs}, "
                    "stride 1")
        else:
            rows, what = f"{'(not written)':>14}", entry["of"]
        lines.append(f"{name:<18} {entry['series_bytes']:>14,} {rows}  {what}")
    return lines


def series_settings(args: argparse.Namespace, data: Optional[SeriesData]) -> Dict[str, object]:
    settings: Dict[str, object] = {
        name: getattr(args, name) for name in ("series_points", "short_series", "series_n_inputs",
                                               "series_n_outputs", "series_slice_points",
                                               "series_examples")}
    settings["points_per_short_series"] = args.series_points // args.short_series
    settings["split"] = "all points train (--valid_fraction 0 --test_fraction 0)"
    settings["timestamps"] = f"hourly ISO 8601 from {START}:00:00"
    if data is not None:
        settings["data_dir"] = data.directory
        settings["slice_points"] = data.slice_points
        settings["slice_series"] = data.slice_series
    return settings


def ensure_for(args: argparse.Namespace, config: TrainerConfig) -> SeriesData:
    """`ensure_series_data` with the flags of `args` and the trainer config's seed."""
    return ensure_series_data(os.fspath(args.data_dir), points=args.series_points,
                              short_series=args.short_series,
                              slice_points=args.series_slice_points,
                              n_inputs=args.series_n_inputs, n_outputs=args.series_n_outputs,
                              seed=config.seed)
