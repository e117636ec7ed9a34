"""Forecasting networks, and `NETWORKS`, the one registry of them (`--model`).

A network maps `sequence` [batch, n_inputs, channels] (the scaled past values, then any past
and future covariates of each input step) and `context` [batch, k] or None (the horizon's
future covariates, static covariates; `trainer.model.covariate_inputs`) to `n_outputs * width`
numbers per window ([batch, n_outputs * width]); `dropout` (a rate) applies where `training`
is True, to the layers each network names; `build_network` gives them the shape
[batch, n_outputs, width]. The head decides `width`, the values per forecast step (1 for a
point forecast), so a new head never touches a network. Loss, optimizer and metrics live
elsewhere (`trainer.model.heads`, `trainer.model.optimizers`, `trainer.model.metrics`).

`lstm` is the model of the paper the package comes from: one LSTM cell unrolled over the
n_inputs time steps, its last output through a matmul plus bias. The others are the usual
alternatives to compare it with.

Adding a network is one function and one `NETWORKS` entry: the flag's choices and help text,
the check of `n_inputs` and the benchmark's candidates are all read from the registry.
"""

import dataclasses
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

NetworkFunction = Callable[..., tf.Tensor]


def _with_context(net: tf.Tensor, context: Optional[tf.Tensor]) -> tf.Tensor:
    """[batch, n] -> [batch, n + k]: the context joined on (nothing without one)."""
    return net if context is None else tf.concat([net, context], axis=-1)


def _flat(sequence: tf.Tensor) -> tf.Tensor:
    """[batch, steps, channels] -> [batch, steps * channels] (without covariates: the inputs)."""
    return tf.reshape(sequence, [-1, sequence.shape[1] * sequence.shape[2]])


def _dropout(net: tf.Tensor, rate: float, training: bool, *, name: str = "dropout") -> tf.Tensor:
    """Dropout of `rate` while training (`--dropout`); the identity otherwise and at rate 0."""
    if not rate:
        return net
    return tf.keras.layers.Dropout(rate, name=name)(net, training=training)


def _output_layer(last_output: tf.Tensor, *, units: int) -> tf.Tensor:
    """The paper's head: last RNN output [batch, hidden] @ weight + bias -> [batch, units]."""
    hidden = last_output.shape[-1]
    weight = tf.compat.v1.get_variable(
        "weight", [hidden, units], initializer=tf.compat.v1.glorot_uniform_initializer())
    bias = tf.compat.v1.get_variable("bias", [units], initializer=tf.compat.v1.zeros_initializer())
    return tf.matmul(last_output, weight) + bias


def _unrolled_rnn(sequence: tf.Tensor, cells: Sequence[tf.keras.layers.Layer]) -> tf.Tensor:
    """Run the stacked `cells` over the time steps, one vector of channels per step (the value
    alone without covariates); returns the last output.

    The loop is unrolled in the graph (n_inputs copies of the cell sharing one set of weights),
    as `static_rnn` does in the paper's code.
    """
    n_inputs = sequence.shape[1]
    batch_size = tf.shape(sequence)[0]
    states = [cell.get_initial_state(batch_size=batch_size, dtype=tf.float32) for cell in cells]
    for step in range(n_inputs):
        output = sequence[:, step, :]  # [batch, channels]
        for layer, cell in enumerate(cells):
            output, states[layer] = cell(output, states[layer])
    return output


def lstm(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
         units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """The paper's model: an LSTM cell unrolled over the inputs, last output through matmul+bias
    (the context, when there is one, joined to the last output)."""
    # unit_forget_bias=True (the default) starts the forget gate at 1.0, as forget_bias=1.0 did.
    cells = [tf.keras.layers.LSTMCell(hidden_units, name="lstm_cell")]
    last = _dropout(_unrolled_rnn(sequence, cells), dropout, training)
    return _output_layer(_with_context(last, context), units=units)


def lstm2(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
          units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """Two stacked LSTM cells of `hidden_units` each."""
    cells = [tf.keras.layers.LSTMCell(hidden_units, name=f"lstm_cell_{i}") for i in (1, 2)]
    last = _dropout(_unrolled_rnn(sequence, cells), dropout, training)
    return _output_layer(_with_context(last, context), units=units)


def gru(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
        units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """A GRU cell unrolled over the inputs, with the same head as `lstm`."""
    cells = [tf.keras.layers.GRUCell(hidden_units, name="gru_cell")]
    last = _dropout(_unrolled_rnn(sequence, cells), dropout, training)
    return _output_layer(_with_context(last, context), units=units)


def cnn(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
        units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """Two 1-D convolutions over time (kernel 3) with max pooling, then a dense output."""
    layers = tf.keras.layers
    net = sequence  # [batch, n_inputs, channels]
    net = layers.Conv1D(hidden_units, 3, padding="same", activation="relu", name="conv1")(net)
    net = layers.MaxPool1D(2, padding="same", name="pool1")(net)
    net = layers.Conv1D(max(hidden_units // 2, 1), 3, padding="same", activation="relu",
                        name="conv2")(net)
    net = _dropout(layers.Flatten(name="flatten")(net), dropout, training)
    return layers.Dense(units, name="output")(_with_context(net, context))


def dnn(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
        units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """Two ReLU layers (hidden_units, then half of it) and a linear output."""
    layers = tf.keras.layers
    net = _with_context(_flat(sequence), context)
    net = layers.Dense(hidden_units, activation="relu", name="hidden1")(net)
    net = _dropout(net, dropout, training, name="dropout1")
    net = layers.Dense(max(hidden_units // 2, 1), activation="relu", name="hidden2")(net)
    net = _dropout(net, dropout, training, name="dropout2")
    return layers.Dense(units, name="output")(net)


def linear(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
           units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """A linear map from the inputs (and covariates) to the outputs (hidden_units is unused)."""
    del hidden_units, dropout, training  # a linear model has no hidden layer to drop
    return tf.keras.layers.Dense(units, name="output")(_with_context(_flat(sequence), context))


@dataclasses.dataclass(frozen=True)
class Network:
    """One `--model` choice: its function and what the flag's help and checks say of it."""

    build: NetworkFunction
    summary: str  # the README's models table
    flag_note: str = ""  # shown beside the name in --model's help, when there is something to say
    min_n_inputs: int = 1  # fewer inputs than this cannot build the network
    min_n_inputs_reason: str = ""


NETWORKS: Dict[str, Network] = {
    "lstm": Network(lstm, "the paper's model: one LSTM cell unrolled over the `n_inputs` steps, "
                    "last output times a weight matrix plus a bias",
                    flag_note="the paper's LSTM cell unrolled over the inputs, last output "
                    "through matmul+bias"),
    "lstm2": Network(lstm2, "two stacked LSTM cells, same head", flag_note="two stacked LSTMs"),
    "gru": Network(gru, "a GRU cell unrolled over the inputs, same head"),
    "cnn": Network(cnn, "two 1-D convolutions (kernel 3) with max pooling, then a dense output",
                   min_n_inputs=3, min_n_inputs_reason="its kernel spans 3 steps"),
    "dnn": Network(dnn, "two ReLU layers (`hidden_units`, then half), linear output"),
    "linear": Network(linear, "a linear map from inputs to outputs"),
}
DEFAULT_NETWORK = "lstm"  # the paper's


def build_network(sequence: tf.Tensor, context: Optional[tf.Tensor] = None, *, model: str,
                  hidden_units: int, n_outputs: int, width: int = 1, dropout: float = 0.0,
                  training: bool = False) -> tf.Tensor:
    """Build the named network on `sequence` [batch, n_inputs, channels] (or the inputs alone,
    [batch, n_inputs]) and `context`; returns [batch, n_outputs, width]. `dropout` applies
    while `training` only, where the network has layers to drop."""
    if model not in NETWORKS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(NETWORKS)}")
    if sequence.shape.rank == 2:
        sequence = sequence[:, :, None]
    with tf.compat.v1.variable_scope(model):
        output = NETWORKS[model].build(sequence, context, hidden_units=hidden_units,
                                       units=n_outputs * width, dropout=dropout,
                                       training=training)
    return tf.reshape(output, [-1, n_outputs, width])
