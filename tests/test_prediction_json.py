"""The JSON of a prediction, against real exports: a request made by the package, served as
TensorFlow Serving serves it (tests/exported_models.py), answers what `ExportedModel.forecast`
answers, for a model without covariates, one with covariates and one with quantiles; the
request and the response parse as Vertex AI's own PredictRequest and PredictResponse."""

import json
import re

import numpy as np
import pytest
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from tests.docs_pages import section
from tests.exported_models import COVARIATES, LEVELS, export_model, serve_request
from trainer.data.schema import CATEGORIES_KEY, FEATURE_KEY, FUTURE_CATEGORIES_KEY, PAST_KEY
from trainer.model.prediction_json import (
    instances_jsonl,
    request_instances,
    request_json,
    response_outputs,
)
from trainer.model.serving import load_exported_model, serving_input_shapes
from trainer.util.errors import DataError

# Distinct sizes, so that a swapped dimension cannot pass by coincidence.
N_INPUTS, N_OUTPUTS, WINDOWS = 6, 4, 5
CASES = {"plain": {}, "covariates": {"covariates": COVARIATES},
         "quantiles": {"head": "quantile", "quantiles": LEVELS}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return {name: load_exported_model(export_model(tmp_path_factory.mktemp(name), n_inputs=N_INPUTS,
                                                   n_outputs=N_OUTPUTS, **kwargs))
            for name, kwargs in CASES.items()}


def windows_of(model, seed: int = 3):
    """Random windows and covariates of the model's shapes: (rawdata, covariates by name)."""
    rng = np.random.default_rng(seed)
    covariates = {}
    for name, (dtype, shape) in model.inputs.items():
        if name != FEATURE_KEY:
            size = (WINDOWS, *shape[1:])
            covariates[name] = (rng.integers(0, 2, size=size) if dtype.is_integer
                                else np.round(rng.normal(20.0, 5.0, size=size), 1))
    return np.round(rng.normal(50.0, 10.0, size=(WINDOWS, N_INPUTS)), 2), covariates


def parse_as(message_class, text: str):
    """Parse JSON into a Vertex AI API message, refusing any field the API does not have."""
    return json_format.Parse(text, message_class.pb()(), ignore_unknown_fields=False)


@pytest.mark.parametrize("case", CASES)
def test_a_served_request_answers_what_the_model_forecasts(models, case):
    model = models[case]
    rawdata, covariates = windows_of(model)
    body = request_json(request_instances(model.checked_inputs(rawdata, covariates)))
    request = parse_as(aiplatform_v1.PredictRequest, body)
    assert len(request.instances) == WINDOWS
    answer = serve_request(model.path, body)
    response = parse_as(aiplatform_v1.PredictResponse, answer)
    assert len(response.predictions) == WINDOWS
    outputs = response_outputs(json.loads(answer), output_names=model.outputs, windows=WINDOWS,
                               n_outputs=N_OUTPUTS, source="response.json", levels=model.levels)
    expected = model.forecast(rawdata, covariates)
    assert set(outputs) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(outputs[name], values, rtol=1e-6, err_msg=name)
    # Covariates change the forecast: the request carried them.
    if covariates:
        changed = dict(covariates, **{PAST_KEY: covariates[PAST_KEY] + 10.0})
        assert not np.allclose(model.forecast(rawdata, changed)["predicted"], expected["predicted"])


def test_the_instances_of_each_case_have_the_documented_shape(models):
    # No covariates: one input, so each instance is the window itself.
    rawdata, _ = windows_of(models["plain"])
    instances = request_instances(models["plain"].checked_inputs(rawdata))
    assert instances == rawdata.tolist()
    # Covariates: an object of every input by name, without the batch dimension; categories as ints.
    model = models["covariates"]
    rawdata, covariates = windows_of(model)
    first = request_instances(model.checked_inputs(rawdata, covariates))[0]
    assert set(first) == {FEATURE_KEY, PAST_KEY, FUTURE_CATEGORIES_KEY, CATEGORIES_KEY}
    assert first[FEATURE_KEY] == rawdata[0].tolist()
    assert np.array(first[PAST_KEY]).shape == (N_INPUTS, 1)
    assert np.array(first[FUTURE_CATEGORIES_KEY]).shape == (N_INPUTS + N_OUTPUTS, 1)
    assert first[CATEGORIES_KEY] in ([0], [1]) and all(isinstance(v, int) for v in first[CATEGORIES_KEY])
    # Batch: the same instances, one JSON value per line.
    lines = instances_jsonl(request_instances(model.checked_inputs(rawdata, covariates))).splitlines()
    assert [json.loads(line) for line in lines][0] == first and len(lines) == WINDOWS


def test_the_quantile_response_holds_every_output_by_name(models):
    model = models["quantiles"]
    rawdata, _ = windows_of(model)
    answer = json.loads(serve_request(model.path, request_json(request_instances(
        model.checked_inputs(rawdata)))))
    first = answer["predictions"][0]
    assert set(first) == {"predicted", "quantiles", "quantile_levels"}
    assert np.array(first["quantiles"]).shape == (N_OUTPUTS, len(LEVELS))
    np.testing.assert_allclose(first["quantile_levels"], LEVELS, rtol=1e-6)
    # A plain model's answer is one list per instance.
    plain = json.loads(serve_request(models["plain"].path,
                                     request_json(request_instances(models["plain"].checked_inputs(rawdata)))))
    assert np.array(plain["predictions"]).shape == (WINDOWS, N_OUTPUTS)


def test_a_request_the_model_cannot_take_names_the_input(models):
    model = models["covariates"]
    rawdata, covariates = windows_of(model)
    with pytest.raises(DataError, match=r"takes the input 'past_covariates' of shape \[None, 6, 1\]"):
        model.checked_inputs(rawdata, {k: v for k, v in covariates.items() if k != PAST_KEY})
    with pytest.raises(DataError, match=r"reads 6 inputs per window, got windows of shape \(5, 5\)"):
        model.checked_inputs(rawdata[:, 1:], covariates)
    with pytest.raises(DataError, match=r"'rawdata' holds NaN or infinity"):
        bad = rawdata.copy()
        bad[2, 3] = np.nan
        request_instances(models["plain"].checked_inputs(bad))


@pytest.mark.parametrize(("response", "message"), [
    ({"error": "Model server unavailable"}, r"holds no 'predictions' list: .*Model server unavailable"),
    ({"predictions": [[1.0] * N_OUTPUTS] * 2}, r"holds 2 predictions for 5 windows"),
    ({"predictions": [[1.0] * 3] * WINDOWS}, r"'predicted' has shape \[3\], expected \[4\]"),
    ({"predictions": [{"predicted": [1.0] * N_OUTPUTS}] * WINDOWS}, r"prediction 1 of r.json has no "
                                                                    r"'quantiles'"),
    ({"predictions": [{"predicted": [1.0] * N_OUTPUTS, "quantiles": [[1.0] * 3] * N_OUTPUTS,
                       "quantile_levels": [0.2, 0.5, 0.8]}] * WINDOWS},
     r"quantile levels \[0.2, 0.5, 0.8\] are not the model's \[0.1, 0.5, 0.9\]"),
])
def test_a_response_that_does_not_fit_is_an_error_saying_why(response, message):
    quantile = "quantiles" in message or "levels" in message
    with pytest.raises(DataError, match=message):
        response_outputs(response, output_names=["predicted", "quantile_levels", "quantiles"]
                         if quantile else ["predicted"], windows=WINDOWS, n_outputs=N_OUTPUTS,
                         source="r.json", levels=LEVELS if quantile else ())


def test_the_readme_examples_have_the_shapes_of_a_real_signature():
    """docs/serving.md, "Serving and deployment": n_inputs 4, n_outputs 2, the covariates of
    COVARIATES."""
    serving = section("docs/serving.md", "## Serving and deployment")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", serving, re.DOTALL)]
    plain, covariates = [block for block in blocks if "instances" in block]
    point, quantile = [block for block in blocks if "predictions" in block]
    (job,) = [block for block in blocks if "inputConfig" in block]
    for message, block in ((aiplatform_v1.PredictRequest, plain), (aiplatform_v1.PredictRequest, covariates),
                           (aiplatform_v1.PredictResponse, point), (aiplatform_v1.PredictResponse, quantile),
                           (aiplatform_v1.BatchPredictionJob, job)):
        parse_as(message, json.dumps(block))
    assert all(np.array(instance).shape == (4,) for instance in plain["instances"])
    shapes = serving_input_shapes(n_inputs=4, n_outputs=2, covariates=COVARIATES)
    for instance in covariates["instances"]:
        assert set(instance) == set(shapes)
        for name, (_, shape) in shapes.items():
            assert list(np.array(instance[name]).shape) == shape[1:], name
    assert all(np.array(prediction).shape == (2,) for prediction in point["predictions"])
    for prediction in quantile["predictions"]:
        assert set(prediction) == {"predicted", "quantiles", "quantile_levels"}
        assert np.array(prediction["quantiles"]).shape == (2, len(LEVELS))
        assert prediction["quantile_levels"] == list(LEVELS)
        assert [row[1] for row in prediction["quantiles"]] == prediction["predicted"]
