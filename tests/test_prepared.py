"""A prepared directory (`trainer.data.prepared`): the series shards as trainer.prepare writes
them, and a directory of the series layout opened, or refused when it is of another layout or
version or holds no shards.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.series_shards import hand_made_rows, write_long, write_prepared
from trainer.data.prepared import open_prepared, read_summary
from trainer.data.series_survey import survey_series_files
from trainer.prepare import PrepareConfig, prepare
from trainer.util.errors import ConfigError, DataError


def test_series_are_kept_whole_and_time_is_seconds_since_1970(tmp_path):
    source = write_long(tmp_path / "raw.csv", [10, 30, 5, 8])
    summary = prepare(PrepareConfig(input=str(source), output_dir=str(tmp_path / "p"), shards=2,
                                    valid_points=1, test_points=1, n_inputs=2, n_outputs=1))
    assert summary["files"] == ["series-00000-of-00002.csv", "series-00001-of-00002.csv"]
    per_file = []
    for name in summary["files"]:
        data = np.loadtxt(tmp_path / "p" / name, delimiter=",", skiprows=1, ndmin=2)
        per_file.append(sorted(set(data[:, 0].astype(int).tolist())))
        if 0 in per_file[-1]:
            first = data[data[:, 0] == 0][0]
            assert first[3] == 1704067200.0  # 2024-01-01T00:00:00 UTC
    # Longest first to the emptiest shard: 30 alone, then 10 + 8 + 5 in the other.
    assert sorted(per_file) == [[0, 2, 3], [1]]


def test_hand_written_shards_without_prepare_files_or_statistics(tmp_path):
    directory = write_prepared(tmp_path / "p", [hand_made_rows()])
    prepared = open_prepared(str(directory))
    assert [Path(p).name for p in prepared.files] == ["series-00000-of-00001.csv"]
    survey = survey_series_files(prepared.files, n_inputs=2, n_outputs=1)
    assert survey.windows["train"] == 6


def test_a_directory_of_another_layout_or_version_is_refused(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "prepare.json").write_text(json.dumps({"layout": "windows", "version": 1,
                                                             "statistics": {}}))
    with pytest.raises(ConfigError, match=r"was prepared with --layout windows, not series; give "
                                          r"its files of rows instead \(trainer.evaluate --data_paths"):
        open_prepared(str(tmp_path / "w"))
    write_prepared(tmp_path / "v", [hand_made_rows()])
    (tmp_path / "v" / "prepare.json").write_text(json.dumps({"layout": "series", "version": 7}))
    with pytest.raises(ConfigError, match=r"is a prepared directory of version 7; this trainer reads "
                                          r"version 1: prepare the data again"):
        open_prepared(str(tmp_path / "v"))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "prepare.json").write_text(json.dumps({"layout": "series", "version": 1}))
    with pytest.raises(DataError, match=r"holds no series-\*.csv shards"):
        open_prepared(str(tmp_path / "e"))


def test_a_raw_csv_given_as_data_dir_is_named_as_not_a_prepared_directory(tmp_path):
    """`--data_dir co2.csv`: not 'is not valid JSON', but what --data_dir must be."""
    raw = tmp_path / "co2.csv"
    raw.write_text("timestamp,value\n2020-01-05,315.5\n")
    expected = (f"--data_dir {raw} is a file: it must be a directory written by forecast prepare "
                "(forecast prepare --input RAW.csv --output_dir DIR ..., then --data_dir DIR)")
    with pytest.raises(ConfigError) as error:
        open_prepared(str(raw))
    assert str(error.value) == expected
    with pytest.raises(ConfigError) as error:  # the trainer reads DIR/prepare.json
        read_summary(f"{raw}/prepare.json")
    assert str(error.value) == expected
    with pytest.raises(ConfigError, match=r"--data_dir .*/nowhere does not exist: it must be a "
                                          r"directory written by forecast prepare"):
        open_prepared(str(tmp_path / "nowhere"))
