"""The serving signature, from both sides: the receiver that exports it, the client that calls it.

The SavedModel's `serving_default` signature takes float32 `rawdata` [batch, n_inputs] (raw
values, in the series' units) and returns the head's predictions, `predicted`
[batch, n_outputs] for the point head. `make_serving_input_receiver_fn` builds that input
through `trainer.data.schema.build_features`, the transform training uses too;
`load_exported_model` loads any export, reads n_inputs and n_outputs from its signature and
forecasts in batches (`trainer.evaluate` and `trainer.predict` both use it).

A training run exports to `OUTPUT_DIR/export/<exporter>/<timestamp>/` (`EXPORT_DIR`), which
`resolve_saved_model` searches when given a run directory.
"""

import dataclasses
import logging
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from trainer.data.schema import FEATURE_KEY, build_features
from trainer.model.heads import PREDICTIONS_KEY
from trainer.util.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

EXPORT_DIR = "export"  # under the run directory: export/latest/<timestamp>, export/best/<timestamp>
LATEST_EXPORTER = "latest"
BEST_EXPORTER = "best"
PREDICT_BATCH_SIZE = 4096


def make_serving_input_receiver_fn(
        *, n_inputs: int) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Serving receiver: float32 `rawdata` [batch, n_inputs] through the same `build_features`."""

    def serving_input_receiver_fn() -> tf.estimator.export.ServingInputReceiver:
        rawdata = tf.compat.v1.placeholder(tf.float32, [None, n_inputs], name=FEATURE_KEY)
        return tf.estimator.export.ServingInputReceiver(build_features(rawdata),
                                                        {FEATURE_KEY: rawdata})

    return serving_input_receiver_fn


@dataclasses.dataclass
class ExportedModel:
    """An exported model loaded for prediction: `predict([windows, n_inputs]) -> [windows, n_outputs]`."""

    path: str
    n_inputs: int
    n_outputs: int
    serve: Any

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The point forecast of every window, in batches of `PREDICT_BATCH_SIZE`."""
        if inputs.ndim != 2 or inputs.shape[1] != self.n_inputs:
            raise DataError(f"the model at {self.path} reads {self.n_inputs} inputs per window, got "
                            f"windows of shape {inputs.shape}")
        parts = [self.serve(**{FEATURE_KEY: tf.constant(inputs[i:i + PREDICT_BATCH_SIZE],
                                                        dtype=tf.float32)})[PREDICTIONS_KEY].numpy()
                 for i in range(0, len(inputs), PREDICT_BATCH_SIZE)]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, self.n_outputs))


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory itself, or the newest export/latest/<timestamp> of a run directory."""
    path = path.rstrip("/")
    if not path:
        raise ConfigError("give --model_dir: a SavedModel or a training output directory")
    if tf.io.gfile.exists(f"{path}/saved_model.pb"):
        return path
    exports = [p.rstrip("/") for p in tf.io.gfile.glob(f"{path}/{EXPORT_DIR}/{LATEST_EXPORTER}/*")
               if tf.io.gfile.exists(f"{p.rstrip('/')}/saved_model.pb")]
    if not exports:
        raise ConfigError(f"--model_dir {path} holds no saved_model.pb and no export/latest/<timestamp>"
                          "; give a SavedModel directory or the --output_dir of a finished training run")
    return max(exports, key=lambda p: int(p.rsplit("/", 1)[1]) if p.rsplit("/", 1)[1].isdigit() else -1)


def load_exported_model(model_dir: str) -> ExportedModel:
    """Load the SavedModel's serving signature and read its n_inputs and n_outputs."""
    path = resolve_saved_model(model_dir)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    n_inputs = serve.structured_input_signature[1][FEATURE_KEY].shape[1]
    n_outputs = serve.structured_outputs[PREDICTIONS_KEY].shape[1]
    logger.info("model %s: %d inputs -> %d outputs", path, n_inputs, n_outputs)
    return ExportedModel(path=path, n_inputs=int(n_inputs), n_outputs=int(n_outputs), serve=serve)
