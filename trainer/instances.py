"""The JSON a deployed model takes, from a raw series or prepared rows; its answer as a forecast CSV.

    python -m trainer.instances --model_dir runs/store_a --series daily_sales.csv \\
        --timestamp_column date --target store_a --output request.json
    gcloud ai endpoints predict ENDPOINT --region us-central1 --json-request request.json \\
        --format json > response.json
    python -m trainer.instances --model_dir runs/store_a --series daily_sales.csv \\
        --timestamp_column date --target store_a --response response.json --output forecast.csv

`--model_dir` is the exported model (or its training output directory), read only to size the
request: the windows are cut to its serving signature's `n_inputs`, with the covariates it
was trained with, exactly as `trainer.predict` cuts them (`trainer.data.forecast_inputs`).
`--format json` writes an online prediction request, `{"instances": [...]}`; `--format jsonl`
the instances file of a batch prediction job, one instance per line (the format:
`trainer.model.prediction_json`). With `--response`, the `{"predictions": [...]}` that the
endpoint answered to that request becomes the forecast CSV of `trainer.predict`, for the same
`--series` or `--rows` and flags. `./scripts/deploy_vertex.sh predict` runs the three steps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.forecast_files import write_forecast_csv
from trainer.data.forecast_inputs import (
    ForecastReading,
    read_forecast_series,
    row_windows,
    series_windows,
    window_inputs,
)
from trainer.data.schema import FEATURE_KEY
from trainer.model.prediction_json import (
    ONLINE_REQUEST_LIMIT_BYTES,
    instances_jsonl,
    request_instances,
    request_json,
    response_outputs,
)
from trainer.model.serving import ExportedModel, add_forecasts, load_exported_model
from trainer.util.cli import VERBOSITIES, build_flag_parser, flag, model_dir_flag, run_command
from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

FORMATS = ("json", "jsonl")


@dataclasses.dataclass(frozen=True)
class InstancesConfig(ForecastReading):
    """Flags of `python -m trainer.instances`: what it reads (`ForecastReading`, its first four
    in words for a request), then these."""

    model_dir: str = model_dir_flag("SavedModel directory (local or gs://), or a training output "
                                    "directory (its best export): the request is sized to its "
                                    "signature.")
    series: str = flag("", "Raw series CSV (wide or long, as trainer.prepare reads): one instance "
                        "per series, from its last n_inputs values.")
    rows: str = flag("", "Comma-separated file patterns of prepared rows (n_inputs + n_outputs "
                      "values, or n_inputs values only): one instance per row.")
    backtest: bool = flag(False, "With --series: leave out the last n_outputs points of each "
                           "series (the actual values of the forecast CSV).")
    format: str = flag("json", "json: an online prediction request, {\"instances\": [...]}; jsonl: "
                       "a batch prediction job's instances file, one instance per line.",
                       choices=FORMATS)
    output: str = flag("", "File to write (local or gs://): the request, or with --response the "
                        "forecast CSV.")
    response: str = flag("", "A prediction response, {\"predictions\": [...]} (gcloud ai endpoints "
                          "predict --format json, or the REST API's answer), to the request made "
                          "from the same --series or --rows: write it as the forecast CSV of "
                          "trainer.predict.")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        """The rules between flags (a ConfigError here exits 2, like a bad flag)."""
        if not self.model_dir:
            raise ConfigError("give --model_dir, the exported model the request is for")
        self.check_one_source()
        if not self.output:
            raise ConfigError("give --output, the request file to write (or with --response, the "
                              "forecast CSV)")
        self.check_backtest()
        if self.response and self.format != "json":
            raise ConfigError("--response reads an online prediction's answer; leave out "
                              "--format jsonl (a batch job writes its predictions beside each "
                              "instance instead)")


def windows_and_inputs(config: InstancesConfig, model: ExportedModel
                       ) -> Tuple[List[Dict[str, Any]], Dict[str, np.ndarray]]:
    """The windows of --series or --rows and the signature's inputs for them, by name."""
    if config.series:
        series_list = read_forecast_series(config.series, covariates=model.covariates,
                                           **config.reading(model.data_reading))
        results, covariate_inputs = series_windows(
            series_list, n_inputs=model.n_inputs, n_outputs=model.n_outputs,
            covariates=model.covariates, backtest=config.backtest, source=config.series)
    else:
        if model.covariates:
            raise ConfigError(f"the model at {model.path} takes covariates ("
                              f"{', '.join(c.name for c in model.covariates)}), which prepared "
                              "rows do not hold; give --series, a raw CSV with those columns")
        results = row_windows(config.rows, n_inputs=model.n_inputs, n_outputs=model.n_outputs,
                              model_path=model.path)
        covariate_inputs = None
    inputs = model.checked_inputs(window_inputs(results, n_inputs=model.n_inputs), covariate_inputs)
    return results, inputs


def make_request(config: InstancesConfig, model: ExportedModel) -> str:
    """Write the request (or instances file); returns the closing summary."""
    results, inputs = windows_and_inputs(config, model)
    instances = request_instances(inputs)
    text = request_json(instances) if config.format == "json" else instances_jsonl(instances)
    with tf.io.gfile.GFile(config.output, "w") as handle:
        handle.write(text)
    size = len(text.encode("utf-8"))
    if config.format == "json" and size > ONLINE_REQUEST_LIMIT_BYTES:
        logger.warning("the request is %d bytes; Vertex AI takes at most %d per online prediction: "
                       "split the series over several requests, or make a batch prediction "
                       "(--format jsonl)", size, ONLINE_REQUEST_LIMIT_BYTES)
    shape = "bare windows" if set(inputs) == {FEATURE_KEY} else "objects of " + ", ".join(inputs)
    return (f"{len(instances)} instances ({shape}; {model.n_inputs} inputs -> {model.n_outputs} "
            f"steps) for {model.path} -> {config.output} ({size} bytes)")


def read_response(config: InstancesConfig, model: ExportedModel) -> str:
    """Write the forecast CSV of a response; returns the closing summary."""
    results, _ = windows_and_inputs(config, model)
    with tf.io.gfile.GFile(config.response, "r") as handle:
        text = handle.read()
    try:
        response = json.loads(text)
    except ValueError as error:
        raise DataError(f"--response {config.response} is not JSON ({error}); give the answer "
                        "of the prediction request, e.g. gcloud ai endpoints predict ... --format "
                        "json > response.json") from None
    outputs = response_outputs(response, output_names=model.outputs, windows=len(results),
                               n_outputs=model.n_outputs, source=config.response,
                               levels=model.levels)
    add_forecasts(results, outputs)
    write_forecast_csv(config.output, results, by_series=bool(config.series), levels=model.levels)
    return (f"forecast of {len(results)} {'series' if config.series else 'rows'} x "
            f"{model.n_outputs} steps from {config.response} -> {config.output}")


def instances(config: InstancesConfig) -> str:
    """Write the request, or the forecast CSV of its response."""
    model = load_exported_model(config.model_dir)
    model.require_covariates_asset("; train it again")
    return read_response(config, model) if config.response else make_request(config, model)


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.instances") -> int:
    parser = build_flag_parser(InstancesConfig, prog=prog,
                               description="Write the prediction request (JSON) or batch "
                               "instances (JSONL) of a raw series or prepared rows for an "
                               "exported model, or turn its response into a forecast CSV.")
    return run_command(instances, argv, parser=parser, make_config=InstancesConfig, quiet_absl=True)


if __name__ == "__main__":
    sys.exit(main())
