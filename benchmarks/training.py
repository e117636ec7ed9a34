"""Training candidates: examples per second of one training process, after a warm-up.

- `estimator_<model>`: the trainer's Estimator (its model_fn, run config, input_fn and progress
  hook, checkpoints as configured), trained with `Estimator.train`.
- `keras_<model>`: `tf.keras` `Model.fit` with its defaults, on the same network (the paper's LSTM
  cell over the inputs, then a dense head; or one dense layer for `linear`), the same optimizer,
  learning rate, gradient clipping, batch size and the same batches (the trainer's input
  pipeline), so that only the training loop differs.

Each run starts from fresh weights in a fresh directory; the clock starts after `warmup_steps`
steps (graph building, session start and first-step tracing excluded) and stops at the end.
"""

import dataclasses
import gc
import tempfile
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from benchmarks.measure import Stopwatch
from trainer.data.schema import FEATURE_KEY
from trainer.model.optimizers import OPTIMIZERS
from trainer.training.config import TrainerConfig
from trainer.training.data_source import make_train_input_fn
from trainer.training.experiment import make_estimator, make_progress_hook


class _ThroughputHook(tf.estimator.SessionRunHook):
    """Starts a stopwatch once the global step passes `warmup_steps`; reads the step at the end."""

    def __init__(self, *, warmup_steps: int):
        self._warmup_steps = warmup_steps
        self.stopwatch = Stopwatch()
        self.start_step: Optional[int] = None

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()

    def before_run(self, run_context):
        if self.start_step is None:  # no fetch at all once the clock runs
            return tf.estimator.SessionRunArgs(self._global_step)
        return None

    def after_run(self, run_context, run_values) -> None:
        if self.start_step is None and run_values.results >= self._warmup_steps:
            self.start_step = int(run_values.results)
            self.stopwatch.start()

    def end(self, session) -> None:
        self.seconds = self.stopwatch.stop()
        self.end_step = int(session.run(self._global_step))


def estimator_examples_per_sec(config: TrainerConfig, *, files: List[str], steps: int,
                               warmup_steps: int, work_dir: str) -> float:
    """Train the trainer's Estimator for warmup_steps + steps; examples/s after the warm-up."""
    output_dir = tempfile.mkdtemp(prefix=f"estimator-{config.model}-", dir=work_dir)
    config = dataclasses.replace(config, train_steps=warmup_steps + steps)  # the progress target
    estimator = make_estimator(config, output_dir=output_dir)
    throughput = _ThroughputHook(warmup_steps=warmup_steps)
    estimator.train(make_train_input_fn(config, files=files), max_steps=config.train_steps,
                    hooks=[throughput, make_progress_hook(config)])
    trained = throughput.end_step - throughput.start_step
    return trained * config.batch_size / throughput.seconds


def _keras_lstm(config: TrainerConfig) -> tf.keras.Model:
    layers = tf.keras.layers
    return tf.keras.Sequential([
        layers.Reshape((config.n_inputs, 1), input_shape=(config.n_inputs,)),
        layers.LSTM(config.hidden_units),
        layers.Dense(config.n_outputs),
    ])


def _keras_linear(config: TrainerConfig) -> tf.keras.Model:
    return tf.keras.Sequential([tf.keras.layers.Dense(config.n_outputs,
                                                      input_shape=(config.n_inputs,))])


# The networks of the trainer's registry (`trainer.model.networks.NETWORKS`) that have a Keras
# twin here, by their `--model` name.
KERAS_NETWORKS: Dict[str, Callable[[TrainerConfig], tf.keras.Model]] = {
    "lstm": _keras_lstm, "linear": _keras_linear}
KERAS_MODELS = tuple(KERAS_NETWORKS)


def keras_network(config: TrainerConfig) -> tf.keras.Model:
    """The trainer's `--model` (lstm or linear) as a Keras model with the same shapes."""
    if config.model not in KERAS_NETWORKS:
        raise ValueError(f"no Keras counterpart for --model {config.model}; "
                         f"use one of {', '.join(KERAS_MODELS)}")
    return KERAS_NETWORKS[config.model](config)


class _KerasThroughput(tf.keras.callbacks.Callback):
    def __init__(self, *, warmup_steps: int):
        super().__init__()
        self._warmup_steps = warmup_steps
        self.stopwatch = Stopwatch()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if batch == self._warmup_steps - 1:
            self.stopwatch.start()

    def on_train_end(self, logs=None) -> None:
        self.seconds = self.stopwatch.stop()


def keras_examples_per_sec(config: TrainerConfig, *, files: List[str], steps: int,
                           warmup_steps: int) -> float:
    """`Model.fit` for warmup_steps + steps on the trainer's batches; examples/s after warm-up."""
    model = keras_network(config)
    optimizer = getattr(tf.keras.optimizers, OPTIMIZERS[config.optimizer].keras_name)(
        learning_rate=config.learning_rate,
        global_clipnorm=config.clip_gradient_norm if config.clip_gradient_norm > 0 else None)
    model.compile(optimizer=optimizer, loss="mse")
    # One batch per element: fit takes the trainer's batches, not its --steps_per_run groups.
    one_batch_each = dataclasses.replace(config, steps_per_run=1)
    dataset = make_train_input_fn(one_batch_each, files=files)().map(
        lambda features, labels: (features[FEATURE_KEY], labels))
    throughput = _KerasThroughput(warmup_steps=max(warmup_steps, 1))
    model.fit(dataset, steps_per_epoch=max(warmup_steps, 1) + steps, epochs=1, verbose=0,
              callbacks=[throughput])
    # fit's iterator over the endless dataset keeps prefetching until it is collected: free it
    # now, or its threads would slow the candidates measured after this one.
    del model, dataset
    tf.keras.backend.clear_session()
    gc.collect()
    return steps * config.batch_size / throughput.seconds


def training_candidates(configs: Dict[str, TrainerConfig], *, files: List[str], steps: int,
                        warmup_steps: int, work_dir: str) -> Dict[str, Callable[[], float]]:
    """name -> a function that trains once and returns examples per second, for each model."""
    candidates: Dict[str, Callable[[], float]] = {}
    for model, config in configs.items():
        candidates[f"estimator_{model}"] = lambda c=config: estimator_examples_per_sec(
            c, files=files, steps=steps, warmup_steps=warmup_steps, work_dir=work_dir)
        candidates[f"keras_{model}"] = lambda c=config: keras_examples_per_sec(
            c, files=files, steps=steps, warmup_steps=warmup_steps)
    return candidates


def training_description(name: str, config: TrainerConfig) -> str:
    shape = f"{config.model}, hidden {config.hidden_units}, batch {config.batch_size}"
    if name.startswith("estimator_"):
        return f"trainer Estimator ({shape})"
    return f"tf.keras Model.fit defaults ({shape})"
