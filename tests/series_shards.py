"""Hand-made series shards and prepared directories of the series layout, for the tests.

`hand_made_rows` are two short series with a cut and known windows; `write_prepared` writes
them (or any rows) as shards beside a minimal prepare.json, as tools other than
`trainer.prepare` may; `write_long` writes a raw long CSV for `trainer.prepare` to read.
"""

import json
from pathlib import Path

from trainer.data.prepared import SERIES_COLUMNS

HEADER = ",".join(SERIES_COLUMNS)


def write_shard(path: Path, rows) -> Path:
    """rows: (series, segment, split, time, target) tuples."""
    path.write_text(HEADER + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def write_prepared(directory: Path, shards, **summary) -> Path:
    """A prepared directory written by hand: shards of rows and a minimal prepare.json."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, rows in enumerate(shards):
        write_shard(directory / f"series-{index:05d}-of-{len(shards):05d}.csv", rows)
    (directory / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1,
                                                        **summary}))
    return directory


def hand_made_rows():
    """Series 0: 12 points with a cut after point 5 (segment 1 from point 6); series 1: 7
    points. Targets are 100 * series + point index, so a window names where it came from."""
    rows = []
    for point in range(12):
        split = 0 if point < 8 else (1 if point < 10 else 2)
        rows.append((0, 0 if point < 6 else 1, split, float(point), 100 * 0 + point))
    for point in range(7):
        split = 0 if point < 4 else (1 if point < 5 else 2)
        rows.append((1, 0, split, float(point), 100 * 1 + point))
    return rows


def write_long(path: Path, lengths, *, start_hours=None) -> Path:
    """A long CSV: series s{i} of `lengths[i]` hourly points, value 1000 * i + point index."""
    lines = ["series_id,timestamp,value"]
    for index, length in enumerate(lengths):
        first = (start_hours or [0] * len(lengths))[index]
        for point in range(length):
            hour = first + point
            lines.append(f"s{index},2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00,"
                         f"{1000 * index + point}")
    path.write_text("\n".join(lines) + "\n")
    return path
