"""The chief's saver keeps the variables a session holds when they are newer than the checkpoint.

A real Saver, checkpoint files and sessions; in a cluster the session's variables live on the
parameter servers (tests/test_distributed.py restarts a real chief and a real server).
"""

import logging

import pytest
import tensorflow as tf

from trainer.training.chief_restore import KeepNewerSaver
from trainer.training.run_dir import checkpoint_global_step


@pytest.fixture
def graph():
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        weight = tf.compat.v1.get_variable("weight", initializer=1.0)
        new_step = tf.compat.v1.placeholder(tf.int64, [])
        new_weight = tf.compat.v1.placeholder(tf.float32, [])
        assign = [step.assign(new_step), weight.assign(new_weight)]
        saver = KeepNewerSaver(sharded=True, defer_build=True, save_relative_paths=True)
        scaffold = tf.compat.v1.train.Scaffold(saver=saver)
        scaffold.finalize()  # builds the saver, as the Estimator's session does
    values = lambda sess: tuple(sess.run([step, weight]))  # noqa: E731
    set_values = lambda sess, s, w: sess.run(assign, {new_step: s, new_weight: w})  # noqa: E731
    return graph, saver, scaffold, values, set_values


def test_newer_variables_are_kept_older_or_uninitialized_ones_restored(graph, tmp_path, caplog):
    graph, saver, scaffold, values, set_values = graph
    caplog.set_level(logging.INFO, logger="trainer")
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(scaffold.init_op)
        set_values(sess, 5, 2.0)
        path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=5)
        assert checkpoint_global_step(path) == 5

        set_values(sess, 9, 3.0)  # trained on past the checkpoint (the workers, in a cluster)
        saver.restore(sess, path)
        assert values(sess) == (9, 3.0)
        assert ("keeping the parameter servers' variables at step 9, not the checkpoint at "
                "step 5") in caplog.text

        set_values(sess, 5, 4.0)  # at the checkpoint's step: kept too
        saver.restore(sess, path)
        assert values(sess) == (5, 4.0)

        set_values(sess, 2, 7.0)  # behind the checkpoint: restored
        saver.restore(sess, path)
        assert values(sess) == (5, 2.0)
        assert "restoring the checkpoint at step 5: the parameter servers hold step 2" in caplog.text

    with tf.compat.v1.Session(graph=graph) as fresh:  # nothing initialized: a new server
        saver.restore(fresh, path)
        assert values(fresh) == (5, 2.0)
    assert ("restoring the checkpoint at step 5 into the parameter servers: 2 of their variables "
            "are not initialized (a new job, or a parameter server that restarted)") in caplog.text


def test_a_graph_without_a_global_step_is_restored_as_any_saver_restores(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        weight = tf.compat.v1.get_variable("weight", initializer=1.0)
        saver = KeepNewerSaver()  # built at once; nothing to compare steps with
        bump = weight.assign_add(1.0)
        with tf.compat.v1.Session() as sess:
            sess.run(weight.initializer)
            path = saver.save(sess, str(tmp_path / "model.ckpt"))
            sess.run(bump)
            saver.restore(sess, path)
            assert sess.run(weight) == 1.0
    assert checkpoint_global_step(path) is None  # no global step in that checkpoint
