"""The forecast files: the plot extra is optional and says what to install."""

import sys

import pytest

from trainer.data.forecast_files import draw_plot
from trainer.util.errors import ConfigError


def test_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ConfigError, match=r"--plot needs matplotlib, which is not installed in "
                                          r"this Python \(.*\)\. Install it with: pip install "
                                          r"'matplotlib>=3.5' \(or, in a clone of this package, "
                                          r"\.venv/bin/pip install -e '\.\[plot\]'"):
        draw_plot(str(tmp_path / "p.png"), [])
    assert not (tmp_path / "p.png").exists()


def test_plot_is_titled_per_series_and_draws_a_bounded_history():
    import datetime

    import numpy as np

    from trainer.data.forecast_files import make_figure

    days = [datetime.datetime(2015, 1, 1) + datetime.timedelta(days=k) for k in range(3650)]
    result = {"id": "store_a", "history": np.arange(3650.0), "history_keys": days,
              "forecast": np.full(13, 5.0), "actual": None,
              "future_keys": [days[-1] + datetime.timedelta(days=k) for k in range(1, 14)]}
    figure = make_figure([result, {**result, "id": "store_b"}], history_points=52)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["series store_a", "series store_b"]
    history, forecast = figure.axes[0].lines[:2]
    assert len(history.get_xdata()) == 52  # not ten years squeezing 13 forecast points
    assert len(forecast.get_xdata()) == 14  # joined at the last known point
    assert history.get_xdata()[-1] == days[-1]
    row = make_figure([{"id": 3, "history": np.arange(9.0), "forecast": np.ones(2), "actual": None}])
    assert row.axes[0].get_title() == "row 3"
