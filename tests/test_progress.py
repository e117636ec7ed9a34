"""The progress line: its text, and when it is printed."""

import tensorflow as tf

from trainer.training import progress
from trainer.training.progress import ProgressHook, format_progress


def test_format_progress_reads_as_documented():
    assert format_progress(step=1200, target_step=6000, loss=0.04123, examples_per_sec=9410.2,
                           eta_secs=33.4) == ("step 1200/6000 (20%)  loss 0.0412  9,410 "
                                              "examples/s  ETA 0:00:33")


def drive(monkeypatch, caplog, *, interval_secs):
    """Runs of 10 steps every 0.5 s for 30 s; returns (seconds at which a line was logged, lines)."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress.time, "time", lambda: clock["now"])
    with tf.Graph().as_default():
        tf.compat.v1.train.create_global_step()
        tf.compat.v1.losses.add_loss(tf.constant(0.5))
        hook = ProgressHook(target_step=1000, batch_size=10, interval_secs=interval_secs)
        hook.begin()
    lines = lambda: [r.getMessage() for r in caplog.records if r.name == "trainer.training.progress"]  # noqa: E731
    logged_at, step = [], 0
    with caplog.at_level("INFO", logger="trainer.training.progress"):
        for _ in range(60):
            args = hook.before_run(None)
            step += 10
            results = {"step": step, **({"loss": 0.5} if "loss" in args.fetches else {})}
            before = len(lines())
            hook.after_run(None, tf.compat.v1.train.SessionRunValues(results, None, None))
            if len(lines()) > before:
                logged_at.append(clock["now"] - 1000.0)
            clock["now"] += 0.5
    return logged_at, lines()


def test_first_line_comes_early_then_one_per_interval(monkeypatch, caplog):
    logged_at, lines = drive(monkeypatch, caplog, interval_secs=10.0)
    assert logged_at == [2.0, 12.0, 22.0]  # first after 2 s, then every 10 s
    # No ETA on the first line: its pace includes the run's warm-up. Then the pace since it.
    assert lines[0] == "step 50/1000 (5%)  loss 0.5  200 examples/s"
    assert lines[1] == "step 250/1000 (25%)  loss 0.5  200 examples/s  ETA 0:00:38"


def test_first_line_never_waits_longer_than_the_interval(monkeypatch, caplog):
    logged_at, _ = drive(monkeypatch, caplog, interval_secs=1.5)
    assert logged_at[:3] == [1.5, 3.0, 4.5]


def test_a_slow_warm_up_does_not_make_the_eta(monkeypatch, caplog):
    """The first 2 s take 5 steps (the input pipeline's first files), then 100 steps a second:
    the ETA of the second line is that of the steady pace, not of the warm-up's."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress.time, "time", lambda: clock["now"])
    with tf.Graph().as_default():
        tf.compat.v1.train.create_global_step()
        tf.compat.v1.losses.add_loss(tf.constant(0.5))
        hook = ProgressHook(target_step=24000, batch_size=10, interval_secs=10.0)
        hook.begin()
    step = 0
    with caplog.at_level("INFO", logger="trainer.training.progress"):
        for tick in range(240):  # 0.1 s each
            args = hook.before_run(None)
            step += 1 if tick < 20 else 10
            results = {"step": step, **({"loss": 0.5} if "loss" in args.fetches else {})}
            hook.after_run(None, tf.compat.v1.train.SessionRunValues(results, None, None))
            clock["now"] += 0.1
    lines = [r.getMessage() for r in caplog.records if r.name == "trainer.training.progress"]
    # The first line's pace, 14.5 steps a second, would have said ETA 0:27:30.
    assert lines[0] == "step 30/24000 (0%)  loss 0.5  145 examples/s"
    assert lines[1].endswith("ETA 0:03:50"), lines  # (24000 - 1030) steps at 100 a second
