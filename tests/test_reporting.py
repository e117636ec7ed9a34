"""Hypertune reports (read back from the metric file) and metrics.json."""

import json

from trainer.reporting import evaluation_summary, read_metrics_json, report_to_hypertune, write_metrics_json


def test_hypertune_reports_accumulate_in_the_metric_file(hypertune_file):
    report_to_hypertune(tag="rmse", value=0.5, global_step=100)
    report_to_hypertune(tag="rmse", value=0.25, global_step=200)
    lines = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert [(line["rmse"], line["global_step"]) for line in lines] == [("0.5", "100"), ("0.25", "200")]


def test_hypertune_tag_comes_from_the_caller(hypertune_file):
    report_to_hypertune(tag="val_rmse", value=1.5, global_step=3)
    (line,) = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert line["val_rmse"] == "1.5" and "rmse" not in line


def test_metrics_json_round_trip(tmp_path):
    summary = evaluation_summary(
        {"rmse": 0.2, "mae": 0.1, "naive_rmse": 0.8, "loss": 0.04, "global_step": 300},
        saved_model_path=f"{tmp_path}/export/latest/123")
    path = write_metrics_json(str(tmp_path), summary)
    assert path == f"{tmp_path}/metrics.json"
    assert read_metrics_json(str(tmp_path)) == {
        "rmse": 0.2, "mae": 0.1, "naive_rmse": 0.8, "loss": 0.04, "global_step": 300,
        "saved_model_path": f"{tmp_path}/export/latest/123"}
    assert not (tmp_path / "metrics.json.tmp").exists()
    assert read_metrics_json(str(tmp_path / "none")) is None
