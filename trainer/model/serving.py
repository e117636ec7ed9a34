"""The serving signature, from both sides: the receiver that exports it, the client that calls it.

The SavedModel's `serving_default` signature takes float32 `rawdata` [batch, n_inputs] (raw
values, in the series' units), and for a model trained with covariates the inputs of
`serving_input_shapes` beside it (`past_covariates` [batch, n_inputs, P], `future_covariates`
[batch, n_inputs + n_outputs, F], `static_covariates` [batch, S], `static_categories` int64
[batch, C], in prepare.json's column order), and returns the head's predictions, `predicted`
[batch, n_outputs] for every head, and for the quantile head (or any head with calibrated
intervals, `trainer.model.calibration`) `quantiles` [batch, n_outputs, Q] and
`quantile_levels` [batch, Q]. Every export carries `assets.extra/head.json` (the loss, the
levels, what `predicted` is and, when calibrated, the calibration) and
`assets.extra/data.json` (the training run's season and data, and how its raw CSV was read),
both written and read by `trainer.model.export_assets`.
`make_serving_input_receiver_fn` builds that input through `trainer.data.schema.build_features`,
the transform training uses too; `load_exported_model` loads any export, reads n_inputs and
n_outputs from its signature, the head from its asset, and forecasts in batches
(`trainer.evaluate` and `trainer.predict` both use it).

A training run exports to `OUTPUT_DIR/export/<exporter>/<timestamp>/` (`EXPORT_DIR`), which
`resolve_saved_model` searches when given a run directory; `copy_saved_model` writes an export
into a directory of its own choosing (Vertex AI's $AIP_MODEL_DIR), where it is loaded as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from trainer.data.covariates import Covariate
from trainer.data.schema import COVARIATE_KEY, FEATURE_KEY, build_features
from trainer.model.covariate_inputs import of_kind
from trainer.model.export_assets import COVARIATES_ASSET, HEAD_ASSET, read_export_assets
from trainer.model.heads import PREDICTIONS_KEY, QUANTILES_KEY
from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

EXPORT_DIR = "export"  # under the run directory: export/latest/<timestamp>, export/best/<timestamp>
LATEST_EXPORTER = "latest"
BEST_EXPORTER = "best"
PREDICT_BATCH_SIZE = 4096
SAVED_MODEL_FILE = "saved_model.pb"
# What a SavedModel directory holds besides SAVED_MODEL_FILE; `copy_saved_model` replaces
# these and leaves every other name in the destination alone.
SAVED_MODEL_PARTS = ("variables", "assets", "assets.extra", "fingerprint.pb")


def serving_input_shapes(*, n_inputs: int, n_outputs: int, covariates: Sequence[Covariate] = ()
                         ) -> Dict[str, Tuple[tf.DType, List[Optional[int]]]]:
    """The signature's inputs: name -> (dtype, shape). `rawdata` always; each kind of covariate
    the model was trained with (`trainer.data.schema.COVARIATE_KEYS`) beside it."""
    shapes: Dict[str, Tuple[tf.DType, List[Optional[int]]]] = {
        FEATURE_KEY: (tf.float32, [None, n_inputs])}
    steps = {"past": [n_inputs], "future": [n_inputs + n_outputs], "static": []}
    for (kind, categorical), key in COVARIATE_KEY.items():
        count = len(of_kind(covariates, kind, categorical=categorical))
        if count:
            shapes[key] = (tf.int64 if categorical else tf.float32, [None, *steps[kind], count])
    return shapes


def make_serving_input_receiver_fn(
        *, n_inputs: int, n_outputs: int = 0, covariates: Sequence[Covariate] = ()
) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Serving receiver: float32 `rawdata` [batch, n_inputs] (and the covariates of
    `serving_input_shapes`) through the same `build_features` as training."""

    def serving_input_receiver_fn() -> tf.estimator.export.ServingInputReceiver:
        inputs = {name: tf.compat.v1.placeholder(dtype, shape, name=name) for name, (dtype, shape)
                  in serving_input_shapes(n_inputs=n_inputs, n_outputs=n_outputs,
                                          covariates=covariates).items()}
        covariate_inputs = {key: value for key, value in inputs.items() if key != FEATURE_KEY}
        return tf.estimator.export.ServingInputReceiver(
            build_features(inputs[FEATURE_KEY], **covariate_inputs), inputs)

    return serving_input_receiver_fn


@dataclasses.dataclass
class ExportedModel:
    """An exported model loaded for prediction: `predict([windows, n_inputs]) -> [windows, n_outputs]`."""

    path: str
    n_inputs: int
    n_outputs: int
    serve: Any
    inputs: Dict[str, Tuple[tf.DType, List[Optional[int]]]] = dataclasses.field(default_factory=dict)
    covariates: Tuple[Covariate, ...] = ()
    levels: Tuple[float, ...] = ()  # quantile levels of a quantile head's `quantiles`
    head: Dict[str, Any] = dataclasses.field(default_factory=dict)  # head.json
    outputs: Tuple[str, ...] = ()  # the signature's output names, sorted
    data: Dict[str, Any] = dataclasses.field(default_factory=dict)  # data.json ({} when older)
    # The loaded SavedModel, which owns the variables `serve` reads: whatever saves `serve` inside
    # another SavedModel (`trainer.model.ensemble`) must keep it.
    root: Any = None

    @property
    def data_reading(self) -> Dict[str, Any]:
        """How trainer.prepare read the raw CSV of the model's training data (data.json's
        "reading"; {} for an older export)."""
        return self.data.get("reading", {})

    def require_covariates_asset(self, advice: str) -> None:
        """A ConfigError when the signature takes covariates that the export does not name (it
        has no covariates.json to read their columns by); `advice` ends its message."""
        if set(self.inputs) - {FEATURE_KEY} and not self.covariates:
            raise ConfigError(f"the model at {self.path} takes covariates but its export has no "
                              f"assets.extra/{COVARIATES_ASSET} naming them{advice}")

    def predict(self, inputs: np.ndarray, covariates: Optional[Dict[str, np.ndarray]] = None
                ) -> np.ndarray:
        """The point forecast [windows, n_outputs] of every window (`forecast`'s `predicted`)."""
        return self.forecast(inputs, covariates)[PREDICTIONS_KEY]

    def checked_inputs(self, inputs: np.ndarray, covariates: Optional[Dict[str, np.ndarray]] = None
                       ) -> Dict[str, np.ndarray]:
        """Every input of the signature by name, `rawdata` [windows, n_inputs] and the covariates,
        checked against its shapes: a DataError names the input missing, extra or misshapen."""
        features = {FEATURE_KEY: inputs, **(covariates or {})}
        expected = self.inputs or {FEATURE_KEY: (tf.float32, [None, self.n_inputs])}
        if FEATURE_KEY in features and (inputs.ndim != 2 or inputs.shape[1] != self.n_inputs):
            raise DataError(f"the model at {self.path} reads {self.n_inputs} inputs per window, got "
                            f"windows of shape {inputs.shape}")
        for name, (_, shape) in expected.items():
            if name not in features:
                raise DataError(f"the model at {self.path} takes the input {name!r} of shape "
                                f"{shape} (it was trained with covariates); give it")
            got = features[name].shape
            if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)) \
                    or got[0] != len(inputs):
                raise DataError(f"the model at {self.path} takes {name!r} of shape [windows, "
                                f"{', '.join(str(s) for s in shape[1:])}], got {list(got)} for "
                                f"{len(inputs)} windows")
        extra = sorted(set(features) - set(expected))
        if extra:
            raise DataError(f"the model at {self.path} takes no input {extra[0]!r} (its inputs: "
                            f"{', '.join(expected)}): it was trained without that covariate")
        return {name: features[name] for name in expected}

    def forecast(self, inputs: np.ndarray, covariates: Optional[Dict[str, np.ndarray]] = None
                 ) -> Dict[str, np.ndarray]:
        """`predicted` [windows, n_outputs] for every window, and with a quantile head
        `quantiles` [windows, n_outputs, Q] at `levels`, in batches of `PREDICT_BATCH_SIZE`;
        `covariates` by their input names, for a model trained with them."""
        features = self.checked_inputs(inputs, covariates)
        expected = self.inputs or {FEATURE_KEY: (tf.float32, [None, self.n_inputs])}
        keys = [PREDICTIONS_KEY] + ([QUANTILES_KEY] if self.levels else [])
        parts: Dict[str, List[np.ndarray]] = {key: [] for key in keys}
        for start in range(0, len(inputs), PREDICT_BATCH_SIZE):
            batch = {name: tf.constant(features[name][start:start + PREDICT_BATCH_SIZE],
                                       dtype=dtype) for name, (dtype, _) in expected.items()}
            outputs = self.serve(**batch)
            for key in keys:
                parts[key].append(outputs[key].numpy())
        empty = {PREDICTIONS_KEY: (0, self.n_outputs),
                 QUANTILES_KEY: (0, self.n_outputs, len(self.levels))}
        return {key: np.concatenate(parts[key]).astype(np.float64) if parts[key]
                else np.zeros(empty[key]) for key in keys}


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory itself, or a run directory's answer: the newest export/best/<t>
    (the best evaluation so far), else the newest export/latest/<t>."""
    path = path.rstrip("/")
    if not path:
        raise ConfigError("give --model_dir: a SavedModel or a training output directory")
    if tf.io.gfile.exists(f"{path}/{SAVED_MODEL_FILE}"):
        return path
    for exporter in (BEST_EXPORTER, LATEST_EXPORTER):
        exports = [p.rstrip("/") for p in tf.io.gfile.glob(f"{path}/{EXPORT_DIR}/{exporter}/*")
                   if tf.io.gfile.exists(f"{p.rstrip('/')}/saved_model.pb")]
        if exports:
            return max(exports, key=lambda p: int(p.rsplit("/", 1)[1])
                       if p.rsplit("/", 1)[1].isdigit() else -1)
    raise ConfigError(f"--model_dir {path} holds no saved_model.pb and no export/best or "
                      "export/latest/<timestamp>; give a SavedModel directory or the --output_dir "
                      "of a finished training run")


def _copy_tree(source: str, destination: str) -> None:
    """Copy the file or directory `source` to `destination` (local or gs://)."""
    if not tf.io.gfile.isdir(source):
        tf.io.gfile.copy(source, destination, overwrite=True)
        return
    for directory, _, files in tf.io.gfile.walk(source):
        directory = directory.rstrip("/")  # Cloud Storage names a folder with a slash at its end
        target = destination + directory[len(source):]
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(f"{directory}/{name}", f"{target}/{name}", overwrite=True)


def _same_file(first: str, second: str) -> bool:
    if not (tf.io.gfile.exists(first) and tf.io.gfile.exists(second)):
        return False
    with tf.io.gfile.GFile(first, "rb") as a, tf.io.gfile.GFile(second, "rb") as b:
        return a.read() == b.read()


def holds_saved_model(directory: str, export: str) -> bool:
    """Whether `directory` holds a complete copy of the SavedModel `export` (its graph and the
    index of its variables, which names every variable file's checksum)."""
    return all(_same_file(f"{export}/{name}", f"{directory}/{name}")
               for name in (SAVED_MODEL_FILE, "variables/variables.index"))


def copy_saved_model(export: str, destination: str) -> None:
    """Write the SavedModel `export` at `destination` itself (saved_model.pb, variables/, ...
    directly in it), replacing the one there; other files in `destination` stay.

    saved_model.pb goes first and comes back last (through a temporary name and a rename):
    while the copy runs `destination` holds no model, never a mix of two, and a copy cut short
    (a preempted job) leaves none, which the next call replaces.
    """
    export, destination = export.rstrip("/"), destination.rstrip("/")
    graph = f"{destination}/{SAVED_MODEL_FILE}"
    if tf.io.gfile.exists(graph):
        tf.io.gfile.remove(graph)
    tf.io.gfile.makedirs(destination)
    for name in SAVED_MODEL_PARTS:
        target = f"{destination}/{name}"
        if tf.io.gfile.isdir(target):
            tf.io.gfile.rmtree(target)
        elif tf.io.gfile.exists(target):
            tf.io.gfile.remove(target)
        if tf.io.gfile.exists(f"{export}/{name}"):
            _copy_tree(f"{export}/{name}", target)
    temporary = f"{graph}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tf.io.gfile.copy(f"{export}/{SAVED_MODEL_FILE}", temporary, overwrite=True)
        tf.io.gfile.rename(temporary, graph, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):  # the rename did not happen: no stray file left
            tf.io.gfile.remove(temporary)
        raise


def _entries(directory: str) -> Set[str]:
    if not tf.io.gfile.isdir(directory):
        return set()
    return {name.rstrip("/") for name in tf.io.gfile.listdir(directory)}


@contextlib.contextmanager
def half_written_exports_removed(directory: str) -> Iterator[None]:
    """Within it, an export into `directory` (written to `temp-*` and then renamed, as every
    exporter here writes) that an exception cuts short leaves no `temp-*` folder behind: those
    that appeared meanwhile are removed, with a warning, and the exception goes on. "An
    exception" includes `Stopped`, which a SIGTERM raises in an evaluator mid-export."""
    before = _entries(directory)
    try:
        yield
    except BaseException as error:
        for name in sorted(_entries(directory) - before):
            if name.startswith("temp-"):
                path = f"{directory.rstrip('/')}/{name}"
                tf.io.gfile.rmtree(path)
                logger.warning("removed the half-written export %s (the export was cut short: "
                               "%s)", path, str(error).splitlines()[0] if str(error)
                               else type(error).__name__)
        raise


def copy_export(export: str, directory: str) -> str:
    """Copy the export `export` (a timestamped folder) into `directory` under the same name, as
    an exporter would have written it there (through temp-NAME and a rename, so that the folder
    holds a whole SavedModel or nothing); returns the copy's path."""
    export = export.rstrip("/")
    name = export.rsplit("/", 1)[-1]
    temporary, copy = f"{directory}/temp-{name}", f"{directory}/{name}"
    if tf.io.gfile.exists(temporary):  # a copy cut short before
        tf.io.gfile.rmtree(temporary)
    with half_written_exports_removed(directory):
        _copy_tree(export, temporary)
        tf.io.gfile.rename(temporary, copy, overwrite=True)
    return copy


def load_exported_model(model_dir: str) -> ExportedModel:
    """Load the SavedModel's serving signature and read its n_inputs and n_outputs."""
    path = resolve_saved_model(model_dir)
    root = tf.saved_model.load(path)
    serve = root.signatures["serving_default"]
    signature = serve.structured_input_signature[1]
    n_inputs = signature[FEATURE_KEY].shape[1]
    n_outputs = serve.structured_outputs[PREDICTIONS_KEY].shape[1]
    inputs = {name: (spec.dtype, spec.shape.as_list()) for name, spec in signature.items()}
    assets = read_export_assets(path)
    head = assets.head
    levels = tuple(float(level) for level in head.get("quantiles", []))
    if bool(levels) != (QUANTILES_KEY in serve.structured_outputs):
        raise ConfigError(f"the export at {path} has {'no ' if not levels else ''}quantile levels "
                          f"in assets.extra/{HEAD_ASSET} but its signature has "
                          f"{'no ' if levels else ''}{QUANTILES_KEY!r} output; export it again")
    logger.info("model %s: %d inputs -> %d outputs%s%s", path, n_inputs, n_outputs,
                "; covariates: " + ", ".join(sorted(set(inputs) - {FEATURE_KEY}))
                if len(inputs) > 1 else "",
                "; quantiles " + ",".join(f"{level:g}" for level in levels) if levels else "")
    return ExportedModel(path=path, n_inputs=int(n_inputs), n_outputs=int(n_outputs), serve=serve,
                         inputs=inputs, covariates=assets.covariates, levels=levels,
                         head=head, outputs=tuple(sorted(serve.structured_outputs)),
                         data=assets.data, root=root)


def add_forecasts(results: List[Dict[str, Any]], outputs: Dict[str, np.ndarray]) -> None:
    """Put each window's forecast (and quantiles, for a quantile model) into its result
    (`trainer.data.forecast_files` writes them)."""
    for index, result in enumerate(results):
        result["forecast"] = outputs[PREDICTIONS_KEY][index]
        if QUANTILES_KEY in outputs:
            result["quantiles"] = outputs[QUANTILES_KEY][index]
