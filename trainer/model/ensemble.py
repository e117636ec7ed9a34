"""A weighted ensemble of forecasters, exported as one SavedModel with a single model's signature.

`export_ensemble` loads its members (the exports of training runs, and the naive baselines
computed in the graph), checks that they fit together, and saves one `tf.Module` that holds
every member's loaded SavedModel and one serving function:

- **the inputs** are a single model's (`trainer.model.serving.serving_input_shapes`) for the
  longest look-back n = max n_i: `rawdata` [batch, n] and the members' covariates. Each member
  reads the last n_i steps of `rawdata` and of the past covariates [batch, n, P], the last
  n_i + n_outputs steps of the future ones [batch, n + n_outputs, F] (the first n - n_i
  dropped), and the static ones unchanged; a baseline reads `rawdata`
  (`trainer.model.metrics.naive_forecast`, `seasonal_naive_forecast`: the metrics' baselines);
- **`predicted`** is sum_i w_i predicted_i, the weights normalised to sum 1;
- **`quantiles`** are combined level by level over the members that have them (their weights
  normalised again over those members): a weighted mean of non-crossing quantiles does not
  cross, and `trainer.model.calibration.non_crossing` guards it anyway. Point members and
  baselines add to `predicted` only. A `Calibration` moves the combined quantiles, or makes
  them from `predicted` when no member has any, as it does a single model's
  (`calibrate_predictions`, on the scale of the ensemble's whole `rawdata`).

The export is `export_dir_base/<timestamp>/` like an Estimator exporter's, with the assets of a
single model (`trainer.model.export_assets`: head.json, and the members' data.json and
covariates.json) and ensemble.json (the members, their weights and look-backs), so that
`load_exported_model`, trainer.evaluate, trainer.predict, trainer.instances and Vertex AI serve
it as they serve one model.

    export = export_ensemble([Member("saved_model", 0.25, path="run_a/export/best/1700000000"),
                              Member("saved_model", 0.5, path="run_b/export/best/1700000123"),
                              Member("seasonal_naive", 0.25, season=7)],
                             export_dir_base="auto/export/ensemble")
    load_exported_model(export).predict(windows)  # [windows, n_outputs]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from trainer.data.covariates import Covariate
from trainer.data.schema import FEATURE_KEY
from trainer.model.calibration import (
    Calibration,
    anchor_index,
    calibrate_predictions,
    calibrated_description,
    non_crossing,
)
from trainer.model.export_assets import (
    ASSETS_EXTRA,
    ENSEMBLE_ASSET,
    ExportAssets,
    read_export_assets,
    write_export_assets,
)
from trainer.model.heads import PREDICTIONS_KEY, QUANTILE_LEVELS_KEY, QUANTILES_KEY
from trainer.model.metrics import BASELINES, naive_forecast, seasonal_naive_forecast
from trainer.model.serving import ExportedModel, load_exported_model, serving_input_shapes
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

SAVED_MODEL_MEMBER = "saved_model"  # a training run's export
# What a member can be: an export, or one of the metrics' baselines computed in the graph.
MEMBER_KINDS = (SAVED_MODEL_MEMBER,) + BASELINES
ENSEMBLE_LOSS = "ensemble"  # head.json's "loss" of an ensemble: it was trained by no loss
PREDICTED_NOTE = f"the weighted mean of the members' point forecasts (weights in {ENSEMBLE_ASSET})"


@dataclasses.dataclass(frozen=True)
class Member:
    """One member of an ensemble: an export (`path`) or a baseline, and its weight.

    >>> Member("seasonal_naive", 2.0, season=7).label
    'seasonal_naive (season 7)'
    """

    kind: str  # one of MEMBER_KINDS
    weight: float  # > 0; an ensemble normalises its members' weights to sum 1
    path: str = ""  # the SavedModel (or run directory) of a "saved_model" member; may be gs://
    season: int = 0  # the season of a "seasonal_naive" member
    name: str = ""  # for ensemble.json and the logs; `label` when empty

    def __post_init__(self) -> None:
        if self.kind not in MEMBER_KINDS:
            raise ValueError(f"ensemble member {self.label!r} has the kind {self.kind!r}; expected "
                             f"one of {', '.join(MEMBER_KINDS)}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"ensemble member {self.label!r} has the weight {self.weight}; "
                             "expected a number > 0")
        if (self.kind == SAVED_MODEL_MEMBER) != bool(self.path):
            raise ValueError(f"ensemble member {self.label!r} of kind {self.kind!r} "
                             f"{'needs' if self.kind == SAVED_MODEL_MEMBER else 'takes no'} path")
        if (self.kind == "seasonal_naive") != (self.season != 0) or self.season < 0:
            raise ValueError(f"ensemble member {self.label!r} of kind {self.kind!r} has the season "
                             f"{self.season}; a seasonal_naive member needs a season >= 1, the "
                             "others none")

    @property
    def label(self) -> str:
        """The member's name, else its path, else its kind (and season)."""
        if self.name or self.path:
            return self.name or self.path
        return f"{self.kind} (season {self.season})" if self.season else self.kind

    def reads(self) -> int:
        """How many inputs a baseline member reads (1 for naive, its season for seasonal naive)."""
        return self.season or 1

    def baseline_forecast(self, rawdata: tf.Tensor, *, n_outputs: int) -> tf.Tensor:
        """The forecast [batch, n_outputs] of a baseline member from `rawdata` [batch, n]."""
        if self.kind == "seasonal_naive":
            return seasonal_naive_forecast(rawdata, n_outputs=n_outputs, season=self.season)
        return naive_forecast(rawdata, n_outputs=n_outputs)

    def to_json(self, *, n_inputs: int) -> Dict[str, Any]:
        """The member's entry in ensemble.json, with the inputs it reads."""
        return {"name": self.label, "kind": self.kind, "weight": self.weight, "path": self.path,
                "n_inputs": n_inputs, "season": self.season}

    @classmethod
    def from_json(cls, entry: Dict[str, Any], *, source: str) -> Member:
        """The member of an ensemble.json entry (`to_json`'s keys); a ValueError names `source`."""
        try:
            return cls(kind=str(entry["kind"]), weight=float(entry["weight"]),
                       path=str(entry.get("path", "")), season=int(entry.get("season", 0)),
                       name=str(entry.get("name", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: ensemble member {entry!r} is not valid ({error}); it needs "
                             "a kind and a weight") from None


def normalised(members: Sequence[Member]) -> Tuple[Member, ...]:
    """The members with their weights divided by their sum, and their labels as names.

    >>> [m.weight for m in normalised([Member("naive", 1.0), Member("naive", 3.0)])]
    [0.25, 0.75]
    """
    total = sum(member.weight for member in members)
    return tuple(dataclasses.replace(member, weight=member.weight / total, name=member.label)
                 for member in members)


def _covariate_text(covariate: Covariate) -> str:
    how = (f"vocabulary {'/'.join(covariate.vocabulary)}" if covariate.categorical
           else f"mean {covariate.mean:g}, std {covariate.std:g}")
    return f"{covariate.name} ({covariate.kind}, {how})"


def _covariates_text(covariates: Sequence[Covariate]) -> str:
    return ", ".join(_covariate_text(covariate) for covariate in covariates) or "none"


# What every member with a SavedModel must agree on: (what it is, its value, its text).
_AGREEMENTS = (
    ("forecasts n_outputs", lambda model: model.n_outputs, str),
    ("takes the covariates", lambda model: model.covariates, _covariates_text),
    ("was trained on the data (data.json)", lambda model: model.data,
     lambda data: json.dumps(data, sort_keys=True)),
)


def _check_agreement(models: Sequence[Tuple[Member, ExportedModel]], *, what: str,
                     value_of: Callable[[ExportedModel], Any], text_of: Callable[[Any], str]
                     ) -> None:
    """A ValueError naming the first member whose `value_of` differs from the first member's."""
    first, reference = models[0]
    for member, model in models[1:]:
        if value_of(model) != value_of(reference):
            raise ValueError(f"ensemble member {member.label!r} ({model.path}) {what} "
                             f"{text_of(value_of(model))}, but {first.label!r} ({reference.path}) "
                             f"{what} {text_of(value_of(reference))}: the members of an ensemble "
                             "must agree")


def member_features(features: Dict[str, Any], inputs: Dict[str, Tuple[Any, List[Optional[int]]]]
                    ) -> Dict[str, Any]:
    """What a member of look-back n_i reads of the ensemble's `features` (tensors or arrays of
    the longest look-back): the last steps of each input its signature takes (`inputs`: name ->
    (dtype, shape), `ExportedModel.inputs`). That is n_i steps of rawdata and of the past
    covariates, n_i + n_outputs of the future ones; a static input has the same width in every
    signature, so its "last steps" are all of it.

    >>> member_features({"rawdata": tf.reshape(tf.range(6.0), [1, 6])},
    ...                 {"rawdata": (tf.float32, [None, 4])})["rawdata"].numpy().tolist()
    [[2.0, 3.0, 4.0, 5.0]]
    """
    return {name: features[name][:, -shape[1]:] for name, (_, shape) in inputs.items()}


@dataclasses.dataclass(frozen=True)
class _Ensemble:
    """The checked members (normalised), each export loaded, and what the export will be."""

    members: Tuple[Tuple[Member, Optional[ExportedModel]], ...]  # None: a baseline
    n_inputs: int  # the longest look-back: the ensemble's rawdata width
    n_outputs: int
    covariates: Tuple[Covariate, ...]
    levels: Tuple[float, ...]  # the members' quantile levels; () when none has quantiles
    data: Dict[str, Any]
    calibration: Optional[Calibration]

    def inputs(self) -> Dict[str, Tuple[tf.DType, List[Optional[int]]]]:
        return serving_input_shapes(n_inputs=self.n_inputs, n_outputs=self.n_outputs,
                                    covariates=self.covariates)

    def forecast(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The serving function: the inputs of `inputs()` -> a single model's outputs."""
        rawdata = features[FEATURE_KEY]
        points, quantiles, quantile_levels = [], [], None
        for member, model in self.members:
            if model is None:
                points.append(member.weight * member.baseline_forecast(
                    rawdata, n_outputs=self.n_outputs))
                continue
            outputs = model.serve(**member_features(features, model.inputs))
            points.append(member.weight * outputs[PREDICTIONS_KEY])
            if QUANTILES_KEY in outputs:
                quantiles.append((member.weight, outputs[QUANTILES_KEY]))
                quantile_levels = outputs[QUANTILE_LEVELS_KEY]
        predictions = {PREDICTIONS_KEY: tf.add_n(points)}
        if quantiles:
            total = sum(weight for weight, _ in quantiles)
            combined = tf.add_n([(weight / total) * values for weight, values in quantiles])
            # Weights >= 0 keep each member's order (float rounding is monotone too); the guard
            # costs Q - 1 maxima and minima.
            predictions[QUANTILES_KEY] = non_crossing(combined, anchor=anchor_index(self.levels))
            predictions[QUANTILE_LEVELS_KEY] = quantile_levels
        if self.calibration is not None:
            predictions = calibrate_predictions(predictions, rawdata=rawdata,
                                                calibration=self.calibration)
        return predictions

    def assets(self) -> ExportAssets:
        """head.json (a calibrated one with a calibration), the members' data.json and
        covariates.json, and ensemble.json."""
        head = {"loss": ENSEMBLE_LOSS, "quantiles": list(self.levels), "predicted": PREDICTED_NOTE}
        if self.calibration is not None:
            head = calibrated_description(head, self.calibration)
        entries = [member.to_json(n_inputs=model.n_inputs if model else member.reads())
                   for member, model in self.members]
        return ExportAssets(head=head, data=self.data, covariates=self.covariates,
                            ensemble={"members": entries})


def _load(members: Sequence[Member], calibration: Optional[Calibration]) -> _Ensemble:
    """Load the exports of `members` (each path once) and check that they fit together."""
    if not any(member.kind == SAVED_MODEL_MEMBER for member in members):
        raise ValueError(f"an ensemble needs at least one member of kind {SAVED_MODEL_MEMBER!r} "
                         f"(its n_outputs and covariates make the signature); got "
                         f"{[member.label for member in members] or 'no members'}")
    loaded: Dict[str, ExportedModel] = {}
    pairs: List[Tuple[Member, Optional[ExportedModel]]] = []
    for member in normalised(members):
        if member.kind != SAVED_MODEL_MEMBER:
            pairs.append((member, None))
            continue
        if member.path not in loaded:
            loaded[member.path] = load_exported_model(member.path)
        model = loaded[member.path]
        model.require_covariates_asset(": an ensemble builds its signature from it")
        expected = serving_input_shapes(n_inputs=model.n_inputs, n_outputs=model.n_outputs,
                                        covariates=model.covariates)
        if model.inputs != expected:
            raise ValueError(f"ensemble member {member.label!r} ({model.path}) takes the inputs "
                             f"{model.inputs}, not those of a model of this package with its "
                             f"covariates: {expected}")
        pairs.append((dataclasses.replace(member, path=model.path), model))
    models = [(member, model) for member, model in pairs if model is not None]
    for what, value_of, text_of in _AGREEMENTS:
        _check_agreement(models, what=what, value_of=value_of, text_of=text_of)
    with_quantiles = [(member, model) for member, model in models if model.levels]
    if with_quantiles:
        _check_agreement(with_quantiles, what="has the quantile levels",
                         value_of=lambda model: model.levels,
                         text_of=lambda levels: ",".join(f"{level:g}" for level in levels))
    reference = models[0][1]
    levels = with_quantiles[0][1].levels if with_quantiles else ()
    if calibration is not None and (calibration.n_outputs != reference.n_outputs
                                    or (levels and calibration.levels != levels)):
        raise ValueError(f"the calibration of the ensemble calibrates the levels "
                         f"{list(calibration.levels)} over {calibration.n_outputs} steps; its "
                         f"members forecast {reference.n_outputs} steps"
                         + (f" at the levels {list(levels)}" if levels else ""))
    n_inputs = max(model.n_inputs if model else member.reads()
                   for member, model in pairs)
    return _Ensemble(members=tuple(pairs), n_inputs=n_inputs, n_outputs=reference.n_outputs,
                     covariates=reference.covariates, levels=levels, data=reference.data,
                     calibration=calibration)


def _new_export_dirs(export_dir_base: str) -> Tuple[str, str]:
    """(temporary, final) directories of a new export under `export_dir_base`, named by the time
    in seconds as the Estimator's exporters name theirs (the next free second)."""
    base = export_dir_base.rstrip("/")
    stamp = int(time.time())
    while any(tf.io.gfile.exists(f"{base}/{prefix}{stamp}") for prefix in ("", "temp-")):
        stamp += 1
    return f"{base}/temp-{stamp}", f"{base}/{stamp}"


def export_ensemble(members: Sequence[Member], *, export_dir_base: str,
                    calibration: Optional[Calibration] = None) -> str:
    """Export the weighted ensemble of `members` as one SavedModel in a new
    `export_dir_base/<timestamp>/`; returns its path.

    Args:
      members: at least one of kind "saved_model"; those must agree on n_outputs, covariates
        and data.json, and those with quantiles on the levels (a ValueError names the member).
      export_dir_base: where the timestamped export goes (local or gs://), e.g. a run's
        export/best, which `resolve_saved_model` searches.
      calibration: applied to the combined quantiles (its levels those of the members), or to
        `predicted` when no member has quantiles; its n_outputs the members'.
    """
    ensemble = _load(members, calibration)
    specs = {name: tf.TensorSpec(shape, dtype, name=name)
             for name, (dtype, shape) in ensemble.inputs().items()}
    serve = tf.function(ensemble.forecast, input_signature=[specs]).get_concrete_function()
    module = tf.Module()
    # The loaded members own the variables the serving function reads: the module saves them.
    module.members = list({id(model): model.root for _, model in ensemble.members if model}.values())
    temporary, export = _new_export_dirs(export_dir_base)
    try:
        tf.saved_model.save(module, temporary,
                            signatures={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serve})
        write_export_assets(f"{temporary}/{ASSETS_EXTRA}", ensemble.assets())
        tf.io.gfile.rename(temporary, export)
    except BaseException:
        if tf.io.gfile.exists(temporary):  # no half-written export left beside the others
            tf.io.gfile.rmtree(temporary)
        raise
    logger.info("ensemble of %s: %d inputs -> %d outputs%s, exported to %s",
                ", ".join(f"{member.label} ({member.weight:.3g})" for member, _ in ensemble.members),
                ensemble.n_inputs, ensemble.n_outputs,
                "; quantiles " + ",".join(f"{level:g}" for level in
                                          (calibration.levels if calibration else ensemble.levels))
                if ensemble.levels or calibration else "", export)
    return export


def read_members(export: str) -> Tuple[Member, ...]:
    """The members of the ensemble exported at `export` (weights normalised, as exported); a
    ValueError when the export is not an ensemble's."""
    ensemble = read_export_assets(export).ensemble
    source = f"{export}/{ASSETS_EXTRA}/{ENSEMBLE_ASSET}"
    if not ensemble.get("members"):
        raise ValueError(f"{export} is not the export of an ensemble: it has no {source} listing "
                         "members")
    return tuple(Member.from_json(entry, source=source) for entry in ensemble["members"])
