"""`--solver closed_form`: the weights of a linear model from its normal equations, in seconds.

`fit_closed_form` reads the training windows once (`TrainingData.fit_input_fn`), adds up the
normal equations of the model's squared-error loss (`trainer.model.closed_form`), and for each
of --ridge_penalties solves them, sets the network's variables in a graph built by the ordinary
`model_fn` (so the checkpoint holds every variable a gradient run would, optimizer slots
included, and a later gradient run can resume from it) and saves a checkpoint at the next
global step. Each checkpoint is handed to `evaluate`, which evaluates and exports it as the
evaluator would after a training checkpoint: evaluations.json, export/best by
--monitored_metric and metrics.json then hold the sweep like any other run. What each step
fitted is written to closed_form.json beside them.

A rerun in the same directory fits again at the steps after the last checkpoint, so nothing is
overwritten; the best evaluation of all stays the answer, and FIT_FILE lists every sweep. A
refit (`trainer.refit`) of a closed-form answer fits its penalty alone (`penalty_of_step`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from trainer.model.closed_form import NormalEquations, Solver, assignments, batch_sums, design
from trainer.model.model_fn import model_fn
from trainer.model.spec import ModelSpec
from trainer.training.config import TrainerConfig
from trainer.training.run_dir import latest_global_step
from trainer.util.errors import ConfigError
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

FIT_FILE = "closed_form.json"  # in the run directory: what each checkpoint of the sweep holds
CHECKPOINT_PREFIX = "model.ckpt"  # the Estimator's own, so that it finds the checkpoints


def fit_closed_form(config: TrainerConfig, *, spec: ModelSpec,
                    fit_input_fn: Callable[[], tf.data.Dataset], output_dir: str,
                    evaluate: Callable[[str], Dict[str, Any]],
                    session_config: Optional[tf.compat.v1.ConfigProto] = None) -> Dict[str, Any]:
    """Fit `spec`'s model for each of `config.penalties`, save and `evaluate` each checkpoint;
    returns (and writes to FIT_FILE) what was fitted."""
    spec = dataclasses.replace(spec, steps_per_run=1)  # one batch per step in the graph below
    start_step = latest_global_step(output_dir) or 0
    started = time.time()
    with tf.Graph().as_default():
        tf.compat.v1.random.set_random_seed(config.seed)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        iterator = tf.compat.v1.data.make_initializable_iterator(fit_input_fn())
        features, labels = iterator.get_next()
        batch = design(features, labels, spec)
        sums = batch_sums(batch)
        model_fn(features, labels, tf.estimator.ModeKeys.TRAIN, spec)  # every variable
        variables = {variable.op.name: variable for variable in tf.compat.v1.global_variables()}
        values = {name: tf.compat.v1.placeholder(variables[name].dtype.base_dtype,
                                                 variables[name].shape, name=f"fit_{index}")
                  for index, name in enumerate(sorted(
                      {c.kernel for c in batch.columns} | {c.bias for c in batch.columns if c.bias}))}
        assign = tf.group(*[variables[name].assign(value) for name, value in values.items()])
        step_value = tf.compat.v1.placeholder(tf.int64, [], name="fit_step")
        assign_step = global_step.assign(step_value)
        saver = tf.compat.v1.train.Saver(max_to_keep=config.keep_checkpoint_max or None)
        state = tf.train.get_checkpoint_state(output_dir)
        if state is not None:  # keep the older checkpoints in the Estimator's list
            saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
        with tf.compat.v1.Session(config=session_config) as session:
            session.run([tf.compat.v1.global_variables_initializer(),
                         tf.compat.v1.local_variables_initializer(), iterator.initializer])
            equations = NormalEquations(parameters=int(batch.features.shape[-1]),
                                        outputs=int(batch.targets.shape[-1]))
            while True:
                try:
                    equations.add(session.run(sums))
                except tf.errors.OutOfRangeError:
                    break
            read_secs = time.time() - started
            solver = Solver(equations)
            logger.info("closed form: the normal equations of %d training windows, %d weights "
                        "per output, %d outputs, read in %.1f s%s", equations.windows,
                        equations.parameters, equations.outputs, read_secs,
                        f" ({solver.constant_features} features constant over the windows get "
                        "weight 0)" if solver.constant_features else "")
            fitted = []
            fit_secs = time.time() - started
            for index, penalty in enumerate(config.penalties):
                solved = time.time()
                solution = solver.solve(penalty, collinear=batch.collinear)
                if solution.forced:  # expected of a model collinear by construction
                    logger.log(logging.INFO if batch.collinear else logging.WARNING,
                               "closed form, penalty %g: %s", penalty, solution.forced)
                step = start_step + index + 1
                feed = {values[name]: value for name, value in
                        assignments(solution, batch.columns).items()}
                session.run(assign, feed_dict=feed)
                session.run(assign_step, feed_dict={step_value: step})
                path = saver.save(session, f"{output_dir}/{CHECKPOINT_PREFIX}", global_step=step,
                                  write_meta_graph=False)
                fit_secs += time.time() - solved
                # Evaluated at once: --keep_checkpoint_max may delete it after the next save.
                value = _number(evaluate(path).get(config.monitored_metric))
                fitted.append({"step": step, "penalty": penalty,
                               "used_penalty": solution.used_penalty,
                               "forced": solution.forced, config.monitored_metric: value})
                logger.info("closed form: penalty %g (step %d): valid %s %.6g", penalty, step,
                            config.monitored_metric, float("nan") if value is None else value)
    earlier = read_fits(output_dir)  # a rerun's sweep comes after the earlier ones
    fitted = [*(earlier or {}).get("fits", []), *fitted]
    report = {"solver": "closed_form", "model": spec.model, "windows": equations.windows,
              "weights_per_output": equations.parameters, "outputs": equations.outputs,
              "constant_features": solver.constant_features,
              "read_secs": round(read_secs, 3), "fit_secs": round(fit_secs, 3),
              "monitored_metric": config.monitored_metric, "fits": fitted}
    write_text_atomically(f"{output_dir}/{FIT_FILE}", json.dumps(report, indent=2) + "\n")
    return report


def read_fits(run_dir: str) -> Optional[Dict[str, Any]]:
    """The FIT_FILE of `run_dir`, or None when it has none (a run by gradient)."""
    path = f"{run_dir.rstrip('/')}/{FIT_FILE}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def penalty_of_step(run_dir: str, step: int) -> float:
    """The ridge penalty of the closed-form checkpoint at `step` of `run_dir` (what a refit of
    that answer fits with); a ConfigError naming FIT_FILE when it records none."""
    fits = read_fits(run_dir)
    for entry in (fits or {}).get("fits", []):
        if entry["step"] == step:
            return float(entry["penalty"])
    raise ConfigError(f"{run_dir.rstrip('/')}/{FIT_FILE} records no closed-form fit at step "
                      f"{step}, the run's answer; rerun the closed-form fit in that directory")


def _number(value: Any) -> Optional[float]:
    """A metric's value as a JSON number (None when absent or not finite)."""
    if value is None:
        return None
    value = float(np.asarray(value))
    return value if np.isfinite(value) else None
