"""Forecast timestamps follow each series' calendar: month starts stay month starts, business
days skip weekends; irregular timestamps step by the median step, with a warning that names
the series. Through `trainer.predict` on a real export, and the function itself."""

import csv
import datetime
import logging
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import run_tool
from tests.exported_models import export_model
from trainer.data.frequency import future_timestamps
from trainer.data.series import read_series

N_INPUTS, N_OUTPUTS = 4, 3

# Each series: its timestamps as written (N_INPUTS + 2 of them), then the forecast's.
CALENDARS: Dict[str, List[List[str]]] = {
    "month_start": [["2010-09-01", "2010-10-01", "2010-11-01", "2010-12-01", "2011-01-01",
                     "2011-02-01"], ["2011-03-01", "2011-04-01", "2011-05-01"]],
    "month_end": [["2023-09-30", "2023-10-31", "2023-11-30", "2023-12-31", "2024-01-31",
                   "2024-02-29"], ["2024-03-31", "2024-04-30", "2024-05-31"]],
    "quarter_end": [["2008-03-31", "2008-06-30", "2008-09-30", "2008-12-31", "2009-03-31",
                     "2009-06-30"], ["2009-09-30", "2009-12-31", "2010-03-31"]],
    "quarter_start": [["2008-01-01", "2008-04-01", "2008-07-01", "2008-10-01", "2009-01-01",
                       "2009-04-01"], ["2009-07-01", "2009-10-01", "2010-01-01"]],
    "year_end": [["2015-12-31", "2016-12-31", "2017-12-31", "2018-12-31", "2019-12-31",
                  "2020-12-31"], ["2021-12-31", "2022-12-31", "2023-12-31"]],
    "year_start": [[f"{year}-01-01" for year in range(1995, 2001)],
                   ["2001-01-01", "2002-01-01", "2003-01-01"]],
    # Thursday 2024-01-04 to Thursday 2024-01-11: the forecast skips the weekend after Friday.
    "business_days": [["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10",
                       "2024-01-11"], ["2024-01-12", "2024-01-15", "2024-01-16"]],
    "weekly_sunday": [["2024-01-07", "2024-01-14", "2024-01-21", "2024-01-28", "2024-02-04",
                       "2024-02-11"], ["2024-02-18", "2024-02-25", "2024-03-03"]],
    "hourly": [["2024-03-30T20:00:00", "2024-03-30T21:00:00", "2024-03-30T22:00:00",
                "2024-03-30T23:00:00", "2024-03-31T00:00:00", "2024-03-31T01:00:00"],
               ["2024-03-31T02:00:00", "2024-03-31T03:00:00", "2024-03-31T04:00:00"]],
}
# No calendar: steps of 1, 2, 1, 3, 1 days; the median step is 1 day.
IRREGULAR = ["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"]


def write_long(path: Path, series: Dict[str, List[str]]) -> Path:
    lines = ["series_id,timestamp,value"]
    for name, stamps in series.items():
        lines += [f"{name},{stamp},{10 + k % 3}" for k, stamp in enumerate(stamps)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_future_timestamps_keep_the_calendar(tmp_path, name):
    given, expected = CALENDARS[name]
    raw = write_long(tmp_path / "raw.csv", {name: given})
    series = read_series(str(raw), gap_factor=0)[0][0]
    assert future_timestamps(series, N_OUTPUTS) == expected


def test_irregular_timestamps_step_by_the_median_with_a_warning(tmp_path, caplog):
    raw = write_long(tmp_path / "raw.csv", {"store_7": IRREGULAR})
    series = read_series(str(raw), gap_factor=0)[0][0]
    with caplog.at_level(logging.WARNING, logger="trainer.data.frequency"):
        assert future_timestamps(series, 2) == ["2024-01-10", "2024-01-11"]
    assert len(caplog.records) == 1
    assert "series 'store_7'" in caplog.text and "median step, 1 day" in caplog.text


def test_after_a_gap_the_last_part_sets_the_calendar(tmp_path):
    """A month missing (dropped as a gap) leaves the whole series without a frequency; the
    part after the gap still steps by month starts."""
    stamps = ["2010-01-01", "2010-02-01", "2010-04-01", "2010-05-01", "2010-06-01"]
    raw = write_long(tmp_path / "raw.csv", {"a": stamps})
    series = read_series(str(raw), on_bad_values="drop")[0][0]
    assert series.segment_starts == [0, 2]
    assert future_timestamps(series, 2) == ["2010-07-01", "2010-08-01"]


def test_a_time_index_steps_by_its_step(tmp_path, caplog):
    raw = tmp_path / "index.csv"
    raw.write_text("timestamp,value\n10,1\n15,2\n20,3\n")
    with caplog.at_level(logging.WARNING):
        assert future_timestamps(read_series(str(raw))[0][0], 2) == ["25", "30"]
    assert not caplog.records


def test_predict_writes_calendar_timestamps_and_names_the_irregular_series(tmp_path):
    """One `trainer.predict --series` on a real export: every calendar at once, and the
    irregular series named in one warning line."""
    model = export_model(tmp_path / "model", n_inputs=N_INPUTS, n_outputs=N_OUTPUTS)
    series = {name: given for name, (given, _) in CALENDARS.items()}
    raw = write_long(tmp_path / "raw.csv", {**series, "irregular": IRREGULAR})
    output, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    # --gap_factor 0: a business-day series' weekend is no gap.
    result = run_tool("trainer.predict", "--model_dir", model, "--series", str(raw),
                      "--gap_factor", "0", "--output", str(output), "--plot", str(plot))
    assert result.returncode == 0, result.stderr[-3000:]
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    written: Dict[str, List[str]] = {}
    for row in rows:
        written.setdefault(row["series_id"], []).append(row["timestamp"])
    assert written == {**{name: expected for name, (_, expected) in CALENDARS.items()},
                       "irregular": ["2024-01-10", "2024-01-11", "2024-01-12"]}
    warnings = [line for line in result.stderr.splitlines() if "calendar frequency" in line]
    assert len(warnings) == 1 and "series 'irregular'" in warnings[0], result.stderr[-3000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_axis_is_the_forecast_calendar(tmp_path):
    """The plot's future x values are the CSV's timestamps, not the last step repeated."""
    from trainer.data.forecast_files import make_figure
    from trainer.data.forecast_inputs import series_windows

    given, expected = CALENDARS["month_end"]
    raw = write_long(tmp_path / "raw.csv", {"a": given})
    results, _ = series_windows(read_series(str(raw))[0], n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                                backtest=False, source=str(raw))
    results[0]["forecast"] = [1.0] * N_OUTPUTS
    results[0]["actual"] = None
    figure = make_figure(results)
    forecast_line = figure.axes[0].lines[1]
    assert [x.date().isoformat() for x in forecast_line.get_xdata()[1:]] == expected
    assert forecast_line.get_xdata()[0] == datetime.datetime(2024, 2, 29)
