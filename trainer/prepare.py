"""From a raw series CSV to a prepared directory: checked series in shards, split by time.

    python -m trainer.prepare --input sales.csv --target units --output_dir prepared \\
        --valid_fraction 0.1 --test_fraction 0.1
    python -m trainer.prepare --input 'gs://b/long.csv' --output_dir gs://b/prepared \\
        --valid_points 13 --test_points 13
    python -m trainer.prepare --input sales.csv --output_dir prepared --layout windows \\
        --n_inputs 20 --n_outputs 5 --valid_start 2024-01-01 --test_start 2024-03-01

Two layouts (`trainer.data.prepared` documents both): `--layout series` (the default) writes
the checked, sorted series once, with each point's split as a column; the trainer
(`--data_dir`) cuts windows of any `--n_inputs`/`--n_outputs` from them. `--layout windows`
writes every window of `--n_inputs` + `--n_outputs` values as a row, one set of files per
split (the trainer's `--train_data_paths`/`--eval_data_paths`).

Two input shapes, both with a header row:
- wide: a timestamp column (`--timestamp_column`, default `timestamp`) and one or more value
  columns; `--target` picks one (needed when there are several);
- long: `series_id`, `timestamp` and `value` columns, many series in one file (recognised by
  its `series_id` column; `--target` names the value column, default `value`).

Rules:
- **Time order.** Rows are sorted by timestamp within each series (pass `--no-sort` to make
  rows out of order an error instead). A timestamp that appears twice in one series is always
  an error naming both lines. Timestamps are ISO dates/times (`2024-01-31`,
  `2024-01-31T12:00:00`) or plain numbers (a time index), one kind per file.
- **Gaps and bad values.** An empty, NaN or non-numeric value, and a time step longer than
  `--gap_factor` (1.5) times the series' median step, are reported with their line and series. With
  `--on_bad_values fail` (default) the first one stops preparation; with `drop` the bad rows
  are left out and the series is cut there, so that no window spans a gap.
- **Splits.** Every point goes to train, valid or test by its timestamp: before
  `--valid_start`, before `--test_start`, or from it on. Without dates the boundaries are the
  timestamps at the fractions `--valid_fraction` / `--test_fraction` of the distinct
  timestamps of all series, so every series is split at the same time. With
  `--valid_points`/`--test_points` the split is per series instead: the last `--test_points`
  points of every series are test and the `--valid_points` before them valid, however the
  series' ends differ.
- **Windows** are `n_inputs + n_outputs` consecutive points of one series. A train window lies
  wholly in train. A valid or test window has all its targets in its split, and may take its
  inputs from before the split's start, so that every target point of the split is forecast;
  no target ever lies in another split. Windows start every `--stride` points: train windows
  from the series' start, valid and test windows from their split's first point, plus one
  window ending at the split's last point when the stride would skip it.
- **Covariates** (series layout): `--past_covariates`, `--future_covariates` and
  `--static_covariates` name other columns, and `--calendar_features auto` adds calendar
  features of the timestamps as future covariates (`trainer.data.covariates`).
- **Output**: `OUTPUT_DIR/series-0000K-of-0000N.csv` (series layout) or
  `OUTPUT_DIR/{train,valid,test}-00000-of-0000N.csv` (windows layout), and
  `OUTPUT_DIR/prepare.json` with the schema, the boundaries, the counts and the training-split
  statistics (mean, std, min, max, and the in-sample mean absolute error of the naive
  forecast for MASE). In the series layout the window counts are those of `--n_inputs` +
  `--n_outputs`, a check only: a split without a window of that size is a warning, since the
  trainer may cut smaller ones.

The work is done below this command: reading and checking series in `trainer.data.series`,
splits and windows (with a worked example) in `trainer.data.windows`, the shards and
prepare.json in `trainer.data.prepared`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.covariates import (
    CALENDAR_CHOICES,
    calendar_features,
    check_covariate_flags,
    encode_covariates,
    split_names,
)
from trainer.data.prepared import (
    FORMAT_VERSION,
    LAYOUTS,
    SERIES_COLUMNS,
    SERIES_LAYOUT,
    SUMMARY_FILENAME,
    existing_outputs,
    series_times,
    training_statistics,
    write_series_shards,
    write_shards,
    write_summary,
)
from trainer.data.series import BAD_VALUE_ACTIONS, GAP_FACTOR, Series, read_series
from trainer.data.series_scales import SUMMARY_KEY as SCALES_KEY
from trainer.data.series_scales import scales_json, sums_of_series
from trainer.data.windows import (
    SPLIT_CODES,
    SPLITS,
    check_split_flags,
    count_windows,
    make_windows,
    split_boundaries,
    split_codes,
)
from trainer.util.cli import (
    VERBOSITIES,
    build_flag_parser,
    flag,
    float_above,
    int_at_least,
    run_command,
)
from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Flags of `python -m trainer.prepare`."""

    input: str = flag("", "The raw series CSV (local or gs://), with a header row: wide (a "
                       "timestamp column and value columns) or long (series_id, timestamp, value).")
    output_dir: str = flag("", "Directory for the CSV shards and prepare.json (local or gs://).")
    target: str = flag("", "Value column to forecast. Wide files: needed when there are several "
                        "value columns. Long files: default 'value'.")
    timestamp_column: str = flag("timestamp", "Name of the timestamp column.")
    series_id_column: str = flag("series_id", "Name of the series id column; a file that has "
                                  "it is read as long format.")
    layout: str = flag(SERIES_LAYOUT, "series: the checked series once, with each point's split, "
                        "for the trainer's --data_dir (any window size); windows: every window as "
                        "a row, one set of files per split (--train_data_paths/--eval_data_paths).",
                        choices=LAYOUTS)
    n_inputs: int = flag(20, "Past values per window (the trainer's --n_inputs). Series layout: "
                          "only to count the windows of each split, as a check.",
                          type=int_at_least(1))
    n_outputs: int = flag(5, "Future values per window (the trainer's --n_outputs). Series "
                           "layout: only to count the windows of each split, as a check.",
                           type=int_at_least(1))
    past_covariates: str = flag("", "Comma-separated numeric columns known only up to the forecast "
                                 "start (series layout): the model reads them over its inputs.")
    future_covariates: str = flag("", "Comma-separated numeric columns known for the horizon too "
                                   "(calendar, promotions, prices; series layout): the model reads "
                                   "them over its inputs and its outputs.")
    static_covariates: str = flag("", "Comma-separated columns with one value per series (series "
                                   "layout): numeric, or categorical (an id vocabulary and an "
                                   "embedding); the series id column may be one.")
    calendar_features: str = flag(
        "none", "auto: add calendar features of the timestamps as future covariates (hour of day "
        "below a daily step, day of week below a weekly one, day of year), each in [-0.5, 0.5]; "
        "none: no calendar features. Series layout, date/time stamps only.",
        choices=CALENDAR_CHOICES)
    stride: int = flag(1, "Points between the starts of two consecutive windows (windows layout; "
                        "the trainer takes every start from series).", type=int_at_least(1))
    valid_fraction: float = flag(0.1, "Fraction of the distinct timestamps, after train, in the "
                                  "validation split (ignored with --valid_start).",
                                  type=float_above(0.0, inclusive=True))
    test_fraction: float = flag(0.1, "Fraction of the distinct timestamps, at the end, in the test "
                                 "split (ignored with --test_start).",
                                 type=float_above(0.0, inclusive=True))
    valid_start: str = flag("", "First timestamp of the validation split (with --test_start; "
                             "replaces the fractions).")
    test_start: str = flag("", "First timestamp of the test split (with --valid_start).")
    valid_points: int = flag(0, "Points of every series in the validation split, just before its "
                              "test points (replaces the fractions; 0: none).", type=int_at_least(0))
    test_points: int = flag(0, "Points at the end of every series in the test split (replaces the "
                             "fractions; with --valid_points).", type=int_at_least(0))
    valid_windows: int = flag(
        0, "Backtest windows of every series in the validation split (series layout): its last "
        "K horizons of --n_outputs points before the test split, which the trainer evaluates "
        "as K rolling origins per series, one horizon apart (replaces the other split flags; "
        "0: none).", type=int_at_least(0))
    test_windows: int = flag(
        0, "Backtest windows at the end of every series in the test split, the same way "
        "(with --valid_windows).", type=int_at_least(0))
    season: int = flag(1, "Season length for the in-sample seasonal naive MAE saved for MASE "
                        "(the MAE of the naive forecast with season 1 is always saved too).",
                        type=int_at_least(1))
    shards: int = flag(4, "Files per split (fewer when a split has fewer windows).",
                        type=int_at_least(1))
    sort: bool = flag(True, "Sort rows by timestamp within each series; --no-sort makes rows out "
                       "of order an error.")
    on_bad_values: str = flag("fail", "What to do with a missing or non-numeric value or a time "
                               "gap: fail (report it and stop) or drop (leave the row out and cut "
                               "the series there).", choices=BAD_VALUE_ACTIONS)
    gap_factor: float = flag(GAP_FACTOR, "A time step longer than this many times the series' "
                              "median step is a gap (0: no gap check, e.g. for business days).",
                              type=float_above(0.0, inclusive=True))
    overwrite: bool = flag(False, "Replace the shards and prepare.json already in --output_dir.")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        """The rules between flags (a ConfigError here exits 2, like a bad flag)."""
        if not self.input or not self.output_dir:
            raise ConfigError("give --input (the raw series CSV) and --output_dir")
        check_split_flags(valid_fraction=self.valid_fraction, test_fraction=self.test_fraction,
                          valid_start=self.valid_start, test_start=self.test_start,
                          valid_points=self.valid_points, test_points=self.test_points,
                          valid_windows=self.valid_windows, test_windows=self.test_windows)
        if (self.valid_windows or self.test_windows) and self.layout != SERIES_LAYOUT:
            raise ConfigError("--valid_windows/--test_windows need --layout series (the trainer "
                              "cuts the backtest windows); use --valid_points/--test_points with "
                              "--layout windows")
        if self.layout != SERIES_LAYOUT and (any(self.covariate_names().values())
                                             or self.calendar_features != "none"):
            raise ConfigError("covariates need --layout series: a window row holds target values "
                              "only")
        check_covariate_flags(self.covariate_names(),
                              reserved=[self.timestamp_column] + ([self.target] if self.target else []))
        if self.layout == SERIES_LAYOUT and self.stride != 1:
            raise ConfigError(f"--stride {self.stride} cuts windows, which --layout series leaves to "
                              "the trainer (it takes every start); use --layout windows for a stride")


    def covariate_names(self) -> Dict[str, List[str]]:
        return {"past": split_names(self.past_covariates),
                "future": split_names(self.future_covariates),
                "static": split_names(self.static_covariates)}


def prepare(config: PrepareConfig) -> Dict[str, Any]:
    """Read, check, split, window and write; returns what prepare.json holds."""
    output_dir = config.output_dir.rstrip("/")
    existing = existing_outputs(output_dir)
    if existing and not config.overwrite:
        raise ConfigError(f"{output_dir} already holds prepared data ({existing[0]}, ...); use "
                          "another --output_dir or pass --overwrite to replace it")
    series_list, report = read_series(
        config.input, target=config.target, timestamp_column=config.timestamp_column,
        series_id_column=config.series_id_column, sort=config.sort,
        on_bad_values=config.on_bad_values, gap_factor=config.gap_factor,
        extra_columns=[name for names in config.covariate_names().values() for name in names])
    width = config.n_inputs + config.n_outputs
    series_layout = config.layout == SERIES_LAYOUT
    longest = max(len(series.values) for series in series_list)
    if longest < width and not series_layout:
        raise DataError(f"{config.input}: the longest series has {longest} points, fewer than one "
                        f"window of --n_inputs {config.n_inputs} + --n_outputs {config.n_outputs} "
                        f"= {width}; lower them or give a longer series")
    boundaries = split_boundaries(series_list, valid_fraction=config.valid_fraction,
                                  test_fraction=config.test_fraction,
                                  valid_start=config.valid_start, test_start=config.test_start,
                                  valid_points=config.valid_points, test_points=config.test_points,
                                  valid_windows=config.valid_windows,
                                  test_windows=config.test_windows, horizon=config.n_outputs)
    codes = [split_codes(series, boundaries) for series in series_list]
    if report["target"] in [n for names in config.covariate_names().values() for n in names]:
        raise ConfigError(f"the target column {report['target']!r} cannot be a covariate too")
    calendar = calendar_features(config.calendar_features, time_kind=series_list[0].time_kind,
                                 step=median_step(series_list))
    if config.calendar_features != "none" and not calendar:
        logger.warning("--calendar_features %s: the timestamps of %s are a time index, not dates; "
                       "no calendar features added", config.calendar_features, config.input)
    clash = [name for names in config.covariate_names().values() for name in names if name in calendar]
    if clash:
        raise ConfigError(f"column {clash[0]!r} has the name of a calendar feature; rename it or "
                          "pass --calendar_features none")
    covariates, covariate_values = encode_covariates(
        series_list, config.covariate_names(), codes=codes, path=config.input,
        series_id_column=config.series_id_column if report["format"] == "long" else "",
        calendar=calendar)
    if series_layout:
        counts = count_windows(series_list, codes, n_inputs=config.n_inputs,
                               n_outputs=config.n_outputs)
        if config.valid_windows or config.test_windows:  # one window per horizon
            backtest = count_windows(series_list, codes, n_inputs=config.n_inputs,
                                     n_outputs=config.n_outputs, stride=config.n_outputs)
            counts.update({split: backtest[split] for split in ("valid", "test")})
            short = short_of_windows(series_list, codes, boundaries, n_inputs=config.n_inputs,
                                     n_outputs=config.n_outputs)
            if short:
                logger.warning("%s", short)
        windows = {}
    else:
        windows = make_windows(series_list, codes, n_inputs=config.n_inputs,
                               n_outputs=config.n_outputs, stride=config.stride)
        counts = {split: int(len(rows)) for split, rows in windows.items()}
    points = {split: int(sum((series_codes == SPLIT_CODES[split]).sum() for series_codes in codes))
              for split in SPLITS}
    if report["dropped"]:
        logger.warning("%s", dropped_rows_message(report, series_list, codes, counts,
                                                  config=config, width=width))
    check_windows(config, series_list, codes, points=points, counts=counts)
    statistics = training_statistics(series_list, codes, season=config.season)
    if config.overwrite:
        for path in existing:
            tf.io.gfile.remove(path)
    tf.io.gfile.makedirs(output_dir)
    summary: Dict[str, Any] = {
        "layout": config.layout, "version": FORMAT_VERSION,
        "input": config.input, "output_dir": output_dir, "format": report["format"],
        "target": report["target"], "timestamp_column": config.timestamp_column,
        "series_id_column": config.series_id_column, "on_bad_values": config.on_bad_values,
        "gap_factor": config.gap_factor,
        "series": len(series_list), "n_inputs": config.n_inputs, "n_outputs": config.n_outputs,
    }
    if series_layout:
        files = write_series_shards(series_list, codes, output_dir=output_dir,
                                    shards=config.shards, covariates=covariates,
                                    covariate_values=covariate_values)
        summary.update({
            "columns": list(SERIES_COLUMNS) + [covariate.name for covariate in covariates],
            "covariates": [covariate.to_json() for covariate in covariates],
            "calendar_features": calendar,
            "series_ids": [s.series_id for s in series_list],
            "time_kind": series_list[0].time_kind,
            "step": median_step(series_list),
            "files": [path.rsplit("/", 1)[-1] for path in files], "season": config.season,
            "boundaries": boundaries,
            "splits": {split: {"points": points[split], "windows": counts[split]}
                       for split in SPLITS},
        })
    else:
        files_by_split = write_shards(windows, output_dir=output_dir, shards=config.shards)
        summary.update({
            "stride": config.stride, "season": config.season, "boundaries": boundaries,
            "splits": {split: {"points": points[split], "windows": counts[split],
                               "files": files_by_split[split]} for split in SPLITS},
        })
    summary.update({
        "points": int(sum(len(series.values) for series in series_list)),
        "dropped_count": report["dropped_count"], "cut_count": report["cut_count"],
        "dropped": report["dropped"],
        "statistics": statistics,
    })
    if series_layout:  # each series' in-sample scales, for its own MASE, RMSSE and MSIS
        summary[SCALES_KEY] = scales_json(sums_of_series(series_list, codes, season=config.season))
    write_summary(output_dir, summary)
    return summary


def split_flags(config: PrepareConfig) -> Tuple[str, str]:
    """The split flags in effect as a user would type them, and what to change to make the
    validation and test splits smaller: what a message about the splits names."""
    if config.valid_windows or config.test_windows:
        return (f"--valid_windows {config.valid_windows} --test_windows {config.test_windows} "
                f"(horizons of --n_outputs {config.n_outputs})", "fewer --valid_windows/--test_windows")
    if config.valid_points or config.test_points:
        return (f"--valid_points {config.valid_points} --test_points {config.test_points}",
                "smaller --valid_points/--test_points")
    if config.valid_start or config.test_start:
        return (f"--valid_start {config.valid_start} --test_start {config.test_start}",
                "a later --valid_start/--test_start")
    defaults = {field.name: field.default for field in dataclasses.fields(PrepareConfig)}
    default = (config.valid_fraction, config.test_fraction) == (defaults["valid_fraction"],
                                                                 defaults["test_fraction"])
    return (f"{'the default ' if default else ''}--valid_fraction {config.valid_fraction:g} "
            f"--test_fraction {config.test_fraction:g}", "smaller --valid_fraction/--test_fraction")


def check_windows(config: PrepareConfig, series_list: Sequence[Series], codes: Sequence[np.ndarray],
                  *, points: Dict[str, int], counts: Dict[str, int]) -> None:
    """Fail when the train split has no point or no window of --n_inputs + --n_outputs (the
    message names the series' length and what to change); a valid or test split without a
    window is a warning in the series layout (the trainer may cut smaller ones) and an error in
    the windows layout."""
    width = config.n_inputs + config.n_outputs
    given, smaller = split_flags(config)
    longest = max(len(series.values) for series in series_list)
    train_points = max(int((series_codes == SPLIT_CODES["train"]).sum()) for series_codes in codes)
    size = (f"--n_inputs {config.n_inputs} + --n_outputs {config.n_outputs}")
    if not points["train"]:
        raise DataError(f"{config.input}: {given} leave no point of its {len(series_list)} series "
                        f"(the longest has {longest} points) to the train split; give {smaller} "
                        "or a longer series")
    if not counts["train"]:
        raise DataError(f"{config.input}: the train split has no window of {width} points ({size}): "
                        f"the longest series has {longest} points, {train_points} of them in train "
                        f"({given}). Give --n_inputs and --n_outputs that add up to at most "
                        f"{train_points} (and train with them), {smaller}, or a longer series")
    empty = [f"the {split} split ({points[split]} point{'s' if points[split] > 1 else ''})"
             for split in ("valid", "test") if points[split] and not counts[split]]
    if not empty:
        return
    problem = (f"{config.input}: {' and '.join(empty)} {'have' if len(empty) > 1 else 'has'} no "
               f"complete window of {width} points ({size}; {given})")
    if config.layout != SERIES_LAYOUT:
        raise DataError(f"{problem}; give a longer series, larger split flags or smaller "
                        "--n_inputs/--n_outputs")
    logger.warning("%s; the trainer needs smaller --n_inputs/--n_outputs to use %s", problem,
                   "them" if len(empty) > 1 else "it")


def dropped_rows_message(report: Dict[str, Any], series_list: Sequence[Series],
                         codes: Sequence[np.ndarray], counts: Dict[str, int], *,
                         config: PrepareConfig, width: int) -> str:
    """What `--on_bad_values drop` left out, where it cut the series, and the windows of
    `--n_inputs` + `--n_outputs` that the cuts cost in each split (against the same series
    uncut)."""
    cuts = sum(len(series.segment_starts) - 1 for series in series_list)
    uncut = count_windows([dataclasses.replace(series, segment_starts=[0]) for series in series_list],
                          codes, n_inputs=config.n_inputs, n_outputs=config.n_outputs,
                          stride=config.stride)
    what = " and ".join(part for part in (
        f"left out {report['dropped_count']} rows with a missing or non-numeric value"
        if report["dropped_count"] else "",
        f"found {report['cut_count']} gaps in time" if report["cut_count"] else "") if part)
    cost = ", ".join(f"{split} {counts[split]} of {uncut[split]}" for split in SPLITS)
    first = report["dropped"][0]
    return (f"--on_bad_values drop: {what} in {config.input}, cutting its series at {cuts} places "
            f"(no window spans a cut). Of the windows of {width} points (--n_inputs "
            f"{config.n_inputs} + --n_outputs {config.n_outputs}) the series would hold uncut, "
            f"that leaves {cost}. Each row is listed under 'dropped' in {SUMMARY_FILENAME}; the "
            f"first: line {first['line']} (series {first['series_id']!r}, {first['timestamp']}): "
            f"{first['reason']}")


def short_of_windows(series_list: Sequence[Series], codes: Sequence[np.ndarray],
                     boundaries: Dict[str, Any], *, n_inputs: int, n_outputs: int) -> str:
    """Which series hold fewer backtest windows than asked in a split, counted and named ('' when
    none does): their history is too short for the inputs of the first window."""
    parts = []
    for split in ("valid", "test"):
        wanted = boundaries.get(f"{split}_windows", 0)
        if not wanted:
            continue
        short = [series.series_id for series, series_codes in zip(series_list, codes)
                 if count_windows([series], [series_codes], n_inputs=n_inputs, n_outputs=n_outputs,
                                  stride=n_outputs)[split] < wanted]
        if short:
            parts.append(f"{len(short)} of {len(series_list)} series have fewer than {wanted} "
                         f"{split} windows of --n_inputs {n_inputs} + --n_outputs {n_outputs} "
                         f"(too short), for example {', '.join(map(str, short[:5]))}")
    return "; ".join(parts)


def median_step(series_list: Sequence[Series]) -> Optional[float]:
    """The median time step of all series, in seconds (dates) or time index units."""
    steps = [np.diff(series_times(series)) for series in series_list if len(series.values) > 1]
    return float(np.median(np.concatenate(steps))) if steps else None


def summarize(summary: Dict[str, Any]) -> str:
    """The CLI's closing lines."""
    counts = "  ".join(f"{split} {summary['splits'][split]['windows']}" for split in SPLITS)
    if summary["layout"] == SERIES_LAYOUT:
        directory = summary["output_dir"]
        patterns = (f"series: {directory}/series-*.csv ({len(summary['files'])} files); train with "
                    f"--data_dir {directory} (the window counts above are of --n_inputs "
                    f"{summary['n_inputs']} + --n_outputs {summary['n_outputs']}; the trainer cuts "
                    "windows of its own --n_inputs/--n_outputs)")
    else:
        first_files = {split: summary["splits"][split]["files"] for split in SPLITS}
        patterns = "  ".join(f"{split}: {files[0].rsplit('-', 3)[0]}-*.csv"
                             for split, files in first_files.items() if files)
    covariates = describe_covariates(summary)
    return (f"windows: {counts}  ({summary['series']} series, {summary['points']} points, "
            f"{summary['dropped_count']} rows dropped)\n{patterns}\n"
            + (f"{covariates}\n" if covariates else "")
            + f"training mean {summary['statistics']['mean']:.6g}  std "
            f"{summary['statistics']['std']:.6g}; boundaries {json.dumps(summary['boundaries'])}")


def describe_covariates(summary: Dict[str, Any]) -> str:
    """'covariates: past load; future promo, day_of_week (calendar); static store (categorical,
    3 values)', or '' when prepare.json lists none.

    >>> describe_covariates({"covariates": [{"name": "promo", "kind": "future"},
    ...     {"name": "store", "kind": "static", "vocabulary": ["a", "b"]}], "calendar_features": []})
    'covariates: future promo; static store (categorical, 2 values)'
    """
    calendar = set(summary.get("calendar_features") or ())
    parts = []
    for kind in ("past", "future", "static"):
        names = []
        for entry in summary.get("covariates") or ():
            if entry["kind"] != kind:
                continue
            note = (" (calendar)" if entry["name"] in calendar else
                    f" (categorical, {len(entry['vocabulary'])} values)" if entry.get("vocabulary")
                    else "")
            names.append(entry["name"] + note)
        if names:
            parts.append(f"{kind} {', '.join(names)}")
    return f"covariates: {'; '.join(parts)}" if parts else ""


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.prepare") -> int:
    parser = build_flag_parser(PrepareConfig, prog=prog,
                               description="Check a raw series CSV (wide or long) and write "
                               "it as a prepared directory for training: the series in shards "
                               "with each point's split by time (train, valid, test), their "
                               "covariates, and prepare.json (--layout windows: windowed rows "
                               "per split instead).")
    return run_command(lambda config: summarize(prepare(config)), argv, parser=parser,
                       make_config=PrepareConfig, quiet_absl=True)


if __name__ == "__main__":
    sys.exit(main())
