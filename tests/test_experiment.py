"""Estimator wiring: the session config keeps the Estimator's own settings and adds the threads;
the evaluation throttle."""

import dataclasses
import json
import logging
from pathlib import Path

from trainer.training.config import make_config
from trainer.training.experiment import eval_throttle_secs, make_run_config, warn_of_skipped_evaluations


def test_local_run_config_sets_the_thread_flags(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = make_config(intra_op_threads=1, inter_op_threads=3)
    session = make_run_config(config, output_dir=str(tmp_path)).session_config
    assert (session.intra_op_parallelism_threads, session.inter_op_parallelism_threads) == (1, 3)
    assert session.allow_soft_placement
    assert list(session.device_filters) == []


def test_worker_keeps_the_device_filters_that_let_it_run_while_others_are_down(monkeypatch,
                                                                               tmp_path):
    cluster = {"chief": ["127.0.0.1:2001"], "worker": ["127.0.0.1:2002", "127.0.0.1:2003"],
               "ps": ["127.0.0.1:2004"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    session = make_run_config(make_config(intra_op_threads=2),
                              output_dir=str(tmp_path)).session_config
    assert list(session.device_filters) == ["/job:ps", "/job:worker/task:1"]
    assert session.intra_op_parallelism_threads == 2


def test_a_separate_evaluator_polls_at_least_every_second_the_others_as_resolved():
    stepped = make_config(save_checkpoints_steps=50)  # throttle 0: every checkpoint
    assert eval_throttle_secs(stepped, is_evaluator=False) == 0
    assert eval_throttle_secs(stepped, is_evaluator=True) == 1  # 0 would poll without a pause
    timed = make_config()
    assert eval_throttle_secs(timed, is_evaluator=False) == eval_throttle_secs(
        timed, is_evaluator=True) == 30


def test_a_throttle_given_with_steps_and_early_stopping_is_warned_of(caplog):
    with caplog.at_level(logging.WARNING, logger="trainer.training.experiment"):
        warn_of_skipped_evaluations(make_config(save_checkpoints_steps=50, early_stopping_evals=3))
        warn_of_skipped_evaluations(make_config(early_stopping_evals=3))  # by time: as always
        warn_of_skipped_evaluations(make_config(save_checkpoints_steps=50, eval_throttle_secs=60))
        assert not caplog.text
        warn_of_skipped_evaluations(make_config(save_checkpoints_steps=50, eval_throttle_secs=60,
                                                early_stopping_evals=3))
    assert ("--eval_throttle_secs 60: a checkpoint saved (every 50 steps) within 60 s of the "
            "previous evaluation is not evaluated, and --early_stopping_evals 3 counts only the "
            "evaluations that run") in caplog.text


def test_a_run_reads_prepare_json_once_and_its_flags_once(monkeypatch, tmp_path):
    """prepare.json is read once to resolve the flags (make_config) and once for the run, which
    hands that one object to the statistics, covariates, exports and data (issue: eight reads)."""
    import tensorflow as tf

    from trainer.training.experiment import train_and_evaluate

    monkeypatch.delenv("TF_CONFIG", raising=False)
    _prepared_two_series(tmp_path)
    opened = []
    real_gfile = tf.io.gfile.GFile

    class CountingGFile(real_gfile):
        def __init__(self, name, mode="r"):
            if str(name).endswith("prepare.json") and "r" in mode:
                opened.append(str(name))
            super().__init__(name, mode)

    monkeypatch.setattr(tf.io.gfile, "GFile", CountingGFile)
    config = make_config(data_dir=str(tmp_path / "prepared"), output_dir=str(tmp_path / "run"),
                         model="linear", train_steps=20, steps_per_run=1, batch_size=8)
    assert len(opened) == 1  # the flags' defaults (n_inputs, n_outputs, season)
    metrics = train_and_evaluate(config)
    assert metrics["global_step"] == 20 and metrics["series_evaluated"] == 2
    assert len(opened) == 2, opened


def _prepared_two_series(tmp_path):
    import numpy as np

    from trainer.prepare import PrepareConfig, prepare

    rng = np.random.default_rng(0)
    lines = ["series_id,timestamp,value"] + [f"s{s},{t},{np.sin(t / 3) + s + rng.normal(0, 0.1):.4f}"
                                             for s in range(2) for t in range(60)]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepare(PrepareConfig(input=str(tmp_path / "raw.csv"), output_dir=str(tmp_path / "prepared"),
                          valid_points=8, test_points=8, n_inputs=8, n_outputs=2))
    return tmp_path / "prepared"


def test_a_run_is_three_steps_that_a_caller_can_take_one_by_one(monkeypatch, tmp_path):
    """set_up_run writes the run directory and reads no data; build_run reads the data and
    writes the export assets, trains nothing; run_built trains, evaluates and exports."""
    from trainer.model.export_assets import DATA_ASSET, HEAD_ASSET, read_export_assets
    from trainer.training.experiment import BuiltRun, RunSetup, build_run, run_built, set_up_run
    from trainer.training.stopping import SignalStop
    from trainer.util import environment

    monkeypatch.delenv("TF_CONFIG", raising=False)
    run_dir = tmp_path / "run"
    config = make_config(data_dir=str(_prepared_two_series(tmp_path)), output_dir=str(run_dir),
                         model="linear", train_steps=20, steps_per_run=1, batch_size=8)
    with SignalStop(role="chief") as stop:
        setup = set_up_run(config, dirs=environment.resolve_output_dirs(config.output_dir),
                           task=environment.apply_cluster())
        assert isinstance(setup, RunSetup) and setup.output_dir == str(run_dir)
        assert setup.task.is_chief and not setup.task.is_distributed
        assert setup.summary["layout"] == "series"
        assert json.loads((run_dir / "config.json").read_text())["train_steps"] == 20
        assert not list(run_dir.glob("model.ckpt*"))

        built = build_run(setup, stop=stop)
        assert isinstance(built, BuiltRun)
        assert built.data.series_count == 2 and built.estimator.model_dir == str(run_dir)
        assert built.train_spec.max_steps == 20 and len(built.eval_spec.exporters) == 1
        assert {HEAD_ASSET, DATA_ASSET} <= set(built.signature.assets)
        assert all(Path(path).is_file() for path in built.signature.assets.values())
        assert not list(run_dir.glob("model.ckpt*"))

        metrics = run_built(setup, built)
    assert metrics["global_step"] == 20 and metrics["series_evaluated"] == 2
    best = sorted((run_dir / "export" / "best").iterdir())[-1]
    assert read_export_assets(str(best)).data["season"] == config.season


def test_the_model_spec_takes_every_flag_of_its_own_name_as_given():
    from trainer.training.config import TrainerConfig
    from trainer.training.experiment import FLAGS_OF_THE_MODEL, model_spec

    flags = {field.name for field in dataclasses.fields(TrainerConfig)}
    assert set(FLAGS_OF_THE_MODEL) <= flags, set(FLAGS_OF_THE_MODEL) - flags
    config = make_config(model="dnn", hidden_units=7, n_inputs=9, n_outputs=3, optimizer="adam",
                         learning_rate=0.003, clip_gradient_norm=2.5, scaling="none", season=4,
                         steps_per_run=6, train_steps=60, dropout=0.2, lr_schedule="cosine",
                         warmup_steps=5, loss="quantile", quantiles="0.2,0.5,0.8")
    spec = model_spec(config)
    for name in FLAGS_OF_THE_MODEL:
        assert getattr(spec, name) == getattr(config, name), name
    assert spec.head == "quantile" and spec.quantiles == (0.2, 0.5, 0.8)
    assert (spec.scale_mean, spec.scale_std, spec.series_count) == (0.0, 1.0, 0)
