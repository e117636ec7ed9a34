"""The assets every export carries in `assets.extra/`, written and read here only.

- `head.json` (`HEAD_ASSET`), in every export: the head's description (`Head.describe()`: the
  loss, the quantile levels, what `predicted` is) and, for calibrated intervals, the calibration;
- `data.json` (`DATA_ASSET`), in a training run's exports: what the model was trained on
  (`--season`, `--data_dir` or `--stats_file`, how trainer.prepare read the raw CSV);
- `covariates.json` (`COVARIATES_ASSET`), in the export of a model with covariates: their names,
  kinds, vocabularies and statistics;
- `ensemble.json` (`ENSEMBLE_ASSET`), in the export of an ensemble (`trainer.model.ensemble`):
  its members, their kinds, weights, paths, look-backs and seasons.

With them trainer.evaluate, trainer.predict and trainer.instances need no flag the training run
already had. A run writes the files once into its output directory (`write_export_assets`:
{asset name: file}, what an exporter's `assets_extra` takes), and every export copies them;
the calibrated export takes the same files with another head (`with_calibrated_head`); an
export written by `tf.saved_model.save` (an ensemble) gets them written into its own
`ASSETS_EXTRA` folder.
`read_export_assets` reads them back from an export, an older one (made before an asset
existed) included.

    files = write_export_assets("/tmp/run", ExportAssets(head=get_head("mse").describe()))
    estimator.export_saved_model("/tmp/run/export", receiver_fn, assets_extra=files)
    read_export_assets(export).head["loss"]  # "mse"
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Sequence, Tuple

from trainer.data.covariates import Covariate, covariates_of
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

# The folder of an export that holds its assets.
ASSETS_EXTRA = "assets.extra"
# In every export: the head's loss and quantile levels, so evaluate and predict need no flag.
HEAD_ASSET = "head.json"
# In every export: what the model was trained on (`data_json`), so that the tools need no flag
# the training run already had.
DATA_ASSET = "data.json"
# In an export of a model with covariates: their names, kinds, vocabularies and statistics.
COVARIATES_ASSET = "covariates.json"
# In the export of an ensemble: its members (`trainer.model.ensemble.Member`) and their weights.
ENSEMBLE_ASSET = "ensemble.json"
# The head.json of the calibrated export, written beside the run's own head.json.
CALIBRATED_HEAD_FILENAME = "calibrated_head.json"
# The head of an export without `HEAD_ASSET`, made before it existed: the mean squared error.
OLDER_EXPORT_HEAD = {"loss": "mse", "quantiles": [],
                     "predicted": "the forecast of the mean squared error"}


@dataclasses.dataclass(frozen=True)
class ExportAssets:
    """What an export's assets hold, as JSON values."""

    head: Dict[str, Any]  # head.json
    data: Dict[str, Any] = dataclasses.field(default_factory=dict)  # data.json ({}: none)
    covariates: Tuple[Covariate, ...] = ()  # covariates.json (none: no file)
    ensemble: Dict[str, Any] = dataclasses.field(default_factory=dict)  # ensemble.json ({}: none)


def head_json(description: Dict[str, Any]) -> str:
    """The text of `HEAD_ASSET`: a head's description (`Head.describe()`, or a calibrated one)."""
    return json.dumps(description, indent=2) + "\n"


def data_description(*, season: int, data_dir: str, stats_file: str, reading: Dict[str, Any]
                     ) -> Dict[str, Any]:
    """What `DATA_ASSET` holds: the trainer's `--season` (of the seasonal naive baseline and
    MASE), its `--data_dir` or `--stats_file`, and how trainer.prepare read the raw CSV of that
    data (`reading`: target, timestamp_column, series_id_column, on_bad_values, gap_factor)."""
    return {"season": season, "data_dir": data_dir, "stats_file": stats_file, "reading": reading}


def data_json(data: Dict[str, Any]) -> str:
    """The text of `DATA_ASSET`.

    >>> text = data_json(data_description(season=7, data_dir="prepared", stats_file="", reading={}))
    >>> json.loads(text)["season"]
    7
    """
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def covariates_json(covariates: Sequence[Covariate]) -> str:
    """The text of `COVARIATES_ASSET`."""
    return json.dumps({"covariates": [c.to_json() for c in covariates]}, indent=2) + "\n"


def ensemble_json(ensemble: Dict[str, Any]) -> str:
    """The text of `ENSEMBLE_ASSET`."""
    return json.dumps(ensemble, indent=2) + "\n"


def write_export_assets(directory: str, assets: ExportAssets) -> Dict[str, str]:
    """Write the files of `assets` into `directory`, made if missing (head.json; data.json,
    covariates.json and ensemble.json when there are any); returns {asset name: file}, an
    exporter's `assets_extra`."""
    tf.io.gfile.makedirs(directory)
    files = {HEAD_ASSET: f"{directory}/{HEAD_ASSET}"}
    write_text_atomically(files[HEAD_ASSET], head_json(assets.head))
    if assets.data:
        files[DATA_ASSET] = f"{directory}/{DATA_ASSET}"
        write_text_atomically(files[DATA_ASSET], data_json(assets.data))
    if assets.covariates:
        files[COVARIATES_ASSET] = f"{directory}/{COVARIATES_ASSET}"
        write_text_atomically(files[COVARIATES_ASSET], covariates_json(assets.covariates))
    if assets.ensemble:
        files[ENSEMBLE_ASSET] = f"{directory}/{ENSEMBLE_ASSET}"
        write_text_atomically(files[ENSEMBLE_ASSET], ensemble_json(assets.ensemble))
    return files


def with_calibrated_head(files: Dict[str, str], *, directory: str, head: Dict[str, Any]
                         ) -> Dict[str, str]:
    """The assets `files` of a run (`write_export_assets`) with the head `head` of its
    calibrated export instead, written to `CALIBRATED_HEAD_FILENAME` in `directory`."""
    head_file = f"{directory}/{CALIBRATED_HEAD_FILENAME}"
    write_text_atomically(head_file, head_json(head))
    return {**files, HEAD_ASSET: head_file}


def _read_asset(path: str, name: str) -> Any:
    """The JSON of the asset `name` of the export at `path`, None when it has none."""
    asset = f"{path}/{ASSETS_EXTRA}/{name}"
    if not tf.io.gfile.exists(asset):
        return None
    with tf.io.gfile.GFile(asset, "r") as handle:
        return json.loads(handle.read())


def read_export_assets(path: str) -> ExportAssets:
    """The assets of the export at `path`: its head (`OLDER_EXPORT_HEAD` when it has no
    head.json), what it was trained on ({} when older), its covariates (none without the
    asset) and, for an ensemble, its members ({} otherwise)."""
    head = _read_asset(path, HEAD_ASSET)
    data = _read_asset(path, DATA_ASSET)
    covariates = _read_asset(path, COVARIATES_ASSET)
    ensemble = _read_asset(path, ENSEMBLE_ASSET)
    return ExportAssets(
        head=dict(OLDER_EXPORT_HEAD) if head is None else head,
        data={} if data is None else data,
        covariates=() if covariates is None else tuple(covariates_of(
            covariates, source=f"{path}/{ASSETS_EXTRA}/{COVARIATES_ASSET}")),
        ensemble={} if ensemble is None else ensemble)
