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
