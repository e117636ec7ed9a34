"""`python -m trainer.instances`, as a user runs it: a raw series or prepared rows become the
request of a deployed model, the served answer (tests/exported_models.py) becomes a forecast CSV,
and that CSV is the one `trainer.predict` writes for the same file with the model itself."""

import datetime
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_tool
from tests.exported_models import COVARIATES, LEVELS, export_model, serve_request

N_INPUTS, N_OUTPUTS = 7, 3
START = datetime.date(2024, 3, 1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return {"plain": export_model(tmp_path_factory.mktemp("plain"), n_inputs=N_INPUTS,
                                  n_outputs=N_OUTPUTS),
            "covariates": export_model(tmp_path_factory.mktemp("covariates"), n_inputs=N_INPUTS,
                                       n_outputs=N_OUTPUTS, covariates=COVARIATES),
            "quantiles": export_model(tmp_path_factory.mktemp("quantiles"), n_inputs=N_INPUTS,
                                      n_outputs=N_OUTPUTS, head="quantile", quantiles=LEVELS)}


def write_sales(path: Path, *, covariates: bool, days: int = 20) -> Path:
    """Two daily series of different lengths; with covariates, their columns and N_OUTPUTS rows
    after the last value (an empty value, the horizon's promotions)."""
    header = "series_id,timestamp,value" + (",temp,promo,store" if covariates else "")
    lines = [header]
    for name, level, length in (("north", 120.0, days), ("south", 40.0, days - 4)):
        for day in range(length + (N_OUTPUTS if covariates else 0)):
            date = START + datetime.timedelta(days=day)
            value = "" if day >= length else f"{level + 3 * np.sin(day) + day * 0.5:.2f}"
            extra = f",{15 + day % 5}.5,{'yes' if day % 4 == 0 else 'no'},{name}" if covariates else ""
            lines.append(f"{name},{date},{value}{extra}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ok(*args: str) -> str:
    result = run_tool(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def request_and_forecast(tmp_path: Path, model: str, *source_flags: str, expect_lines: int):
    """Make the request, serve it, read the answer back; also forecast with trainer.predict.
    Returns (request body, instances CSV text, predict CSV text)."""
    request = tmp_path / "request.json"
    summary = run_ok("trainer.instances", "--model_dir", model, *source_flags, "--output", str(request))
    assert f"-> {request}" in summary
    response = tmp_path / "response.json"
    response.write_text(serve_request(model, request.read_text()))
    served, predicted = tmp_path / "served.csv", tmp_path / "predicted.csv"
    run_ok("trainer.instances", "--model_dir", model, *source_flags, "--response", str(response),
           "--output", str(served))
    run_ok("trainer.predict", "--model_dir", model, *source_flags, "--output", str(predicted))
    assert len(served.read_text().splitlines()) == expect_lines
    return json.loads(request.read_text()), served.read_text(), predicted.read_text()


def test_a_series_request_answers_the_forecast_of_trainer_predict(tmp_path, exports):
    raw = write_sales(tmp_path / "sales.csv", covariates=False)
    body, served, predicted = request_and_forecast(tmp_path, exports["plain"], "--series", str(raw),
                                                   expect_lines=1 + 2 * N_OUTPUTS)
    # One instance per series, the bare window: its last N_INPUTS values as written.
    values = {name: [float(line.split(",")[2]) for line in raw.read_text().splitlines()[1:]
                     if line.startswith(name)] for name in ("north", "south")}
    assert body["instances"] == [values["north"][-N_INPUTS:], values["south"][-N_INPUTS:]]
    assert served == predicted
    assert served.splitlines()[1].startswith("north,2024-03-21,1,")


def test_a_request_with_covariates_carries_them_by_name(tmp_path, exports):
    raw = write_sales(tmp_path / "sales.csv", covariates=True)
    body, served, predicted = request_and_forecast(tmp_path, exports["covariates"], "--series",
                                                   str(raw), expect_lines=1 + 2 * N_OUTPUTS)
    first = body["instances"][0]
    assert set(first) == {"rawdata", "past_covariates", "future_categories", "static_categories"}
    assert np.array(first["past_covariates"]).shape == (N_INPUTS, 1)
    # The promotions of the input days and of the three rows after the last value, as ids of no/yes.
    promos = [1 if day % 4 == 0 else 0 for day in range(20 - N_INPUTS, 20 + N_OUTPUTS)]
    assert first["future_categories"] == [[promo] for promo in promos]
    assert first["static_categories"] == [0] and body["instances"][1]["static_categories"] == [1]
    assert served == predicted


def test_a_batch_instances_file_of_rows_and_a_quantile_answer(tmp_path, exports):
    rng = np.random.default_rng(5)
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(",".join(f"{v:.3f}" for v in row) + "\n"
                            for row in rng.normal(10, 2, size=(4, N_INPUTS + N_OUTPUTS))))
    model = exports["quantiles"]
    jsonl = tmp_path / "instances.jsonl"
    run_ok("trainer.instances", "--model_dir", model, "--rows", str(rows), "--format", "jsonl",
           "--output", str(jsonl))
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 4 and all(len(line) == N_INPUTS for line in lines)
    body, served, predicted = request_and_forecast(tmp_path, model, "--rows", str(rows),
                                                   expect_lines=1 + 4 * N_OUTPUTS)
    assert body["instances"] == lines
    assert served.splitlines()[0] == "row,step,forecast,q0.1,q0.5,q0.9,actual"
    assert served == predicted


def test_what_cannot_make_a_request_says_why(tmp_path, exports):
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(["1.0"] * N_INPUTS) + "\n")
    result = run_tool("trainer.instances", "--model_dir", exports["covariates"], "--rows", str(rows),
                      "--output", str(tmp_path / "r.json"))
    assert result.returncode == 1
    assert "takes covariates (temp, promo, store), which prepared rows do not hold" in result.stderr
    result = run_tool("trainer.instances", "--rows", str(rows), "--output", str(tmp_path / "r.json"))
    assert result.returncode == 2 and "give --model_dir" in result.stderr
    response = tmp_path / "response.json"
    response.write_text('{"error": "Prediction failed: Model server is unavailable"}')
    result = run_tool("trainer.instances", "--model_dir", exports["plain"], "--rows", str(rows),
                      "--response", str(response), "--output", str(tmp_path / "f.csv"))
    assert result.returncode == 1
    assert "holds no 'predictions' list" in result.stderr and "Model server is unavailable" in result.stderr
