"""trainer.predict's pieces without a trained model: rows, timestamps, model paths, the plot extra."""

import sys

import numpy as np
import pytest

from trainer.errors import ConfigError, DataError
from trainer.predict import _future_timestamps, draw_plot, read_rows, resolve_saved_model
from trainer.prepare import read_series

N_INPUTS, N_OUTPUTS = 4, 2


def read(tmp_path, text: str, *, allow_inputs_only=True):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    return read_rows(str(path), n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, flag="--rows",
                     model_path="m/1", allow_inputs_only=allow_inputs_only), str(path)


def test_rows_with_targets_and_inputs_only(tmp_path):
    data, _ = read(tmp_path, "1,2,3,4,5,6\n7,8,9,10,11,12\n")
    np.testing.assert_array_equal(data["inputs"], [[1, 2, 3, 4], [7, 8, 9, 10]])
    np.testing.assert_array_equal(data["actual"], [[5, 6], [11, 12]])
    data, _ = read(tmp_path, "1,2,3,4\n")
    assert data["actual"] is None and data["inputs"].shape == (1, N_INPUTS)


def test_rows_of_mixed_or_wrong_width_are_named(tmp_path):
    with pytest.raises(DataError, match=r"row 2 of .*rows.csv has 4 values, expected 6: the model at m/1"):
        read(tmp_path, "1,2,3,4,5,6\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"row 1 of .*rows.csv has 4 values, expected 6: .* reads "
                                         r"n_inputs 4 and forecasts n_outputs 2"):
        read(tmp_path, "1,2,3,4\n", allow_inputs_only=False)
    with pytest.raises(DataError, match=r"row 1 of .*rows.csv: 'x' is not a number"):
        read(tmp_path, "1,2,x,4\n")


def test_future_timestamps_continue_the_median_step(tmp_path):
    dates = tmp_path / "dates.csv"
    dates.write_text("timestamp,value\n2024-02-27,1\n2024-02-28,2\n2024-02-29,3\n")
    assert _future_timestamps(read_series(str(dates))[0][0], 2) == ["2024-03-01", "2024-03-02"]
    hours = tmp_path / "hours.csv"
    hours.write_text("timestamp,value\n2024-01-01T22:00:00,1\n2024-01-01T23:00:00,2\n")
    assert _future_timestamps(read_series(str(hours))[0][0], 1) == ["2024-01-02T00:00:00"]
    index = tmp_path / "index.csv"
    index.write_text("timestamp,value\n10,1\n15,2\n20,3\n")
    assert _future_timestamps(read_series(str(index))[0][0], 2) == ["25", "30"]


def test_model_dir_without_an_export_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no saved_model.pb and no export/latest"):
        resolve_saved_model(str(tmp_path))
    for stamp in ("100", "200"):
        (tmp_path / "export" / "latest" / stamp).mkdir(parents=True)
        (tmp_path / "export" / "latest" / stamp / "saved_model.pb").write_bytes(b"")
    assert resolve_saved_model(str(tmp_path)) == f"{tmp_path}/export/latest/200"


def test_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ConfigError, match=r"--plot needs matplotlib, which is not installed: "
                                          r"pip install matplotlib"):
        draw_plot(str(tmp_path / "p.png"), [], title="t")
