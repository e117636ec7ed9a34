"""Forecasting networks: past values [batch, n_inputs] -> forecast [batch, n_outputs].

`lstm` is the model of the paper the package comes from: one LSTM cell unrolled over the
n_inputs time steps, its last output through a matmul plus bias. The others are the usual
alternatives to compare it with, all selected by `--model`. Each function only builds the
forward graph; loss, optimizer and metrics live in `trainer.model`.
"""

from typing import Callable, Dict, Sequence

import tensorflow as tf


def _output_layer(last_output: tf.Tensor, *, n_outputs: int) -> tf.Tensor:
    """The paper's head: last RNN output [batch, units] @ weight + bias -> [batch, n_outputs]."""
    units = last_output.shape[-1]
    weight = tf.compat.v1.get_variable(
        "weight", [units, n_outputs], initializer=tf.compat.v1.glorot_uniform_initializer())
    bias = tf.compat.v1.get_variable("bias", [n_outputs], initializer=tf.compat.v1.zeros_initializer())
    return tf.matmul(last_output, weight) + bias


def _unrolled_rnn(rawdata: tf.Tensor, cells: Sequence[tf.keras.layers.Layer]) -> tf.Tensor:
    """Run the stacked `cells` over the time steps, one value per step; returns the last output.

    The loop is unrolled in the graph (n_inputs copies of the cell sharing one set of weights),
    as `static_rnn` does in the paper's code.
    """
    n_inputs = rawdata.shape[1]
    batch_size = tf.shape(rawdata)[0]
    states = [cell.get_initial_state(batch_size=batch_size, dtype=tf.float32) for cell in cells]
    for step in range(n_inputs):
        output = rawdata[:, step:step + 1]  # [batch, 1]
        for layer, cell in enumerate(cells):
            output, states[layer] = cell(output, states[layer])
    return output


def lstm(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """The paper's model: an LSTM cell unrolled over the inputs, last output through matmul+bias."""
    # unit_forget_bias=True (the default) starts the forget gate at 1.0, as forget_bias=1.0 did.
    cells = [tf.keras.layers.LSTMCell(hidden_units, name="lstm_cell")]
    return _output_layer(_unrolled_rnn(rawdata, cells), n_outputs=n_outputs)


def lstm2(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """Two stacked LSTM cells of `hidden_units` each."""
    cells = [tf.keras.layers.LSTMCell(hidden_units, name=f"lstm_cell_{i}") for i in (1, 2)]
    return _output_layer(_unrolled_rnn(rawdata, cells), n_outputs=n_outputs)


def gru(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """A GRU cell unrolled over the inputs, with the same head as `lstm`."""
    cells = [tf.keras.layers.GRUCell(hidden_units, name="gru_cell")]
    return _output_layer(_unrolled_rnn(rawdata, cells), n_outputs=n_outputs)


def cnn(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """Two 1-D convolutions over time (kernel 3) with max pooling, then a dense output."""
    layers = tf.keras.layers
    net = tf.expand_dims(rawdata, -1)  # [batch, n_inputs, 1 channel]
    net = layers.Conv1D(hidden_units, 3, padding="same", activation="relu", name="conv1")(net)
    net = layers.MaxPool1D(2, padding="same", name="pool1")(net)
    net = layers.Conv1D(max(hidden_units // 2, 1), 3, padding="same", activation="relu",
                        name="conv2")(net)
    net = layers.Flatten(name="flatten")(net)
    return layers.Dense(n_outputs, name="output")(net)


def dnn(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """Two ReLU layers (hidden_units, then half of it) and a linear output."""
    layers = tf.keras.layers
    net = layers.Dense(hidden_units, activation="relu", name="hidden1")(rawdata)
    net = layers.Dense(max(hidden_units // 2, 1), activation="relu", name="hidden2")(net)
    return layers.Dense(n_outputs, name="output")(net)


def linear(rawdata: tf.Tensor, *, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """A linear map from the inputs to the outputs (hidden_units is unused)."""
    del hidden_units  # a linear model has no hidden layer
    return tf.keras.layers.Dense(n_outputs, name="output")(rawdata)


FORECASTERS: Dict[str, Callable[..., tf.Tensor]] = {
    "lstm": lstm, "lstm2": lstm2, "gru": gru, "cnn": cnn, "dnn": dnn, "linear": linear,
}


def forecast(rawdata: tf.Tensor, *, model: str, hidden_units: int, n_outputs: int) -> tf.Tensor:
    """Build the named network on `rawdata` [batch, n_inputs]; returns [batch, n_outputs]."""
    if model not in FORECASTERS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(FORECASTERS)}")
    with tf.compat.v1.variable_scope(model):
        return FORECASTERS[model](rawdata, hidden_units=hidden_units, n_outputs=n_outputs)
