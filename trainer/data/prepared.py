"""A prepared directory, the contract between `trainer.prepare` and everything that reads it.

Two layouts. `series` (the default) stores every series once, whole, and the trainer cuts the
windows itself (`trainer.data.series_pipeline`):

    PREPARED_DIR/
      series-00000-of-00004.csv ...  the series: a header row, then one row per point, every
                                     series whole in one shard, in time order
      prepare.json                   the schema and summary (below)

A series shard's columns, in this order (`SERIES_COLUMNS`), all numbers:

| column | what it holds |
|---|---|
| `series` | the series' index in prepare.json's `series_ids` (0, 1, ...) |
| `segment` | 0, then +1 after every cut (a gap or dropped row): no window spans two segments |
| `split` | 0 train, 1 valid, 2 test (`SPLIT_CODES`), never decreasing along a series |
| `time` | seconds since 1970-01-01 UTC for date/time stamps, else the time index itself |
| `target` | the value to forecast |

A window's split is that of its targets: a train window lies wholly in train, a valid or test
window has all its targets in its split (its inputs may come before). One copy of the data
serves every split and every window size.

`windows` writes every window as a row of `trainer.data.schema`, one set of files per split:

    PREPARED_DIR/
      train-00000-of-00004.csv ...   windows of the training split
      valid-*.csv, test-*.csv        the same for the validation and test splits
      prepare.json

prepare.json holds, in both layouts, `layout` and `version`, the input, the split rule
(`boundaries`), the counts per split, dropped rows, and the training split's statistics; for
series also the `columns`, the `series_ids` (the vocabulary of the `series` column), the
`time_kind` and the median `step` between points. This module owns the shard names, the
writing and reading of prepare.json, and what is read from it: the training mean and std (for
`--scaling global_zscore`) and the in-sample seasonal naive MAE (the scale of MASE). A directory
of the series layout is opened by `open_prepared`: its prepare.json checked, its covariates and
its shard files (`PreparedSeries`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.covariates import Covariate, covariates_of
from trainer.data.schema import format_rows
from trainer.data.series import Series
from trainer.data.windows import SPLITS, ranges_of_codes
from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

SUMMARY_FILENAME = "prepare.json"
SERIES_LAYOUT = "series"
WINDOWS_LAYOUT = "windows"
LAYOUTS = (SERIES_LAYOUT, WINDOWS_LAYOUT)
# prepare.json's `version`: raised when the layout of a prepared directory changes.
FORMAT_VERSION = 1
SERIES_COLUMNS = ("series", "segment", "split", "time", "target")
SERIES_SHARD_PREFIX = "series"


def shard_paths(output_dir: str, split: str, shards: int) -> List[str]:
    """['DIR/train-00000-of-00002.csv', 'DIR/train-00001-of-00002.csv'] for shards=2."""
    return [f"{output_dir}/{split}-{i:05d}-of-{shards:05d}.csv" for i in range(shards)]


def existing_outputs(output_dir: str) -> List[str]:
    """The shards and prepare.json that an earlier preparation left in `output_dir`."""
    if not tf.io.gfile.isdir(output_dir):
        return []
    found = tf.io.gfile.glob(f"{output_dir}/{SERIES_SHARD_PREFIX}-*-of-*.csv")
    for split in SPLITS:
        found += tf.io.gfile.glob(f"{output_dir}/{split}-*-of-*.csv")
    summary = f"{output_dir}/{SUMMARY_FILENAME}"
    return found + ([summary] if tf.io.gfile.exists(summary) else [])


def write_shards(windows: Dict[str, np.ndarray], *, output_dir: str, shards: int) -> Dict[str, List[str]]:
    """Write each split's windows as min(shards, windows) CSV files, in order."""
    written: Dict[str, List[str]] = {}
    for split, rows in windows.items():
        if not len(rows):
            written[split] = []
            continue
        count = min(shards, len(rows))
        written[split] = shard_paths(output_dir, split, count)
        for path, part in zip(written[split], np.array_split(rows, count)):
            with tf.io.gfile.GFile(path, "w") as handle:
                handle.write(format_rows(part))
    return written


def series_shard_paths(output_dir: str, shards: int) -> List[str]:
    """['DIR/series-00000-of-00002.csv', 'DIR/series-00001-of-00002.csv'] for shards=2."""
    return shard_paths(output_dir, SERIES_SHARD_PREFIX, shards)


def assign_to_shards(lengths: Sequence[int], shards: int) -> List[List[int]]:
    """Series indices per shard: each series whole in one shard, the shards' points balanced
    (the longest series first, each to the shard with the fewest points), in index order.

    >>> assign_to_shards([5, 1, 1, 3], 2)
    [[0], [1, 2, 3]]
    """
    shards = max(1, min(shards, len(lengths)))
    totals = [0] * shards
    members: List[List[int]] = [[] for _ in range(shards)]
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        target = min(range(shards), key=lambda s: (totals[s], s))
        totals[target] += lengths[index]
        members[target].append(index)
    return [sorted(part) for part in members]


def series_times(series: Series) -> np.ndarray:
    """The `time` column of a series: seconds since 1970-01-01 UTC, or the time index."""
    return series.times


def series_table(indices: Sequence[int], series_list: Sequence[Series],
                 codes: Sequence[np.ndarray], covariate_names: Sequence[str] = (),
                 covariate_values: Optional[Sequence[np.ndarray]] = None) -> Any:
    """The rows of the series at `indices`, as a pyarrow table of the `SERIES_COLUMNS`, then
    the covariates (`covariate_values[i]`: series i's [points, covariates])."""
    import pyarrow as pa  # noqa: I001 (imported here: only preparation writes shards)

    parts: Dict[str, List[np.ndarray]] = {name: [] for name in SERIES_COLUMNS}
    for index in indices:
        series = series_list[index]
        segments = np.zeros(len(series.values), dtype=np.int64)
        for start in series.segment_starts[1:]:
            segments[start:] += 1
        parts["series"].append(np.full(len(series.values), index, dtype=np.int64))
        parts["segment"].append(segments)
        parts["split"].append(np.asarray(codes[index], dtype=np.int64))
        parts["time"].append(series_times(series))
        parts["target"].append(series.values)
    times = np.concatenate(parts["time"])
    whole = bool((np.abs(times) < 2 ** 53).all()) and np.array_equal(times, np.round(times))
    parts["time"] = [times.astype(np.int64) if whole else times]  # whole numbers write faster
    columns = {name: np.concatenate(parts[name]) for name in SERIES_COLUMNS}
    for position, name in enumerate(covariate_names):
        columns[name] = np.concatenate([covariate_values[index][:, position] for index in indices])
    return pa.table(columns)


def write_series_shards(series_list: Sequence[Series], codes: Sequence[np.ndarray], *,
                        output_dir: str, shards: int, covariates: Sequence[Any] = (),
                        covariate_values: Optional[Sequence[np.ndarray]] = None) -> List[str]:
    """Write the series as min(shards, series) series shards; returns their paths.

    Values are written with the shortest text that reads back as the same float64.
    """
    import pyarrow.csv as pacsv  # noqa: I001

    members = assign_to_shards([len(series.values) for series in series_list], shards)
    paths = series_shard_paths(output_dir, len(members))
    names = [covariate.name for covariate in covariates]
    header = ",".join([*SERIES_COLUMNS, *names]).encode() + b"\n"

    def write(path: str, indices: List[int]) -> None:
        body = io.BytesIO()
        pacsv.write_csv(series_table(indices, series_list, codes, names, covariate_values), body,
                        write_options=pacsv.WriteOptions(include_header=False))
        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(header + body.getvalue())

    # Arrow formats without the GIL: the shards are written side by side, one per core.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done in [pool.submit(write, path, indices) for path, indices in zip(paths, members)]:
            done.result()
    return paths


def check_layout(summary: Dict[str, Any], *, layout: str, source: str) -> None:
    """Raise ConfigError unless `summary` is a prepare.json of `layout` in this `FORMAT_VERSION`."""
    found = summary.get("layout", WINDOWS_LAYOUT)  # prepare.json before layouts: windows
    version = summary.get("version", 0)
    if found != layout:
        raise ConfigError(f"{source} was prepared with --layout {found}, not {layout}; "
                          + ("give its files of rows instead (trainer.evaluate --data_paths "
                             "'DIR/test-*.csv'), or prepare the data again with --layout series"
                             if found == WINDOWS_LAYOUT else
                             "prepare the data again with --layout windows"))
    if version != FORMAT_VERSION:
        raise ConfigError(f"{source} is a prepared directory of version {version}; this trainer "
                          f"reads version {FORMAT_VERSION}: prepare the data again with this "
                          "version of trainer.prepare")


def write_summary(output_dir: str, summary: Dict[str, Any]) -> str:
    """Write `summary` as OUTPUT_DIR/prepare.json; returns its path."""
    path = f"{output_dir.rstrip('/')}/{SUMMARY_FILENAME}"
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    return path


def check_prepared_directory(data_dir: str, *, flag: str = "--data_dir") -> None:
    """Raise a ConfigError naming `flag` unless `data_dir` is a directory: a raw CSV given
    where a prepared directory belongs, or a path that does not exist, is told apart from a
    prepared directory with a bad prepare.json."""
    if tf.io.gfile.isdir(data_dir):
        return
    what = "is a file" if tf.io.gfile.exists(data_dir) else "does not exist"
    raise ConfigError(f"{flag} {data_dir} {what}: it must be a directory written by forecast "
                      f"prepare (forecast prepare --input RAW.csv --output_dir DIR ..., then "
                      f"{flag} DIR)")


def read_summary(path: str) -> Dict[str, Any]:
    """The prepare.json at `path` (or in the directory `path`)."""
    if tf.io.gfile.isdir(path):
        path = path.rstrip("/") + "/" + SUMMARY_FILENAME
    elif path.endswith("/" + SUMMARY_FILENAME):  # DIR/prepare.json: is DIR one?
        check_prepared_directory(path[:-len(SUMMARY_FILENAME) - 1])
    if not tf.io.gfile.exists(path):
        raise ConfigError(f"{path} does not exist; give the prepare.json that trainer.prepare wrote")
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}): give the prepare.json that forecast "
                          "prepare wrote") from error
    if "statistics" not in summary and summary.get("layout") != SERIES_LAYOUT:
        raise ConfigError(f"{path} has no 'statistics'; is it a prepare.json from trainer.prepare?")
    summary["_path"] = path
    return summary


@dataclasses.dataclass(frozen=True)
class PreparedSeries:
    """A prepared directory of the series layout: its prepare.json and its shard files."""

    data_dir: str
    summary: Dict[str, Any]
    files: List[str]
    covariates: Tuple[Covariate, ...] = ()


def open_prepared(data_dir: str, *, summary: Optional[Dict[str, Any]] = None) -> PreparedSeries:
    """Read DIR/prepare.json (unless its `summary` is given, read already), check it is of the
    series layout, and list its shards.

    The shards are prepare.json's `files` (names in the directory, or full paths), or, when it
    lists none (shards written by other tools), every `DIR/series-*.csv`.
    """
    data_dir = data_dir.rstrip("/")
    source = f"{data_dir}/prepare.json"
    check_prepared_directory(data_dir)
    summary = read_summary(data_dir) if summary is None else summary
    check_layout(summary, layout=SERIES_LAYOUT, source=source)
    covariates = tuple(covariates_of(summary, source=source))
    expected = [*SERIES_COLUMNS, *(covariate.name for covariate in covariates)]
    columns = summary.get("columns", expected)
    if list(columns) != expected:
        raise ConfigError(f"{source}: its columns {columns} are not {expected}, the columns of a "
                          "series shard followed by its covariates")
    names = summary.get("files") or []
    files = ([name if "/" in name else f"{data_dir}/{name}" for name in names] if names
             else sorted(tf.io.gfile.glob(f"{data_dir}/{SERIES_SHARD_PREFIX}-*.csv")))
    missing = [path for path in files if not tf.io.gfile.exists(path)]
    if missing:
        raise DataError(f"{source} lists {missing[0]}, which does not exist; prepare the data "
                        "again or copy the whole directory")
    if not files:
        raise DataError(f"{data_dir} holds no {SERIES_SHARD_PREFIX}-*.csv shards; write them "
                        "beside prepare.json (see docs/data.md, Data layouts)")
    return PreparedSeries(data_dir=data_dir, summary=summary, files=files, covariates=covariates)


# How trainer.prepare read the raw CSV, saved in prepare.json: what trainer.predict needs to read
# a raw CSV of the same kind the same way (the trainer copies them into its exports).
READING_KEYS = ("target", "timestamp_column", "series_id_column", "on_bad_values", "gap_factor")
# The trainer's flags that prepare.json gives when they are not on the command line.
PREPARED_FLAGS = ("n_inputs", "n_outputs", "season")


def reading_of(summary: Dict[str, Any]) -> Dict[str, Any]:
    """The `READING_KEYS` that `summary` (a prepare.json) holds; older ones lack some."""
    return {key: summary[key] for key in READING_KEYS if key in summary}


def prepared_defaults(path: str, *, given: Dict[str, Any]) -> Dict[str, Any]:
    """The trainer's `PREPARED_FLAGS` from the prepare.json at `path`, for those not `given`.

    A directory of the windows layout holds rows of exactly its `n_inputs + n_outputs` values:
    other sizes `given` would read them as another split of the same numbers and train on
    nonsense, so they are a ConfigError naming both shapes. The series layout's `n_inputs` and
    `n_outputs` are those its window counts were made for, a default only: the trainer cuts
    any. Empty when there is no file at `path` (the trainer says so when it reads the data).
    """
    if not tf.io.gfile.exists(path):
        return {}
    summary = read_summary(path)
    if summary.get("layout", WINDOWS_LAYOUT) == WINDOWS_LAYOUT and "n_inputs" in summary:
        saved = (summary["n_inputs"], summary["n_outputs"])
        asked = (given.get("n_inputs", saved[0]), given.get("n_outputs", saved[1]))
        if asked != saved:
            raise ConfigError(
                f"--n_inputs {asked[0]} --n_outputs {asked[1]} do not fit {path}: its rows are "
                f"windows of {saved[0]} + {saved[1]} values (--layout windows), which would be read "
                f"as {asked[0]} inputs and {asked[1]} targets. Give --n_inputs {saved[0]} "
                f"--n_outputs {saved[1]} (or neither), or prepare the data again with the sizes "
                "you want (or with --layout series, which fits any)")
    return {key: summary[key] for key in PREPARED_FLAGS if key in summary and key not in given}


def training_statistics(series_list: Sequence[Series], codes: Sequence[np.ndarray], *,
                        season: int) -> Dict[str, Any]:
    """Mean, std (population), min and max of the training points of all series (`codes`:
    the `split_codes` of each), and the
    in-sample MAE of the naive forecast (season 1) and of the seasonal naive one.

    The naive MAE is the mean of |y[t] - y[t - season]| over training points whose
    predecessor `season` steps back is in the same segment: the scale of MASE.
    """
    values: List[np.ndarray] = []
    differences: Dict[int, List[np.ndarray]] = {s: [] for s in sorted({1, season})}
    for series, series_codes in zip(series_list, codes):
        for begin, end in series.segments():
            train_end = ranges_of_codes(series_codes[begin:end])["train"][1]
            train = series.values[begin:begin + train_end]
            values.append(train)
            for lag in differences:
                differences[lag].append(np.abs(train[lag:] - train[:-lag]) if len(train) > lag
                                        else np.zeros(0))
    everything = np.concatenate(values) if values else np.zeros(0)
    if not len(everything):
        raise DataError("the training split is empty: the validation and test splits take every "
                        "point; make them smaller (the split flags of forecast prepare)")
    naive_mae = {}
    for lag, parts in differences.items():
        joined = np.concatenate(parts)
        naive_mae[str(lag)] = float(joined.mean()) if len(joined) else None
    ones = np.concatenate(differences[1])
    return {"count": int(len(everything)), "mean": float(everything.mean()),
            "std": float(everything.std()), "min": float(everything.min()),
            "max": float(everything.max()), "in_sample_naive_mae": naive_mae,
            "in_sample_naive_mse": float(np.mean(ones ** 2)) if len(ones) else None}


def training_mean_std(summary: Dict[str, Any]) -> Tuple[float, float]:
    """The training split's mean and std (population), for global z-scoring."""
    if "statistics" not in summary:
        raise ConfigError(f"{summary.get('_path', SUMMARY_FILENAME)} has no 'statistics' (mean, std "
                          "of the training split), which --scaling global_zscore needs: add them "
                          "(see docs/data.md, Data layouts) or use --scaling window_zscore")
    return float(summary["statistics"]["mean"]), float(summary["statistics"]["std"])


def rmsse_scale(summary: Dict[str, Any]) -> Optional[float]:
    """The training split's in-sample MSE of the naive forecast (pooled RMSSE's scale); None
    when prepare.json predates it or has no statistics."""
    return summary.get("statistics", {}).get("in_sample_naive_mse")


def mase_scale(summary: Dict[str, Any], *, season: int, source: str,
               season_source: str = "--season") -> Optional[float]:
    """The training split's in-sample MAE of the seasonal naive forecast with `season`.

    Raises ConfigError when the preparation did not compute it for that season, naming where
    the season came from (`season_source`: the flag, or the model's own); None when
    prepare.json has no statistics at all (series shards written by other tools): MASE is then
    scaled within the evaluated windows.
    """
    if "statistics" not in summary:
        return None
    by_season = summary["statistics"].get("in_sample_naive_mae", {})
    if str(season) not in by_season:
        seasons = sorted(by_season, key=int)
        if season_source == "--season":
            asked, fix = f"--season {season}", f"rerun forecast prepare with --season {season}"
        else:
            asked = f"season {season} ({season_source})"
            fix = (f"pass --season {seasons[-1]} to score with the season of the data, or rerun "
                   f"forecast prepare with --season {season}" if seasons
                   else f"rerun forecast prepare with --season {season}")
        raise ConfigError(f"{source} has the in-sample naive MAE for seasons "
                          f"{', '.join(seasons) or 'none'}, not for {asked}; {fix}")
    return by_season[str(season)]
