"""The survey of series shards before training (`trainer.data.series_survey`): a bad shard
named by its file and line, the windows and the series too short for one counted.
"""

import json
from pathlib import Path

import pytest

from tests.series_shards import HEADER, write_prepared
from trainer.data.prepared import open_prepared
from trainer.data.series_survey import survey_series_files
from trainer.util.errors import DataError


@pytest.mark.parametrize("rows,message", [
    ([(0, 0, 0, 0.0, 1.0), (0, 0, 0, 0.0, 2.0)],
     r"line 3 of .*series-00000-of-00001.csv: time 0.0 after 0.0 in series 0; within a series, "
     r"time must increase"),
    ([(0, 0, 0, 0.0, 1.0), (1, 0, 0, 0.0, 2.0), (0, 0, 0, 1.0, 2.0)],
     r"line 4 of .*: series 0 starts again after other series \(it began on line 2\)"),
    ([(0, 0, 1, 0.0, 1.0), (0, 0, 0, 1.0, 2.0)],
     r"line 3 of .*: split 0 after 1 in series 0; within a series, split must never decrease"),
    ([(0, 0, 3, 0.0, 1.0)], r"line 2 of .*: split 3 is not one of 0 \(train\), 1 \(valid\), 2 \(test\)"),
    ([(0, 0, 0, 0.0, "x")], r"line 2 of .*: column 'target' is 'x', not a number"),
    ([(0, 0, 0, 0.0)], r"line 2 of .* has 4 values, expected 5 \(series,segment,split,time,target\)"),
])
def test_bad_shards_name_the_file_and_line(tmp_path, rows, message):
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "series-00000-of-00001.csv").write_text(
        HEADER + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    (directory / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1}))
    with pytest.raises(DataError, match=message):
        survey_series_files(open_prepared(str(directory)).files, n_inputs=1, n_outputs=1)


def test_a_series_index_outside_the_vocabulary_and_a_wrong_header(tmp_path):
    directory = write_prepared(tmp_path / "p", [[(0, 0, 0, 0.0, 1.0), (5, 0, 0, 0.0, 1.0)]],
                               series_ids=["a", "b"])
    files = open_prepared(str(directory)).files
    with pytest.raises(DataError, match=r"line 3 of .*: series 5 is not an index of prepare.json's "
                                        r"series_ids \(0 to 1\)"):
        survey_series_files(files, n_inputs=1, n_outputs=1, series_ids=["a", "b"])
    Path(files[0]).write_text("id,t,v\n0,0,1\n")
    with pytest.raises(DataError, match=r"its first line is 'id,t,v', expected the header "
                                        r"'series,segment,split,time,target'"):
        survey_series_files(files, n_inputs=1, n_outputs=1)


def test_series_too_short_for_a_window_are_counted(tmp_path):
    rows = [(0, 0, 0, float(t), t) for t in range(10)] + [(1, 0, 0, float(t), t) for t in range(3)]
    directory = write_prepared(tmp_path / "p", [rows], series_ids=["long", "short"])
    survey = survey_series_files(open_prepared(str(directory)).files, n_inputs=3, n_outputs=1,
                                 series_ids=["long", "short"])
    assert survey.too_short == 1 and survey.too_short_examples == ["short"]
    assert survey.windows["train"] == 7
