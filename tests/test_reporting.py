"""Hypertune reports (read back from the metric file) and metrics.json."""

import json

from tests.conftest import N_INPUTS, N_OUTPUTS
from trainer.training.reporting import (
    early_stopping_reason,
    evaluation_summary,
    read_metrics_json,
    report_to_hypertune,
    write_metrics_json,
)


def test_hypertune_reports_accumulate_in_the_metric_file(hypertune_file):
    report_to_hypertune(tag="rmse", value=0.5, global_step=100)
    report_to_hypertune(tag="rmse", value=0.25, global_step=200)
    lines = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert [(line["rmse"], line["global_step"]) for line in lines] == [("0.5", "100"), ("0.25", "200")]


def test_hypertune_tag_comes_from_the_caller(hypertune_file):
    report_to_hypertune(tag="val_rmse", value=1.5, global_step=3)
    (line,) = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert line["val_rmse"] == "1.5" and "rmse" not in line


def test_early_stopping_waits_patience_evaluations_after_the_best():
    history = [{"global_step": step, "mase": mase}
               for step, mase in ((10, 1.0), (20, 0.8), (30, 0.9), (40, 0.8), (50, 0.85))]
    # The earliest of equals is the best: steps 30, 40 and 50 came after it.
    assert early_stopping_reason(history, metric="mase", patience=3) == \
        "3 evaluations without a lower mase than 0.8000 at step 20"
    assert early_stopping_reason(history, metric="mase", patience=4) is None
    assert early_stopping_reason(history, metric="mase", patience=0) is None  # 0: never
    assert early_stopping_reason([], metric="mase", patience=1) is None


def test_metrics_json_round_trip(tmp_path):
    summary = evaluation_summary(
        {"rmse": 0.2, "mae": 0.1, "naive_rmse": 0.8, "loss": 0.04, "global_step": 300},
        saved_model_path=f"{tmp_path}/export/latest/123")
    path = write_metrics_json(str(tmp_path), summary)
    assert path == f"{tmp_path}/metrics.json"
    assert read_metrics_json(str(tmp_path)) == {
        "rmse": 0.2, "mae": 0.1, "naive_rmse": 0.8, "loss": 0.04, "global_step": 300,
        "saved_model_path": f"{tmp_path}/export/latest/123"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left
    assert read_metrics_json(str(tmp_path / "none")) is None


def test_export_of_a_checkpoint_deleted_meanwhile_is_skipped_and_said(tiny_data, tmp_path, caplog):
    # A separate evaluator exports the checkpoint it evaluated; the chief may have deleted it.
    import tensorflow as tf

    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator, make_exporters
    from trainer.training.recovery import NOT_EXPORTED

    # Ranked by rmse here: the figures below are rmse's.
    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         monitored_metric="rmse")
    output = tmp_path / "run"
    estimator = make_estimator(config, output_dir=str(output))
    estimator.train(make_train_input_fn(config, files=tiny_data["train_files"]), max_steps=3)
    (exporter,) = make_exporters(config, output_dir=str(output))
    eval_result = {"rmse": 0.5, "mae": 0.4, "naive_rmse": 0.9, "loss": 0.25, "global_step": 3}
    gone = str(output / "model.ckpt-1")  # never written: as if deleted
    with caplog.at_level("INFO"):
        assert exporter.export(estimator, str(output / "export" / exporter.name), gone,
                               eval_result, False) is None
    assert f"{gone} was deleted before it could be exported" in caplog.text
    assert not (output / "export").exists()
    assert read_metrics_json(str(output))["saved_model_path"] is None  # the evaluation counts
    assert NOT_EXPORTED in caplog.text

    # The checkpoint that exists exports as before, and a better evaluation to export/best too.
    existing = tf.train.latest_checkpoint(str(output))
    better = dict(eval_result, rmse=0.4)
    path = exporter.export(estimator, str(output / "export" / "latest"), existing, better, True)
    assert tf.saved_model.load(path).signatures["serving_default"] is not None
    metrics = read_metrics_json(str(output))
    assert metrics["saved_model_path"].startswith(f"{output}/export/best/")
    assert (metrics["rmse"], metrics["evaluations"], metrics["last_global_step"]) == (0.4, 2, 3)


def feed_evaluations(output, train_files, figures, **flags):
    """A ReportingExporter of an evaluator with `flags`, writing to `output`, fed one evaluation
    per (step, rmse, mase) of `figures` (each with a real checkpoint to export)."""
    import tensorflow as tf

    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator, make_exporters

    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         **flags)
    estimator = make_estimator(config, output_dir=str(output))
    estimator.train(make_train_input_fn(config, files=train_files), max_steps=3)
    checkpoint = tf.train.latest_checkpoint(str(output))
    (exporter,) = make_exporters(config, output_dir=str(output), is_evaluator=True)
    base = {"mae": 0.4, "naive_rmse": 0.9, "loss": 0.25}
    for step, rmse, mase in figures:
        exporter.export(estimator, str(output / "export" / "latest"), checkpoint,
                        dict(base, rmse=rmse, mase=mase, global_step=step), False)


# (step, rmse, mase): rmse prefers step 20, then 40 and 50; mase prefers step 30 and then
# improves no more, as when one large series decides the pooled RMSE.
DISAGREEING = ((10, 0.5, 1.0), (20, 0.3, 1.2), (30, 0.6, 0.8), (40, 0.2, 0.9), (50, 0.1, 0.85))


def test_the_best_export_follows_the_monitored_metric_and_hypertune_gets_rmse_of_that_best(
        tiny_data, tmp_path, hypertune_file, caplog):
    from trainer.training.reporting import read_evaluations

    output = tmp_path / "run"
    with caplog.at_level("INFO", logger="trainer.training.reporting"):
        feed_evaluations(output, tiny_data["train_files"], DISAGREEING[:3], early_stopping_evals=2)
    metrics = read_metrics_json(str(output))
    assert (metrics["mase"], metrics["rmse"], metrics["global_step"]) == (0.8, 0.6, 30)
    assert metrics["last_global_step"] == 30 and metrics["evaluations"] == 3
    assert (metrics["monitored_metric"], metrics["hypertune_metric"]) == ("mase", "rmse")
    # Exported to export/best at steps 10 and 30 only; the answer is the newest of them.
    best_exports = sorted((output / "export" / "best").iterdir())
    assert len(best_exports) == 2 and metrics["saved_model_path"] == str(best_exports[-1])
    evaluations = read_evaluations(str(output))
    assert [e["global_step"] for e in evaluations] == [10, 20, 30]
    assert [e["saved_model_path"] in map(str, best_exports) for e in evaluations] == [
        True, False, True]
    # Each evaluation's line shows the monitored metric, and the best when it is another.
    assert "evaluation at step 20: rmse 0.3000  mae 0.4000  naive_rmse 0.9000  mase 1.2000  -> " \
        in caplog.text
    assert "(best mase 1.0000 at step 10)" in caplog.text
    # The tuning service gets rmse, that of the best evaluation by mase: the model the trial
    # would deploy, not the lowest rmse (0.3 at step 20).
    reported = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert [(float(r["rmse"]), r["global_step"]) for r in reported] == [
        (0.5, "10"), (0.5, "20"), (0.6, "30")]
    assert all(set(r) >= {"rmse", "global_step"} and "mase" not in r for r in reported)


def test_a_separate_evaluator_stops_when_the_monitored_metric_stops_improving(tiny_data, tmp_path,
                                                                            hypertune_file):
    import pytest

    from trainer.training.reporting import EarlyStopped

    # Steps 40 and 50 lower rmse, not mase: 2 evaluations without improvement.
    with pytest.raises(EarlyStopped, match=r"^2 evaluations without a lower mase than 0.8000 at "
                       r"step 30$"):
        feed_evaluations(tmp_path / "run", tiny_data["train_files"], DISAGREEING,
                         early_stopping_evals=2)
    metrics = read_metrics_json(str(tmp_path / "run"))
    assert (metrics["global_step"], metrics["last_global_step"]) == (30, 50)


def test_monitored_by_rmse_the_same_evaluations_choose_as_rmse_does(tiny_data, tmp_path,
                                                                    hypertune_file):
    output = tmp_path / "run"
    feed_evaluations(output, tiny_data["train_files"], DISAGREEING, monitored_metric="rmse",
                     hypertune_metric="mase", early_stopping_evals=2)
    metrics = read_metrics_json(str(output))
    assert (metrics["global_step"], metrics["rmse"], metrics["monitored_metric"]) == (50, 0.1, "rmse")
    assert len(list((output / "export" / "best").iterdir())) == 4  # steps 10, 20, 40, 50
    reported = [json.loads(line) for line in hypertune_file.read_text().splitlines()]
    assert [float(r["mase"]) for r in reported] == [1.0, 1.2, 1.2, 0.9, 0.85]


def test_evaluator_goes_on_after_its_checkpoint_was_deleted(tiny_data, tmp_path, caplog):
    # The first evaluation meets a deleted checkpoint, as the Estimator's evaluator loop would
    # when the chief's keep_checkpoint_max removes it first; the evaluator then goes on.
    import pytest
    import tensorflow as tf

    from trainer.data.pipeline import make_input_fn
    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator
    from trainer.training.recovery import run_train_and_evaluate

    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         train_steps=20)
    output = tmp_path / "run"
    estimator = make_estimator(config, output_dir=str(output))
    input_fn = make_train_input_fn(config, files=tiny_data["train_files"])
    estimator.train(input_fn, max_steps=20)
    gone = str(output / "model.ckpt-7")  # never written: as if deleted
    train_spec = tf.estimator.TrainSpec(input_fn, max_steps=20)
    eval_input_fn = make_input_fn(files=tiny_data["eval_files"], training=False, batch_size=5,
                                  n_inputs=N_INPUTS, n_outputs=N_OUTPUTS)
    eval_spec = tf.estimator.EvalSpec(eval_input_fn, steps=1, start_delay_secs=10)
    delays, results = [], []

    def evaluator_loop(estimator, train_spec, eval_spec):
        delays.append(eval_spec.start_delay_secs)
        checkpoint = gone if len(delays) == 1 else estimator.latest_checkpoint()
        results.append(estimator.evaluate(eval_spec.input_fn, steps=1, checkpoint_path=checkpoint))

    with caplog.at_level("WARNING"):
        run_train_and_evaluate(estimator, train_spec, eval_spec, task_type="evaluator",
                               run=evaluator_loop)
    assert delays == [10, 0]  # went on at once
    assert results[0]["global_step"] == 20
    assert f"{gone} was deleted before it could be evaluated" in caplog.text

    # The chief does not evaluate: there, the same error is not hidden.
    delays.clear()
    with pytest.raises(ValueError, match="model.ckpt-7"):
        run_train_and_evaluate(estimator, train_spec, eval_spec, task_type="chief",
                               run=evaluator_loop)
    # Nor is the error of a checkpoint that exists but cannot be read.
    broken = output / "model.ckpt-9"
    (output / "model.ckpt-9.index").write_bytes(b"not a checkpoint")
    delays.clear()

    def broken_loop(estimator, train_spec, eval_spec):
        delays.append(eval_spec.start_delay_secs)
        estimator.evaluate(eval_spec.input_fn, steps=1, checkpoint_path=str(broken))

    with pytest.raises((ValueError, tf.errors.OpError)):
        run_train_and_evaluate(estimator, train_spec, eval_spec, task_type="evaluator",
                               run=broken_loop)
    assert delays == [10]


def test_export_cut_short_by_a_deleted_checkpoint_leaves_no_half_export(tiny_data, tmp_path):
    import tensorflow as tf

    from trainer.model.serving import make_serving_input_receiver_fn
    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator
    from trainer.training.recovery import SkipDeletedCheckpointExporter

    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         train_steps=10)
    output = tmp_path / "run"
    estimator = make_estimator(config, output_dir=str(output))
    estimator.train(make_train_input_fn(config, files=tiny_data["train_files"]), max_steps=10)
    checkpoint = estimator.latest_checkpoint()
    export_dir = output / "export" / "latest"
    real = tf.estimator.LatestExporter(
        "latest", make_serving_input_receiver_fn(n_inputs=N_INPUTS))

    class ChiefDeletesMidway(tf.estimator.Exporter):
        """The real exporter, after a half-written export and the chief deleting the checkpoint."""
        name = "latest"

        def export(self, estimator, export_path, checkpoint_path, eval_result, is_final):
            (export_dir / "temp-1700000000").mkdir(parents=True)
            (export_dir / "temp-1700000000" / "saved_model.pb").write_bytes(b"half")
            for path in tf.io.gfile.glob(checkpoint_path + ".*"):
                tf.io.gfile.remove(path)
            return real.export(estimator, export_path, checkpoint_path, eval_result, is_final)

    (export_dir / "1600000000").mkdir(parents=True)  # an earlier export stays
    exporter = SkipDeletedCheckpointExporter(ChiefDeletesMidway())
    assert exporter.export(estimator, str(export_dir), checkpoint, {"global_step": 10}, False) is None
    assert sorted(p.name for p in export_dir.iterdir()) == ["1600000000"]


def test_verdict_judges_the_scale_free_metric_says_on_how_many_series_and_checks_coverage():
    from trainer.model.metrics import verdict

    # Pooled rmse says the model wins; per-series mase says it loses: mase decides.
    lost = verdict({"rmse": 0.2, "naive_rmse": 0.8, "seasonal_naive_rmse": 0.5, "mase": 1.1,
                    "naive_mase": 1.3, "seasonal_naive_mase": 0.9, "series_evaluated": 40.0,
                    "share_beating_seasonal_naive": 0.25})
    assert lost.startswith("WARNING: loses to the seasonal naive forecast on mase: 1.1000 against "
                           "0.9000. Try --optimizer adam")
    assert lost.endswith("baseline\nbetter than seasonal naive on 10 of 40 series (25%, by MAE)")
    # The advice leaves out what the run had already: adam at 0.001, its own model, its season.
    ran = {"optimizer": "adam", "learning_rate": 0.001, "model": "linear", "scaling": "window_zscore",
           "n_inputs": 28, "train_steps": 4000, "season": 52}
    advice = verdict({"mase": 1.1, "naive_mase": 1.0}, run_flags=ran)
    assert advice == ("WARNING: loses to the naive forecast on mase: 1.1000 against 1.0000. Try "
                      "another --model (dnn, nbeats, tide), a longer --n_inputs (now 28) or more "
                      "--train_steps (now 4000)")
    assert "--optimizer adam --learning_rate 0.001" in verdict(
        {"mase": 1.1, "naive_mase": 1.0}, run_flags={**ran, "optimizer": "sgd", "learning_rate": 0.1})
    assert "another --model (nbeats, tide, patchtst)" in verdict(
        {"mase": 1.1, "naive_mase": 1.0}, run_flags={**ran, "model": "dnn"})
    assert "--scaling" not in lost and "--scaling" not in advice
    assert verdict({"mase": 0.5, "naive_mase": 0.8, "seasonal_naive_mase": 0.8}) == \
        "beats the naive forecast (0.8000) on mase (0.5000)"  # one baseline when they agree
    assert verdict({"mase": 0.5, "naive_mase": 1.2, "seasonal_naive_mase": 0.9}, metric="rmsse") == \
        ("beats the naive forecast (1.2000) and the seasonal naive forecast (0.9000) on "
         "mase (0.5000)")  # a metric without baselines falls back to mase
    assert verdict({"smape": 9.0, "naive_smape": 12.0, "seasonal_naive_smape": 8.0, "mase": 0.5,
                    "naive_mase": 1.0}, metric="smape").startswith(
        "WARNING: loses to the seasonal naive forecast on smape: 9.0000 against 8.0000")
    # A quantile head: its widest interval against its nominal share.
    narrow = verdict({"mase": 0.5, "naive_mase": 1.0, "coverage_80": 72.4, "coverage_95": 51.0})
    assert narrow.endswith("\nWARNING: its 95% interval held 51.0% of the values (too narrow: read "
                           "its quantiles with care)")
    assert verdict({"mase": 0.5, "naive_mase": 1.0, "coverage_80": 78.0}).endswith(
        "(0.5000)\nits 80% interval held 78.0% of the values")
    assert verdict({"mase": float("nan"), "naive_mase": float("nan")}).startswith("no verdict")


def scalars_by_step(log_dir, tag):
    """{step: value of `tag`} from every events file in `log_dir` (as TensorBoard reads them)."""
    import tensorflow as tf

    found = {}
    for path in sorted(tf.io.gfile.glob(f"{log_dir}/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    found[event.step] = value.simple_value
    return found


def test_model_dir_holds_the_best_export_and_tensorboard_gets_every_evaluation(tiny_data, tmp_path):
    import numpy as np
    import pytest
    import tensorflow as tf

    from trainer.model.serving import holds_saved_model, load_exported_model
    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator, make_exporters

    # Ranked by rmse here: the figures below are rmse's.
    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         steps_per_run=1, monitored_metric="rmse")
    output, model_dir, logs = tmp_path / "checkpoints", tmp_path / "model", tmp_path / "logs"
    estimator = make_estimator(config, output_dir=str(output))
    train_input_fn = make_train_input_fn(config, files=tiny_data["train_files"])
    estimator.train(train_input_fn, max_steps=3)
    (exporter,) = make_exporters(config, output_dir=str(output), tensorboard_dir=str(logs),
                                 model_dir=str(model_dir))
    base = {"mae": 0.4, "naive_rmse": 0.9, "loss": 0.25}

    def evaluate(step, rmse):
        estimator.train(train_input_fn, max_steps=step)
        exporter.export(estimator, str(output / "export" / "latest"), estimator.latest_checkpoint(),
                        dict(base, rmse=rmse, global_step=step), False)
        return read_metrics_json(str(output))

    first = evaluate(3, 0.5)
    assert first["model_dir"] == str(model_dir)
    assert holds_saved_model(str(model_dir), first["saved_model_path"])
    assert evaluate(6, 0.6)["saved_model_path"] == first["saved_model_path"]  # worse: kept
    assert holds_saved_model(str(model_dir), first["saved_model_path"])
    best = evaluate(9, 0.3)
    assert best["saved_model_path"] != first["saved_model_path"]
    assert holds_saved_model(str(model_dir), best["saved_model_path"])
    assert not holds_saved_model(str(model_dir), first["saved_model_path"])
    served, exported = load_exported_model(str(model_dir)), load_exported_model(best["saved_model_path"])
    assert served.path == str(model_dir) and (served.n_inputs, served.n_outputs) == (N_INPUTS, N_OUTPUTS)
    windows = np.linspace(-1.0, 1.0, 4 * N_INPUTS, dtype=np.float32).reshape(4, N_INPUTS)
    np.testing.assert_array_equal(served.predict(windows), exported.predict(windows))

    # A copy cut short (a preempted job) leaves no saved_model.pb: the next evaluation copies.
    (model_dir / "saved_model.pb").unlink()
    evaluate(12, 0.4)
    assert holds_saved_model(str(model_dir), best["saved_model_path"])
    assert not [p for p in model_dir.rglob("*") if ".tmp-" in p.name]

    assert scalars_by_step(logs / "eval", "rmse") == pytest.approx({3: 0.5, 6: 0.6, 9: 0.3, 12: 0.4})
    assert scalars_by_step(logs / "eval", "naive_rmse") == pytest.approx(
        {3: 0.9, 6: 0.9, 9: 0.9, 12: 0.9})
    assert len(list((logs / "eval").iterdir())) == 1  # one events file, appended to
    assert tf.train.latest_checkpoint(str(output)).endswith("model.ckpt-12")
    assert not list(model_dir.glob("model.ckpt*"))


def trained_checkpoints(tiny_data, output, steps=(3, 6, 9)):
    """A tiny estimator trained to each of `steps` (a checkpoint each), and its receiver_fn."""
    from trainer.model.serving import make_serving_input_receiver_fn
    from trainer.training.config import make_config
    from trainer.training.data_source import make_train_input_fn
    from trainer.training.experiment import make_estimator

    config = make_config(n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, batch_size=5, hidden_units=4,
                         steps_per_run=1)
    estimator = make_estimator(config, output_dir=str(output))
    train_input_fn = make_train_input_fn(config, files=tiny_data["train_files"])
    for step in steps:
        estimator.train(train_input_fn, max_steps=step)
    return estimator, make_serving_input_receiver_fn(n_inputs=N_INPUTS)


def test_a_best_evaluation_whose_checkpoint_went_before_its_best_export_keeps_a_model(tiny_data, tmp_path):
    # The chief deletes the checkpoint between the latest export and the best one: the latest
    # export is copied to export/best, and the answer outlives the latest exports' clean-up.
    import tensorflow as tf

    from trainer.model.serving import load_exported_model
    from trainer.training.recovery import SkipDeletedCheckpointExporter
    from trainer.training.reporting import ReportingExporter

    output = tmp_path / "run"
    estimator, receiver_fn = trained_checkpoints(tiny_data, output)
    latest = tf.estimator.LatestExporter("latest", receiver_fn, exports_to_keep=1)
    deleted = []

    class ChiefDeletesAfterLatest(tf.estimator.Exporter):
        name = "latest"

        def export(self, estimator, export_path, checkpoint_path, eval_result, is_final):
            path = latest.export(estimator, export_path, checkpoint_path, eval_result, is_final)
            if not deleted:  # the first time only
                deleted.append(checkpoint_path)
                for name in tf.io.gfile.glob(checkpoint_path + ".*"):
                    tf.io.gfile.remove(name)
            return path

    exporter = ReportingExporter(
        SkipDeletedCheckpointExporter(ChiefDeletesAfterLatest()), output_dir=str(output),
        monitored_metric="rmse", hypertune_metric="rmse",  # the figures below are rmse's
        best=SkipDeletedCheckpointExporter(tf.estimator.LatestExporter("best", receiver_fn)))
    base = {"mae": 0.4, "naive_rmse": 0.9, "loss": 0.25}
    for step, rmse in ((3, 0.3), (6, 0.5), (9, 0.6)):  # the first is the best
        exporter.export(estimator, str(output / "export" / "latest"), str(output / f"model.ckpt-{step}"),
                        dict(base, rmse=rmse, global_step=step), False)
    metrics = read_metrics_json(str(output))
    assert (metrics["global_step"], metrics["rmse"]) == (3, 0.3)
    (first_latest,) = [p for p in (output / "export" / "best").iterdir()]
    assert metrics["saved_model_path"] == str(first_latest)
    assert not (output / "export" / "latest" / first_latest.name).exists()  # cleaned up since
    assert load_exported_model(metrics["saved_model_path"]).n_outputs == N_OUTPUTS
    assert not tf.io.gfile.glob(deleted[0] + ".*")


def test_an_evaluation_better_than_every_exported_one_reaches_export_best(tiny_data, tmp_path):
    # The best evaluation so far lost its checkpoint before any export; the next one, a little
    # worse but the best that has a model, goes to export/best too, so that the answer is never a
    # latest export (which the latest exports' clean-up deletes: a cluster test's failure).
    import tensorflow as tf

    from trainer.model.serving import load_exported_model
    from trainer.training.recovery import SkipDeletedCheckpointExporter
    from trainer.training.reporting import ReportingExporter

    output = tmp_path / "run"
    estimator, receiver_fn = trained_checkpoints(tiny_data, output)
    exporter = ReportingExporter(
        SkipDeletedCheckpointExporter(tf.estimator.LatestExporter("latest", receiver_fn,
                                                                  exports_to_keep=1)),
        output_dir=str(output), monitored_metric="mase", hypertune_metric="rmse",
        best=SkipDeletedCheckpointExporter(tf.estimator.LatestExporter("best", receiver_fn)))
    for name in tf.io.gfile.glob(str(output / "model.ckpt-3.*")):  # gone before its export
        tf.io.gfile.remove(name)
    base = {"mae": 0.4, "rmse": 0.5, "naive_rmse": 0.9, "loss": 0.25}
    for step, mase in ((3, 0.30), (6, 0.31), (9, 0.6)):
        exporter.export(estimator, str(output / "export" / "latest"),
                        str(output / f"model.ckpt-{step}"), dict(base, mase=mase, global_step=step),
                        False)
    metrics = read_metrics_json(str(output))
    assert (metrics["global_step"], metrics["mase"]) == (6, 0.31)
    assert metrics["saved_model_path"].startswith(str(output / "export" / "best"))
    assert load_exported_model(metrics["saved_model_path"]).n_outputs == N_OUTPUTS
