"""The JSON of a prediction by a deployed model: the request's `instances`, the response's
`predictions`.

The format is TensorFlow Serving's REST "row" format (`tensorflow_serving/util/json_tensor.h`),
which Vertex AI's prebuilt TensorFlow prediction containers serve and whose `instances` and
`predictions` lists Vertex AI's `PredictRequest` and `PredictResponse` carry as they are:

- A request is `{"instances": [instance, ...]}`, one instance per window, each input without
  its batch dimension. When the signature has one input (`rawdata`: a model without
  covariates) an instance is the window itself, `[n_inputs numbers]`; with covariates it is an
  object of every input by name, `{"rawdata": [...], "past_covariates": [[P numbers] per input
  step], ...}` (the inputs of `trainer.model.serving.serving_input_shapes`). The runtime stacks
  each input across the instances and casts it to the signature's dtype (float32, or int64 for
  the categories, which are vocabulary positions).
- A batch prediction job reads the same instances from JSONL files, one instance per line.
- A response is `{"predictions": [prediction, ...]}`, one per instance in order. With one
  output (`predicted`: the `mse` and `mae` heads) a prediction is its value, `[n_outputs
  numbers]`; with several (the `quantile` head) an object of every output by name,
  `{"predicted": [...], "quantiles": [[Q numbers] per step], "quantile_levels": [Q numbers]}`.

    >>> request_instances({"rawdata": np.array([[1.5, 2.0, 2.5]])})
    [[1.5, 2.0, 2.5]]
    >>> outputs = response_outputs({"predictions": [[3.0, 3.5]]}, output_names=["predicted"],
    ...                            windows=1, n_outputs=2, source="response.json")
    >>> outputs["predicted"].tolist()
    [[3.0, 3.5]]
"""

import json
import math
from typing import Any, Dict, List, Sequence

import numpy as np

from trainer.data.schema import FEATURE_KEY, ID_KEYS
from trainer.model.heads import PREDICTIONS_KEY, QUANTILE_LEVELS_KEY, QUANTILES_KEY
from trainer.util.errors import DataError

INSTANCES_KEY = "instances"
PREDICTIONS_LIST_KEY = "predictions"
# Vertex AI refuses an online prediction request larger than this; batch prediction has no limit.
ONLINE_REQUEST_LIMIT_BYTES = 1_500_000


def _as_json_values(name: str, values: np.ndarray) -> List[Any]:
    """An input's values as JSON numbers: int for the categories (int64 inputs), float else."""
    if name in ID_KEYS:
        return np.asarray(values).astype(np.int64).tolist()
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise DataError(f"input {name!r} holds NaN or infinity, which JSON cannot carry")
    return values.tolist()


def request_instances(inputs: Dict[str, np.ndarray]) -> List[Any]:
    """One instance per window from the signature's inputs by name, each [windows, ...] (those
    of `ExportedModel.checked_inputs`): the bare window when `rawdata` is the only input, else
    an object of every input."""
    if set(inputs) == {FEATURE_KEY}:
        return _as_json_values(FEATURE_KEY, inputs[FEATURE_KEY])
    columns = {name: _as_json_values(name, values) for name, values in inputs.items()}
    windows = len(inputs[FEATURE_KEY])
    return [{name: column[index] for name, column in columns.items()} for index in range(windows)]


def request_json(instances: Sequence[Any]) -> str:
    """The body of an online prediction request: {"instances": [...]}."""
    return json.dumps({INSTANCES_KEY: list(instances)}, allow_nan=False) + "\n"


def instances_jsonl(instances: Sequence[Any]) -> str:
    """The instances file of a batch prediction job: one instance per line."""
    return "".join(json.dumps(instance, allow_nan=False) + "\n" for instance in instances)


def _stack(values: List[Any], *, name: str, shape: Sequence[int], source: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{source}: the predictions' {name!r} are not lists of numbers of one "
                        f"shape (expected {list(shape)} per prediction)") from None
    if array.shape[1:] != tuple(shape):
        raise DataError(f"{source}: each prediction's {name!r} has shape {list(array.shape[1:])}, "
                        f"expected {list(shape)} (the model forecasts {shape[0]} steps); was the "
                        "response made by another model?")
    return array


def response_outputs(response: Any, *, output_names: Sequence[str], windows: int, n_outputs: int,
                     source: str, levels: Sequence[float] = ()) -> Dict[str, np.ndarray]:
    """The outputs of a prediction response by name: `predicted` [windows, n_outputs] and, with
    `levels` (a quantile head), `quantiles` [windows, n_outputs, Q]; `source` names the response
    in errors, which say what is missing or of the wrong shape."""
    if not isinstance(response, dict) or PREDICTIONS_LIST_KEY not in response:
        detail = f" (it says: {json.dumps(response)[:300]})" if isinstance(response, dict) else ""
        raise DataError(f"{source} holds no {PREDICTIONS_LIST_KEY!r} list: not the response of a "
                        f"prediction request{detail}")
    predictions = response[PREDICTIONS_LIST_KEY]
    if not isinstance(predictions, list) or len(predictions) != windows:
        count = len(predictions) if isinstance(predictions, list) else "no list of"
        raise DataError(f"{source} holds {count} predictions for {windows} windows; give the "
                        "response to the request made from the same file and flags")
    wanted = {PREDICTIONS_KEY: [n_outputs]}
    if levels:
        wanted[QUANTILES_KEY] = [n_outputs, len(levels)]
    if len(output_names) == 1:
        return {PREDICTIONS_KEY: _stack(predictions, name=PREDICTIONS_KEY, shape=[n_outputs],
                                        source=source)}
    for index, prediction in enumerate(predictions, start=1):
        missing = [name for name in wanted if not isinstance(prediction, dict) or name not in prediction]
        if missing:
            raise DataError(f"prediction {index} of {source} has no {missing[0]!r}; the model's "
                            f"outputs are {', '.join(output_names)}")
    outputs = {name: _stack([prediction[name] for prediction in predictions], name=name, shape=shape,
                            source=source) for name, shape in wanted.items()}
    if levels and QUANTILE_LEVELS_KEY in predictions[0]:
        got = [float(level) for level in predictions[0][QUANTILE_LEVELS_KEY]]
        if len(got) != len(levels) or not all(math.isclose(a, b, rel_tol=1e-5)
                                               for a, b in zip(got, levels)):
            raise DataError(f"{source}: the quantile levels {got} are not the model's "
                            f"{list(levels)}; was the response made by another model?")
    return outputs
