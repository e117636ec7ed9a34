"""Hypertune reports (read back from the metric file) and metrics.json."""

import json

from tests.conftest import N_INPUTS, N_OUTPUTS
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


def test_export_of_a_checkpoint_deleted_meanwhile_is_skipped_and_said(tiny_data, tmp_path, caplog):
    # A separate evaluator exports the checkpoint it evaluated; the chief may have deleted it.
    import tensorflow as tf

    from trainer.config import make_config
    from trainer.experiment import make_estimator, make_exporters, make_train_input_fn
    from trainer.reporting import NOT_EXPORTED, SkipDeletedCheckpointExporter

    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4)
    output = tmp_path / "run"
    estimator = make_estimator(config, output_dir=str(output))
    estimator.train(make_train_input_fn(config, files=tiny_data["train_files"]), max_steps=3)
    latest, best = make_exporters(config, output_dir=str(output))
    assert isinstance(best, SkipDeletedCheckpointExporter)
    eval_result = {"rmse": 0.5, "mae": 0.4, "naive_rmse": 0.9, "loss": 0.25, "global_step": 3}
    gone = str(output / "model.ckpt-1")  # never written: as if deleted
    for exporter in (latest, best):
        with caplog.at_level("INFO"):
            assert exporter.export(estimator, str(output / "export" / exporter.name), gone,
                                   eval_result, False) is None
        assert f"{gone} was deleted before it could be exported" in caplog.text
    assert not (output / "export").exists()
    assert read_metrics_json(str(output))["saved_model_path"] is None  # the evaluation counts
    assert NOT_EXPORTED in caplog.text

    # The checkpoint that exists exports as before.
    existing = tf.train.latest_checkpoint(str(output))
    path = latest.export(estimator, str(output / "export" / "latest"), existing, eval_result, True)
    assert tf.saved_model.load(path).signatures["serving_default"] is not None
    assert read_metrics_json(str(output))["saved_model_path"] == path
