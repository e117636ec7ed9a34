"""Estimator wiring: the session config keeps the Estimator's own settings and adds the threads."""

import json

from trainer.training.config import make_config
from trainer.training.experiment import make_run_config


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
