"""Each series' in-sample scales (trainer.data.series_scales): by hand, from shards and from
prepare.json alike."""

import json
import subprocess
import sys

import numpy as np
import pytest

from trainer.data.prepared import open_prepared
from trainer.data.series_decode import read_series_file
from trainer.data.series_scales import (
    ScaleSums,
    compute_scales,
    describe_missing,
    stored_scales,
)


def columns(series, segment, split, target):
    return {"series": np.array(series), "segment": np.array(segment), "split": np.array(split),
            "target": np.array(target, dtype=np.float64)}


def test_scales_by_hand_within_segments_and_the_history_of_each_split():
    # Series 0: train 1, 3, | cut | 10, 14, valid 20, test 22. Series 1: train 5, 5 (constant).
    data = columns(series=[0, 0, 0, 0, 0, 0, 1, 1, 1],
                   segment=[0, 0, 1, 1, 1, 1, 0, 0, 0],
                   split=[0, 0, 0, 0, 1, 2, 0, 0, 2],
                   target=[1, 3, 10, 14, 20, 22, 5, 5, 8])
    valid = compute_scales(data, series_count=3, season=1, split="valid")
    # Pairs within a segment and the train split: (1, 3) and (10, 14); never (3, 10) across the cut.
    assert valid.mae_1.tolist()[:2] == [3.0, 0.0]
    assert valid.mse_1.tolist()[:2] == [(4 + 16) / 2, 0.0]
    assert np.isnan(valid.mae_1[2])  # series 2 has no point at all
    test = compute_scales(data, series_count=3, season=1, split="test")
    # The test split's history is train and valid: (1, 3), (10, 14), (14, 20).
    assert test.mae_1[0] == pytest.approx((2 + 4 + 6) / 3)
    seasonal = compute_scales(data, series_count=3, season=2, split="test")
    # Lag 2 within segment 1 up to valid: (10, 20) only.
    assert seasonal.mae_season[0] == 10.0 and seasonal.mae_1[0] == pytest.approx(4.0)
    assert "2 series have no in-sample scale" in describe_missing(valid, ["a", "b", "c"])
    assert describe_missing(valid, ["a", "b", "c"], present=np.array([True, False, False])) == ""


def test_sums_added_file_by_file_equal_one_pass_and_grow_without_series_ids():
    rng = np.random.default_rng(0)
    parts = [columns(series=[s] * 30, segment=[0] * 30, split=[0] * 20 + [1] * 5 + [2] * 5,
                     target=rng.normal(scale=10 ** s, size=30)) for s in range(3)]
    whole = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    sums = ScaleSums(series_count=0, season=4)
    for part in parts:
        sums.add(part)
    one = compute_scales(whole, series_count=3, season=4, split="valid")
    by_file = sums.scales("valid")
    for key in ("mae_1", "mae_season", "mse_1"):
        np.testing.assert_allclose(getattr(by_file, key), getattr(one, key), rtol=1e-12)
    assert by_file.mae_season[2] / by_file.mae_season[0] > 50  # each on its own scale


def test_prepare_stores_the_scales_the_shards_give(tmp_path):
    raw = tmp_path / "long.csv"
    rng = np.random.default_rng(1)
    lines = ["id,t,value"]
    for name, level in (("small", 10.0), ("large", 1e5)):
        for t in range(60):
            lines.append(f"{name},{t},{level * (1 + 0.1 * np.sin(t)) + rng.normal(scale=level / 50):.6f}")
    raw.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "trainer.prepare", "--input", str(raw), "--output_dir",
         str(tmp_path / "prepared"), "--series_id_column", "id", "--timestamp_column", "t",
         "--valid_points", "8", "--test_points", "8", "--n_inputs", "12", "--n_outputs", "4",
         "--season", "6"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "prepared" / "prepare.json").read_text())
    assert summary["series_scales"]["season"] == 6
    prepared = open_prepared(str(tmp_path / "prepared"))
    sums = ScaleSums(series_count=2, season=6)
    for path in prepared.files:
        sums.add(read_series_file(path))
    for split in ("valid", "test"):
        stored = stored_scales(prepared.summary, season=6, split=split, series_count=2)
        computed = sums.scales(split)
        for key in ("mae_1", "mae_season", "mse_1"):  # the shards decode the target as float32
            np.testing.assert_allclose(getattr(stored, key), getattr(computed, key), rtol=1e-6)
        assert stored.mae_season[1] / stored.mae_season[0] > 1000
    assert stored_scales(prepared.summary, season=7, split="valid", series_count=2) is None


def test_bad_flags_and_a_damaged_prepare_json_say_what_to_do():
    from trainer.evaluate import EvaluateConfig
    from trainer.prepare import PrepareConfig
    from trainer.util.errors import ConfigError

    with pytest.raises(ConfigError, match="--per_series needs --data_dir"):
        EvaluateConfig(model_dir="m", data_paths="rows-*.csv", per_series="s.csv")
    with pytest.raises(ConfigError, match="--valid_windows/--test_windows need --layout series"):
        PrepareConfig(input="a.csv", output_dir="out", layout="windows", valid_windows=2)
    with pytest.raises(ConfigError, match="not two of them"):
        PrepareConfig(input="a.csv", output_dir="out", valid_windows=2, valid_points=10)
    damaged = {"_path": "p/prepare.json", "series_scales": {
        "season": 1, "valid": {"mae_1": [1.0], "mae_season": [1.0], "mse_1": [1.0]}}}
    with pytest.raises(ConfigError, match=r"series_scales.valid.mae_1 holds 1 values for 2 series; "
                                          r"prepare the data again"):
        stored_scales(damaged, season=1, split="valid", series_count=2)
