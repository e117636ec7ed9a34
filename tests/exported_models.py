"""Tiny real SavedModels for the serving tests, and TensorFlow Serving's side of a request.

`export_model` trains a few steps with the Estimator and exports through the trainer's own
receiver and assets, as a training run does; `serve_request` is what the serving runtime does
with a REST "row" request (tensorflow_serving/util/json_tensor.h): stack each named input
across the instances with the signature's dtype, call the signature, and answer one
prediction per instance, its value when the signature has one output, else an object of every
output by name. It is written from that rule, not from the package's encoder, so that a test
of one against the other can fail.
"""

import json
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from trainer.data.covariates import Covariate
from trainer.model.export_assets import ExportAssets, write_export_assets
from trainer.model.heads import get_head
from trainer.model.model_fn import model_fn
from trainer.model.serving import make_serving_input_receiver_fn, serving_input_shapes
from trainer.model.spec import ModelSpec

# A model of a shop's sales: the temperature so far (past), a promotion known ahead (future,
# categorical), the store (static, categorical). Column names of the raw CSVs of the tests.
COVARIATES = (Covariate("temp", "past", mean=20.0, std=5.0),
              Covariate("promo", "future", vocabulary=("no", "yes")),
              Covariate("store", "static", vocabulary=("north", "south")))
LEVELS = (0.1, 0.5, 0.9)


def export_model(directory: Path, *, n_inputs: int, n_outputs: int, head: str = "mse",
                 quantiles: Sequence[float] = (), covariates: Sequence[Covariate] = (),
                 steps: int = 20) -> str:
    """Train a linear model `steps` steps on random windows and export it; the export's path."""
    spec = ModelSpec(model="linear", hidden_units=8, n_inputs=n_inputs, n_outputs=n_outputs,
                     head=head, quantiles=tuple(quantiles), covariates=tuple(covariates),
                     optimizer="adam", learning_rate=0.01, clip_gradient_norm=5.0,
                     scaling="window_zscore", season=1)
    rng = np.random.default_rng(0)
    rows = 32
    shapes = serving_input_shapes(n_inputs=n_inputs, n_outputs=n_outputs, covariates=covariates)
    features = {}
    for name, (dtype, shape) in shapes.items():
        size = (rows, *shape[1:])
        features[name] = (rng.integers(0, 2, size=size) if dtype == tf.int64
                          else rng.normal(50.0, 10.0, size=size).astype(np.float32))
    labels = rng.normal(50.0, 10.0, size=(rows, n_outputs)).astype(np.float32)

    def input_fn():
        return tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(8)

    estimator = tf.estimator.Estimator(
        model_fn=model_fn, params=spec, model_dir=str(directory / "model"),
        config=tf.estimator.RunConfig(tf_random_seed=1, save_checkpoints_steps=steps,
                                      log_step_count_steps=None))
    estimator.train(input_fn, max_steps=steps)
    assets = write_export_assets(str(directory), ExportAssets(
        head=get_head(spec.head, spec.quantiles).describe(), covariates=spec.covariates))
    receiver = make_serving_input_receiver_fn(n_inputs=n_inputs, n_outputs=n_outputs,
                                              covariates=spec.covariates)
    return estimator.export_saved_model(str(directory / "export"), receiver,
                                        assets_extra=assets).decode()


def serve_request(path: str, body: str) -> str:
    """The REST answer of TensorFlow Serving to `body` for the SavedModel at `path`."""
    serve = tf.saved_model.load(path).signatures["serving_default"]
    signature = serve.structured_input_signature[1]
    instances = json.loads(body)["instances"]
    if len(signature) == 1:
        (name,) = signature
        assert all(isinstance(instance, list) for instance in instances), \
            "one named input: each instance is the input's value"
        columns: Dict[str, list] = {name: instances}
    else:
        assert all(isinstance(instance, dict) and set(instance) == set(signature)
                   for instance in instances), "several named inputs: each instance names them all"
        columns = {name: [instance[name] for instance in instances] for name in signature}
    tensors = {}
    for name, spec in signature.items():
        array = np.array(columns[name], dtype=spec.dtype.as_numpy_dtype)
        assert spec.shape.is_compatible_with(array.shape), (name, spec.shape, array.shape)
        tensors[name] = tf.constant(array)
    outputs = {name: tensor.numpy().tolist() for name, tensor in serve(**tensors).items()}
    if len(outputs) == 1:
        (predictions,) = outputs.values()
    else:
        predictions = [{name: values[index] for name, values in outputs.items()}
                       for index in range(len(instances))]
    # Vertex AI adds the deployed model's id beside the predictions.
    return json.dumps({"predictions": predictions, "deployedModelId": "1234567890"})
