"""trainer.model.export_assets: the assets a run writes are the ones an export's reader gets back."""

import json

from trainer.data.covariates import Covariate
from trainer.model.export_assets import (
    CALIBRATED_HEAD_FILENAME,
    COVARIATES_ASSET,
    DATA_ASSET,
    ENSEMBLE_ASSET,
    HEAD_ASSET,
    OLDER_EXPORT_HEAD,
    ExportAssets,
    data_description,
    read_export_assets,
    with_calibrated_head,
    write_export_assets,
)
from trainer.model.heads import get_head

COVARIATES = (Covariate("temp", "past", mean=20.0, std=5.0),
              Covariate("store", "static", vocabulary=("north", "south")))


def test_written_assets_read_back(tmp_path):
    directory = tmp_path / "assets.extra"
    directory.mkdir()
    assets = ExportAssets(
        head=get_head("quantile", (0.1, 0.5, 0.9)).describe(),
        data=data_description(season=7, data_dir="prepared", stats_file="",
                              reading={"target": "value"}),
        covariates=COVARIATES,
        ensemble={"members": [{"name": "seasonal", "kind": "seasonal_naive", "weight": 1.0}]})
    files = write_export_assets(str(directory), assets)
    assert files == {name: str(directory / name)
                     for name in (HEAD_ASSET, DATA_ASSET, COVARIATES_ASSET, ENSEMBLE_ASSET)}
    assert read_export_assets(str(tmp_path)) == assets
    # The texts: indented JSON ending in a new line; data.json's keys sorted.
    assert (directory / HEAD_ASSET).read_text() == json.dumps(assets.head, indent=2) + "\n"
    assert (directory / DATA_ASSET).read_text() == json.dumps(
        {"data_dir": "prepared", "reading": {"target": "value"}, "season": 7, "stats_file": ""},
        indent=2) + "\n"
    assert json.loads((directory / COVARIATES_ASSET).read_text()) == {
        "covariates": [c.to_json() for c in COVARIATES]}
    assert (directory / ENSEMBLE_ASSET).read_text() == json.dumps(assets.ensemble, indent=2) + "\n"


def test_only_the_head_without_data_or_covariates(tmp_path):
    files = write_export_assets(str(tmp_path), ExportAssets(head=get_head("mse").describe()))
    assert list(files) == [HEAD_ASSET]
    assert sorted(path.name for path in tmp_path.iterdir()) == [HEAD_ASSET]


def test_an_older_export_without_assets(tmp_path):
    assets = read_export_assets(str(tmp_path))
    assert assets == ExportAssets(head=OLDER_EXPORT_HEAD, data={}, covariates=(), ensemble={})
    assert assets.head is not OLDER_EXPORT_HEAD


def test_the_calibrated_head_replaces_only_the_head(tmp_path):
    files = write_export_assets(str(tmp_path), ExportAssets(
        head=get_head("mse").describe(), covariates=COVARIATES))
    head = {**get_head("mse").describe(), "quantiles": [0.1, 0.9], "calibration": {"windows": 9}}
    calibrated = with_calibrated_head(files, directory=str(tmp_path), head=head)
    assert calibrated == {**files, HEAD_ASSET: str(tmp_path / CALIBRATED_HEAD_FILENAME)}
    assert json.loads((tmp_path / CALIBRATED_HEAD_FILENAME).read_text()) == head
    assert json.loads((tmp_path / HEAD_ASSET).read_text()) == get_head("mse").describe()
