"""Why training stops before `--train_steps`: a signal (preemption, Ctrl-C), a diverging loss,
or evaluations that stopped improving.

**Signals.** Google Cloud takes a VM away with a SIGTERM (Spot and preemptible VMs,
maintenance, a cancelled job); a user at a terminal presses Ctrl-C (SIGINT). `SignalStop`
turns both into a clean stop:

- in a training session (`StopOnSignalHook` is then armed), the current session run
  finishes, the chief saves a checkpoint at that step, and `Stopped` is raised: the command
  prints one line and exits with 128 + the signal number (143 for SIGTERM, 130 for SIGINT);
- anywhere else (starting up, waiting for the chief, evaluating, serving as a parameter
  server) there is nothing to save: `Stopped` is raised at once;
- a second signal ends the process at once, even during the save.

**Divergence.** `DivergenceHook` stops training on a NaN or infinite loss with one line
naming the step, the last finite loss and what to try; the checkpoints saved before stay.

**Early stopping.** With `--early_stopping_evals N`, `EarlyStoppingHook` ends training once
the last N evaluations in `evaluations.json` (written by whichever process evaluates:
`trainer.training.reporting`) all failed to lower the monitored metric (`--monitored_metric`).
Every training process of a cluster runs it and reads the same file, so the chief and the
workers stop on the evaluator's results; the evaluator stops itself (`EarlyStopped`). The run's
answer is then the best evaluation, which metrics.json and export/best already hold.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Optional

from trainer.training.reporting import early_stopping_reason, read_evaluations
from trainer.util.errors import Stopped, TrainerError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DivergedError(TrainerError):
    """The training loss became NaN or infinite."""


class SignalStop:
    """The process's handler of SIGTERM and SIGINT (install it once, from the main thread)."""

    def __init__(self, *, role: str):
        self.role = role
        self.signum: Optional[int] = None
        self.armed = False  # a training session is running: stop at the end of its session run
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> SignalStop:
        """Handle the signals (from the main thread; elsewhere Python cannot, and it is skipped)."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            logger.warning("second signal (%s): stopping at once, without waiting for the "
                           "checkpoint", name)
            logging.shutdown()
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        if self.armed:
            logger.warning("%s received: stopping at the end of this session run (a second "
                           "signal stops at once)", name)
            return
        raise Stopped(signum, f"{self.role} stopped by {name}; rerun the same command to resume")


class StopOnSignalHook(tf.estimator.SessionRunHook):
    """After the session run in which a signal came: save a checkpoint (chief), raise `Stopped`.

    Raising, rather than asking the session to stop, skips what a normal end of training does
    next (a final evaluation and export), which a VM about to go cannot wait for.
    """

    def __init__(self, stop: SignalStop, *, model_dir: str, is_chief: bool):
        self._stop = stop
        self._model_dir = model_dir.rstrip("/")
        self._is_chief = is_chief

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()

    def after_create_session(self, session: tf.compat.v1.Session, coord: object) -> None:
        self._stop.armed = True

    def before_run(self, run_context: tf.estimator.SessionRunContext) -> None:
        self._raise_if_signalled(run_context.session)  # a signal before the first run

    def after_run(self, run_context: tf.estimator.SessionRunContext,
                  run_values: tf.estimator.SessionRunValues) -> None:
        self._raise_if_signalled(run_context.session)

    def end(self, session: tf.compat.v1.Session) -> None:
        self._stop.armed = False

    def _raise_if_signalled(self, session: tf.compat.v1.Session) -> None:
        if self._stop.signum is None:
            return
        self._stop.armed = False  # from here on, a signal is the second one
        name = signal.Signals(self._stop.signum).name
        step = int(session.run(self._global_step))
        if self._is_chief:
            savers = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SAVERS)
            try:
                path = savers[0].save(session, f"{self._model_dir}/model.ckpt", global_step=step)
            except tf.errors.OpError as error:  # e.g. the parameter servers are gone already
                reason = (error.message or repr(error)).splitlines()[0]
                raise Stopped(self._stop.signum, f"stopped by {name} at step {step}; the "
                              f"checkpoint could not be saved ({reason}); rerun the same "
                              "command to resume from the last one") from None
            logger.info("checkpoint saved: %s", path)
            message = (f"stopped by {name} at step {step}; checkpoint saved; rerun the same "
                       "command to resume")
        else:
            message = (f"{self._stop.role} stopped by {name} at step {step}; the chief keeps the "
                       "checkpoints; rerun the same command to rejoin")
        raise Stopped(self._stop.signum, message)


class DivergenceHook(tf.estimator.SessionRunHook):
    """Fetches the loss of every session run; a NaN or infinite one raises `DivergedError`."""

    def __init__(self, *, learning_rate: float, scaling: str, clip_gradient_norm: float):
        self._learning_rate = learning_rate
        self._scaling = scaling
        self._clip_gradient_norm = clip_gradient_norm
        self.last_finite: Optional[tuple] = None  # (step, loss)

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()
        self._loss = tf.compat.v1.losses.get_total_loss(add_regularization_losses=False)

    def before_run(self, run_context: tf.estimator.SessionRunContext) -> tf.estimator.SessionRunArgs:
        return tf.estimator.SessionRunArgs({"loss": self._loss, "step": self._global_step})

    def after_run(self, run_context: tf.estimator.SessionRunContext,
                  run_values: tf.estimator.SessionRunValues) -> None:
        loss, step = float(run_values.results["loss"]), int(run_values.results["step"])
        if math.isfinite(loss):
            self.last_finite = (step, loss)
            return
        raise self.error(step, loss)

    def error(self, step: Optional[int], loss: float) -> DivergedError:
        """The one-line error for a loss that became `loss` (nan or inf) by `step`."""
        last = (f"the last finite loss was {self.last_finite[1]:.4g} at step {self.last_finite[0]}"
                if self.last_finite else "no finite loss was seen")
        advice = [f"a lower --learning_rate (now {self._learning_rate:g})"]
        if self._scaling == "none":
            advice.append("--scaling window_zscore or last_value")
        if self._clip_gradient_norm <= 0:
            advice.append("--clip_gradient_norm 5")
        where = f" after step {step}" if step is not None else ""
        return DivergedError(f"training diverged: the loss became {loss}{where} ({last}). Try "
                             + ", ".join(advice) + "; the checkpoints saved before it are kept, "
                             "so use another --output_dir or --overwrite to start afresh")


class EarlyStoppingHook(tf.estimator.SessionRunHook):
    """Requests a stop once `patience` evaluations in a row did not lower `metric`.

    Reads the run's `evaluations.json` when the session starts (a resumed run that had already
    stopped early stops at once) and then at most every `interval_secs`.
    """

    def __init__(self, *, output_dir: str, metric: str, patience: int, interval_secs: float = 5.0):
        self._output_dir = output_dir
        self._metric = metric
        self._patience = patience
        self._interval_secs = interval_secs
        self._next_check = 0.0
        self.stopped_reason: Optional[str] = None

    def _check(self, run_context: tf.estimator.SessionRunContext) -> None:
        reason = early_stopping_reason(read_evaluations(self._output_dir), metric=self._metric,
                                       patience=self._patience)
        if reason is not None and self.stopped_reason is None:
            self.stopped_reason = reason
            logger.info("early stopping: %s (--early_stopping_evals %d); the best evaluation and "
                        "its export are the run's answer", self.stopped_reason, self._patience)
        if self.stopped_reason is not None:
            run_context.request_stop()

    def begin(self) -> None:
        self._next_check = 0.0  # the first run checks: a run that had already stopped early

    def before_run(self, run_context: tf.estimator.SessionRunContext) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._interval_secs
            self._check(run_context)
