"""A prepared directory, the contract between `trainer.prepare` and everything that reads it.

    PREPARED_DIR/
      train-00000-of-00004.csv ...   windows of the training split, rows of `trainer.data.schema`
      valid-*.csv, test-*.csv        the same for the validation and test splits
      prepare.json                   the summary: input, shape, boundaries, windows and files per
                                     split, dropped rows, and the training split's statistics

This module owns the shard names, the writing and reading of prepare.json, and what is read
from it: the training mean and std (for `--scaling global_zscore`) and the in-sample
seasonal naive MAE (the scale of MASE).
"""

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from trainer.data.schema import format_rows
from trainer.data.series import Series
from trainer.data.windows import SPLITS, split_ranges
from trainer.util.errors import ConfigError, DataError

SUMMARY_FILENAME = "prepare.json"


def shard_paths(output_dir: str, split: str, shards: int) -> List[str]:
    """['DIR/train-00000-of-00002.csv', 'DIR/train-00001-of-00002.csv'] for shards=2."""
    return [f"{output_dir}/{split}-{i:05d}-of-{shards:05d}.csv" for i in range(shards)]


def existing_outputs(output_dir: str) -> List[str]:
    """The shards and prepare.json that an earlier preparation left in `output_dir`."""
    if not tf.io.gfile.isdir(output_dir):
        return []
    found = []
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


def write_summary(output_dir: str, summary: Dict[str, Any]) -> str:
    """Write `summary` as OUTPUT_DIR/prepare.json; returns its path."""
    path = f"{output_dir.rstrip('/')}/{SUMMARY_FILENAME}"
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    return path


def read_summary(path: str) -> Dict[str, Any]:
    """The prepare.json at `path` (or in the directory `path`)."""
    if tf.io.gfile.isdir(path):
        path = path.rstrip("/") + "/" + SUMMARY_FILENAME
    if not tf.io.gfile.exists(path):
        raise ConfigError(f"{path} does not exist; give the prepare.json that trainer.prepare wrote")
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error})") from error
    if "statistics" not in summary:
        raise ConfigError(f"{path} has no 'statistics'; is it a prepare.json from trainer.prepare?")
    return summary


def training_statistics(series_list: Sequence[Series], boundaries: Dict[str, Optional[str]], *,
                        season: int) -> Dict[str, Any]:
    """Mean, std (population), min and max of the training points of all series, and the
    in-sample MAE of the naive forecast (season 1) and of the seasonal naive one.

    The naive MAE is the mean of |y[t] - y[t - season]| over training points whose
    predecessor `season` steps back is in the same segment: the scale of MASE.
    """
    values: List[np.ndarray] = []
    differences: Dict[int, List[np.ndarray]] = {s: [] for s in sorted({1, season})}
    for series in series_list:
        for begin, end in series.segments():
            train_end = split_ranges(series.keys[begin:end], boundaries)["train"][1]
            train = series.values[begin:begin + train_end]
            values.append(train)
            for lag in differences:
                differences[lag].append(np.abs(train[lag:] - train[:-lag]) if len(train) > lag
                                        else np.zeros(0))
    everything = np.concatenate(values) if values else np.zeros(0)
    if not len(everything):
        raise DataError("the training split is empty; lower --valid_fraction/--test_fraction or "
                        "move --valid_start later")
    naive_mae = {}
    for lag, parts in differences.items():
        joined = np.concatenate(parts)
        naive_mae[str(lag)] = float(joined.mean()) if len(joined) else None
    return {"count": int(len(everything)), "mean": float(everything.mean()),
            "std": float(everything.std()), "min": float(everything.min()),
            "max": float(everything.max()), "in_sample_naive_mae": naive_mae}


def training_mean_std(summary: Dict[str, Any]) -> Tuple[float, float]:
    """The training split's mean and std (population), for global z-scoring."""
    return float(summary["statistics"]["mean"]), float(summary["statistics"]["std"])


def mase_scale(summary: Dict[str, Any], *, season: int, source: str) -> Optional[float]:
    """The training split's in-sample MAE of the seasonal naive forecast with `season`.

    Raises ConfigError when the preparation did not compute it for that season.
    """
    by_season = summary["statistics"].get("in_sample_naive_mae", {})
    if str(season) not in by_season:
        raise ConfigError(f"{source} has the in-sample naive MAE for seasons "
                          f"{', '.join(sorted(by_season, key=int)) or 'none'}, not --season "
                          f"{season}; rerun trainer.prepare with --season {season}")
    return by_season[str(season)]
