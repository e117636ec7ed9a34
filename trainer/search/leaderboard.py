"""The search's leaderboard: one row per member, the ensemble's and the baselines' rows, as a
printed table, `leaderboard.csv` and `leaderboard.json` in the search's directory."""

import csv
import dataclasses
import io
import json
import math
from typing import List, Optional, Sequence

from trainer.util.files import write_text_atomically

CSV_FILENAME = "leaderboard.csv"
JSON_FILENAME = "leaderboard.json"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the leaderboard."""

    member: str
    settings: str
    status: str  # done, stopped by the time limit, failed, baseline, ensemble, not run
    valid_mase: Optional[float]  # on the backtest windows of the valid split; None: no score
    seconds: float  # training time (0 for the baselines)
    weight: float = 0.0  # in the ensemble
    message: str = ""  # what went wrong, for a failed member


def _cell(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def sorted_rows(rows: Sequence[Row]) -> List[Row]:
    """The ensemble first, then by valid MASE (rows without a score last)."""
    def key(row: Row):
        scored = row.valid_mase is not None and math.isfinite(row.valid_mase)
        return (row.status != "ensemble", not scored, row.valid_mase if scored else 0.0)
    return sorted(rows, key=key)


def table(rows: Sequence[Row]) -> List[str]:
    """The leaderboard as aligned text lines."""
    header = ("member", "valid mase", "weight", "seconds", "status")
    lines = [(row.member, _cell(row.valid_mase), _cell(row.weight, 3), f"{row.seconds:.0f}",
              row.status + (f": {row.message}" if row.message else ""))
             for row in sorted_rows(rows)]
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(4)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[4]
            for line in [header, *lines]]


def write_leaderboard(directory: str, rows: Sequence[Row]) -> List[str]:
    """Write leaderboard.csv and leaderboard.json into `directory`; their paths."""
    ordered = sorted_rows(rows)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[field.name for field in dataclasses.fields(Row)],
                            lineterminator="\n")
    writer.writeheader()
    for row in ordered:
        writer.writerow(dataclasses.asdict(row))
    paths = [f"{directory}/{CSV_FILENAME}", f"{directory}/{JSON_FILENAME}"]
    write_text_atomically(paths[0], text.getvalue())
    records = [{name: None if isinstance(value, float) and not math.isfinite(value) else value
                for name, value in dataclasses.asdict(row).items()} for row in ordered]
    write_text_atomically(paths[1], json.dumps(records, indent=2) + "\n")
    return paths
