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
alternatives to compare it with, and three later baselines from the literature, simplified:
`dlinear` and `nlinear` (Zeng et al., arXiv 2205.13504) and `nbeats`, N-BEATS' generic
architecture (Oreshkin et al., arXiv 1905.10437).

Adding a network is one function and one `NETWORKS` entry: the flag's choices and help text,
the check of `n_inputs` and the benchmark's candidates are all read from the registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from trainer.util.lazy import tf

NetworkFunction = Callable[..., "tf.Tensor"]


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


@dataclasses.dataclass(frozen=True)
class LinearTerm:
    """One linear map of a network that is a sum of them: `features` [batch, p] times the kernel
    variable named `kernel` ([p, units], in the network's scope), plus the bias variable `bias`
    ([units]) when one is named."""

    features: tf.Tensor
    kernel: str
    bias: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class LinearTerms:
    """A network linear in its variables: `offset` (None, or [batch, 1] added to every output)
    plus the sum of its terms. `apply_linear_terms` builds it; the closed-form fit
    (`trainer.model.closed_form`) solves for the same variables from the same features."""

    terms: Tuple[LinearTerm, ...]
    offset: Optional[tf.Tensor] = None
    # Why the terms' features are collinear by construction, if they are (the fit then needs a
    # penalty, and says so without alarm).
    collinear: str = ""


def _variable(name: str, shape: Sequence[int], initializer: Callable[..., tf.Tensor]
              ) -> tf.Variable:
    """The variable `name` ("trend/kernel": `kernel` in the scope `trend`) of the current scope."""
    scope, _, leaf = name.rpartition("/")
    if not scope:
        return tf.compat.v1.get_variable(leaf, shape, initializer=initializer)
    with tf.compat.v1.variable_scope(scope):
        return tf.compat.v1.get_variable(leaf, shape, initializer=initializer)


def apply_linear_terms(linear_terms: LinearTerms, *, units: int) -> tf.Tensor:
    """The output [batch, units] of a network given as `LinearTerms`: each term's features times
    its kernel (Glorot-uniform at first) plus its bias (zeros at first), summed, plus the offset.

    matmul plus bias, not Dense layers: on constant inputs, TF 2.15's constant folding moved
    nlinear's `+ last` into Dense's BiasAdd as its bias, [batch, 1] instead of [units], and failed.
    """
    net = None
    for term in linear_terms.terms:
        kernel = _variable(term.kernel, [term.features.shape[-1], units],
                           tf.compat.v1.glorot_uniform_initializer())
        value = tf.matmul(term.features, kernel)
        if term.bias:
            value = value + _variable(term.bias, [units], tf.compat.v1.zeros_initializer())
        net = value if net is None else net + value
    return net if linear_terms.offset is None else net + linear_terms.offset


def linear_terms(sequence: tf.Tensor, context: Optional[tf.Tensor]) -> LinearTerms:
    """`linear`: one map of the inputs (and covariates), flattened, with a bias."""
    return LinearTerms((LinearTerm(_with_context(_flat(sequence), context), kernel="output/kernel",
                                   bias="output/bias"),))


def linear(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
           units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """A linear map from the inputs (and covariates) to the outputs (hidden_units is unused)."""
    del hidden_units, dropout, training  # a linear model has no hidden layer to drop
    return apply_linear_terms(linear_terms(sequence, context), units=units)


DLINEAR_KERNEL_SIZE = 25  # the moving average's window in the DLinear paper


def moving_average_decomposition(values: tf.Tensor, *, kernel_size: int
                                 ) -> Tuple[tf.Tensor, tf.Tensor]:
    """[batch, steps] -> (trend, remainder), both [batch, steps]: DLinear's series decomposition.

    The trend is the centred moving average over `kernel_size` steps (odd, at most `steps`),
    the series padded at each end by repeating its first and last value, as in the paper's
    code; the remainder is values - trend.

    >>> trend, _ = moving_average_decomposition(tf.constant([[0.0, 3.0, 6.0, 3.0]]), kernel_size=3)
    >>> trend.numpy().tolist()  # padded to [0, 0, 3, 6, 3, 3]
    [[1.0, 3.0, 4.0, 4.0]]
    """
    steps = values.shape[1]
    if kernel_size % 2 != 1 or not 1 <= kernel_size <= steps:
        raise ValueError(f"kernel_size {kernel_size} must be odd and in [1, {steps}] (the steps)")
    half = (kernel_size - 1) // 2
    padded = tf.concat([tf.repeat(values[:, :1], half, axis=1), values,
                        tf.repeat(values[:, -1:], half, axis=1)], axis=1)
    trend = tf.nn.avg_pool1d(padded[:, :, None], ksize=kernel_size, strides=1,
                             padding="VALID")[:, :, 0]
    return trend, values - trend


def _dlinear_kernel_size(n_inputs: int) -> int:
    """The paper's 25, or the largest odd size up to n_inputs (odd: the average stays centred)."""
    size = min(DLINEAR_KERNEL_SIZE, n_inputs)
    return size if size % 2 else size - 1


def _covariates(sequence: tf.Tensor, context: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
    """[batch, n_inputs * (channels - 1) + k]: the channels after the target, flattened, and the
    context; None when there are neither."""
    parts = [] if sequence.shape[2] == 1 else [_flat(sequence[:, :, 1:])]
    parts += [] if context is None else [context]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)


def _covariate_terms(sequence: tf.Tensor, context: Optional[tf.Tensor]) -> Tuple[LinearTerm, ...]:
    """A linear map (no bias) of the covariates, the channels after the target flattened and
    the context; none without covariates."""
    covariates = _covariates(sequence, context)
    if covariates is None:
        return ()
    return (LinearTerm(covariates, kernel="covariates/kernel"),)


def dlinear(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
            units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?",
    arXiv 2205.13504): the target inputs split by a moving average into trend and remainder
    (`moving_average_decomposition`), a linear map of each to the outputs, summed.

    Simplified from the paper: the target series alone (its univariate case), a kernel of 25
    steps or the largest odd size up to n_inputs; the covariates, which the paper has none of, enter as a
    linear map of the other channels flattened and the context, added to the output.
    hidden_units and dropout are unused (no hidden layer).
    """
    del hidden_units, dropout, training
    return apply_linear_terms(dlinear_terms(sequence, context), units=units)


def dlinear_terms(sequence: tf.Tensor, context: Optional[tf.Tensor]) -> LinearTerms:
    """`dlinear`: a map of the target's trend and one of its remainder, each with a bias, and
    one of the covariates."""
    target = sequence[:, :, 0]  # [batch, n_inputs]
    trend, remainder = moving_average_decomposition(
        target, kernel_size=_dlinear_kernel_size(target.shape[1]))
    return LinearTerms((LinearTerm(trend, kernel="trend/kernel", bias="trend/bias"),
                        LinearTerm(remainder, kernel="remainder/kernel", bias="remainder/bias"))
                       + _covariate_terms(sequence, context),
                       collinear="dlinear's trend and remainder add up to its inputs")


def nlinear(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
            units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """NLinear (Zeng et al., arXiv 2205.13504): the target inputs minus their last value, a
    linear map to the outputs, the last value added back to every output.

    So a constant added to the inputs adds the same to every output (without covariates). This
    normalization is the model's own, on top of `--scaling` (a no-op after `last_value`, which
    already makes the last value 0). Simplified: one series; the covariates enter as in
    `dlinear`, a linear map added to the output. hidden_units and dropout are unused.
    """
    del hidden_units, dropout, training
    return apply_linear_terms(nlinear_terms(sequence, context), units=units)


def nlinear_terms(sequence: tf.Tensor, context: Optional[tf.Tensor]) -> LinearTerms:
    """`nlinear`: a map of the target minus its last value, with a bias, one of the covariates,
    and the last value added to every output."""
    target = sequence[:, :, 0]  # [batch, n_inputs]
    last = target[:, -1:]  # [batch, 1]
    return LinearTerms((LinearTerm(target - last, kernel="weight", bias="bias"),)
                       + _covariate_terms(sequence, context), offset=last)


NBEATS_BLOCKS = 3  # the paper's generic model has 30 (and ensembles 180 models); few suffice here
NBEATS_LAYERS = 4  # fully connected ReLU layers per block, as in the paper


def nbeats(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
           units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """N-BEATS, generic architecture (Oreshkin et al., arXiv 1905.10437): `NBEATS_BLOCKS`
    blocks of `NBEATS_LAYERS` ReLU layers of hidden_units, each with a linear backcast
    (n_inputs) and forecast (units); a block reads what the blocks before it left unexplained
    (inputs minus their backcasts), and the forecasts are summed.

    Simplified from the paper: few blocks in one stack, no ensemble, and each block's theta
    layer and linear basis merged into one linear layer (two linear maps make one). The
    covariates, which the paper has none of, are joined to every block's input: the other
    channels flattened and the context. `dropout` applies after each hidden layer while
    training (the paper has none; neuralforecast's NBEATS puts it there too).
    """
    layers = tf.keras.layers
    residual = sequence[:, :, 0]  # [batch, n_inputs]
    n_inputs = residual.shape[1]
    covariates = _covariates(sequence, context)
    forecast = None
    for block in range(1, NBEATS_BLOCKS + 1):
        net = _with_context(residual, covariates)
        for layer in range(1, NBEATS_LAYERS + 1):
            net = layers.Dense(hidden_units, activation="relu",
                               name=f"block{block}_hidden{layer}")(net)
            net = _dropout(net, dropout, training, name=f"block{block}_dropout{layer}")
        residual = residual - layers.Dense(n_inputs, name=f"block{block}_backcast")(net)
        block_forecast = layers.Dense(units, name=f"block{block}_forecast")(net)
        forecast = block_forecast if forecast is None else forecast + block_forecast
    return forecast
# TiDE's defaults, small enough for CPU (the paper tunes 1-3 blocks of 256-1024 units).
TIDE_ENCODER_BLOCKS = 1  # residual blocks of `hidden_units` over the flattened inputs
TIDE_DECODER_BLOCKS = 1  # residual blocks after them, the last one out to `units`
TIDE_COVARIATE_WIDTH = 4  # each step's covariates projected to this many values (paper: 4)


def _residual_block(net: tf.Tensor, *, hidden_units: int, output_units: int, dropout: float,
                    training: bool, name: str, layer_norm: bool = True) -> tf.Tensor:
    """TiDE's residual block on the last axis: dense ReLU, dense linear, dropout, plus a linear
    skip from the block's input, then layer norm (`layer_norm`)."""
    layers = tf.keras.layers
    hidden = layers.Dense(hidden_units, activation="relu", name=f"{name}_hidden")(net)
    output = _dropout(layers.Dense(output_units, name=f"{name}_output")(hidden), dropout, training,
                      name=f"{name}_dropout")
    output = output + layers.Dense(output_units, name=f"{name}_skip")(net)
    return layers.LayerNormalization(name=f"{name}_norm")(output) if layer_norm else output


def tide(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
         units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """TiDE (Das et al., "Long-term Forecasting with TiDE: Time-series Dense Encoder",
    arXiv 2304.08424): a dense encoder and decoder of residual blocks, plus a linear map from
    the inputs to the outputs (the global residual).

    Each step's covariates (channels 1.. of `sequence`) go through a residual block to
    `TIDE_COVARIATE_WIDTH` values (the paper's feature projection) and are flattened; the
    encoder (`TIDE_ENCODER_BLOCKS` blocks of `hidden_units`) reads the target inputs, those
    projections and `context`; the decoder (`TIDE_DECODER_BLOCKS` blocks) ends in `units`.
    `dropout` drops each block's output while training.

    Simplified: the horizon's future covariates arrive flattened in `context`, into the
    encoder, so there is no per-step temporal decoder joining them to each forecast step; the
    decoder maps straight to `units` (n_outputs * width), and its last block has no layer norm
    (it would normalise the forecast across its steps). The paper's instance normalisation is
    the package's `--scaling`.
    """
    target = sequence[:, :, 0]  # [batch, n_inputs]
    parts = [target]
    if sequence.shape[2] > 1:
        projected = _residual_block(sequence[:, :, 1:], hidden_units=hidden_units,
                                    output_units=TIDE_COVARIATE_WIDTH, dropout=dropout,
                                    training=training, name="feature_projection")
        parts.append(_flat(projected))
    net = _with_context(tf.concat(parts, axis=-1) if len(parts) > 1 else target, context)
    for block in range(TIDE_ENCODER_BLOCKS):
        net = _residual_block(net, hidden_units=hidden_units, output_units=hidden_units,
                              dropout=dropout, training=training, name=f"encoder{block + 1}")
    for block in range(TIDE_DECODER_BLOCKS):
        last = block == TIDE_DECODER_BLOCKS - 1
        net = _residual_block(net, hidden_units=hidden_units,
                              output_units=units if last else hidden_units, dropout=dropout,
                              training=training, name=f"decoder{block + 1}", layer_norm=not last)
    return net + tf.keras.layers.Dense(units, name="global_residual")(target)


# PatchTST's patches (the paper's, cut to the inputs when they are fewer) and encoder, sized
# to train on CPU (the paper: 3 layers, 16 heads, d_model 128, feed-forward 256).
PATCH_LENGTH = 16
PATCH_STRIDE = 8
PATCHTST_LAYERS = 2
PATCHTST_HEADS = 4  # when d_model (`hidden_units`) divides by it; 1 head otherwise


def patch_sizes(n_inputs: int) -> Tuple[int, int]:
    """(patch length, stride) for `n_inputs` steps: 16 and 8, each at most `n_inputs`."""
    length = min(PATCH_LENGTH, n_inputs)
    return length, min(PATCH_STRIDE, length)


def patches(values: tf.Tensor, *, length: int, stride: int) -> tf.Tensor:
    """[batch, n] -> [batch, n_patches, length]: the series padded at the end with `stride`
    copies of its last value (as the paper does), then cut every `stride` steps, so that
    n_patches = (n - length) // stride + 2.

    >>> patches(tf.constant([[1.0, 2.0, 3.0, 4.0, 5.0]]), length=3, stride=2).numpy().tolist()
    [[[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 5.0, 5.0]]]
    """
    padded = tf.concat([values, tf.repeat(values[:, -1:], stride, axis=1)], axis=1)
    return tf.signal.frame(padded, length, stride, axis=1)


def patchtst(sequence: tf.Tensor, context: Optional[tf.Tensor], *, hidden_units: int,
             units: int, dropout: float = 0.0, training: bool = False) -> tf.Tensor:
    """PatchTST (Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with
    Transformers", arXiv 2211.14730): the target cut into patches (`patches`), each embedded
    linearly to d_model = `hidden_units` plus a learned position embedding, a Transformer
    encoder over the patches, and a flatten head: all patches' outputs, flattened, through a
    dense layer to `units`.

    The encoder has `PATCHTST_LAYERS` post-norm layers: multi-head self-attention
    (`PATCHTST_HEADS` heads when d_model divides by it, else 1), then a GELU feed-forward of
    2 * d_model, each with dropout, a residual connection and layer norm (the paper uses batch
    norm). `dropout` also drops the embedded patches, the attention weights and the flattened
    output, while training.

    Simplified: the paper is channel-independent and univariate per channel; here the
    Transformer sees the target channel alone, and the covariates (the other channels,
    flattened, and `context`) reach the forecast only through a linear map added to the
    output. The paper's RevIN is the package's `--scaling`.
    """
    layers = tf.keras.layers
    n_inputs = sequence.shape[1]
    length, stride = patch_sizes(n_inputs)
    net = patches(sequence[:, :, 0], length=length, stride=stride)  # [batch, n_patches, length]
    n_patches = net.shape[1]
    position = tf.compat.v1.get_variable(
        "position_embedding", [n_patches, hidden_units],
        initializer=tf.compat.v1.random_uniform_initializer(-0.02, 0.02))  # the paper's
    net = layers.Dense(hidden_units, name="patch_embedding")(net) + position
    net = _dropout(net, dropout, training, name="embedding_dropout")
    heads = PATCHTST_HEADS if hidden_units % PATCHTST_HEADS == 0 else 1
    for layer in range(1, PATCHTST_LAYERS + 1):
        attention = layers.MultiHeadAttention(heads, hidden_units // heads, dropout=dropout,
                                              name=f"layer{layer}_attention")
        attended = _dropout(attention(net, net, training=training), dropout, training,
                            name=f"layer{layer}_attention_dropout")
        net = layers.LayerNormalization(name=f"layer{layer}_attention_norm")(net + attended)
        fed = layers.Dense(2 * hidden_units, activation="gelu", name=f"layer{layer}_hidden")(net)
        fed = _dropout(layers.Dense(hidden_units, name=f"layer{layer}_output")(fed), dropout,
                       training, name=f"layer{layer}_feed_forward_dropout")
        net = layers.LayerNormalization(name=f"layer{layer}_feed_forward_norm")(net + fed)
    net = _dropout(_flat(net), dropout, training, name="head_dropout")
    output = layers.Dense(units, name="output")(net)
    covariates = None if sequence.shape[2] == 1 else _flat(sequence[:, :, 1:])
    if covariates is not None or context is not None:
        covariates = context if covariates is None else _with_context(covariates, context)
        output = output + layers.Dense(units, name="covariates")(covariates)
    return output


@dataclasses.dataclass(frozen=True)
class Network:
    """One `--model` choice: its function and what the flag's help and checks say of it."""

    build: NetworkFunction
    summary: str  # the models table of docs/models.md
    flag_note: str = ""  # shown beside the name in --model's help, when there is something to say
    min_n_inputs: int = 1  # fewer inputs than this cannot build the network
    min_n_inputs_reason: str = ""
    # A network linear in its variables gives them here (`--solver closed_form` can fit it).
    linear_terms: Optional[Callable[[tf.Tensor, Optional[tf.Tensor]], LinearTerms]] = None
    # The model search (`forecast auto`) trains the networks with a rank, lowest first, with
    # these flags of their own (widths that train in minutes on a CPU, as the accuracy
    # benchmark's); 0: it trains this one only in closed form (`linear_terms`) or not at all.
    search_rank: int = 0
    search_flags: Tuple[Tuple[str, Any], ...] = ()


NETWORKS: Dict[str, Network] = {
    "lstm": Network(lstm, "the paper's model: one LSTM cell unrolled over the `n_inputs` steps, "
                    "last output times a weight matrix plus a bias",
                    flag_note="the paper's LSTM cell unrolled over the inputs, last output "
                    "through matmul+bias", search_rank=5, search_flags=(("hidden_units", 32),)),
    "lstm2": Network(lstm2, "two stacked LSTM cells, same head", flag_note="two stacked LSTMs"),
    "gru": Network(gru, "a GRU cell unrolled over the inputs, same head"),
    "cnn": Network(cnn, "two 1-D convolutions (kernel 3) with max pooling, then a dense output",
                   min_n_inputs=3, min_n_inputs_reason="its kernel spans 3 steps"),
    "dnn": Network(dnn, "two ReLU layers (`hidden_units`, then half), linear output",
                   search_rank=1, search_flags=(("hidden_units", 128),)),
    "linear": Network(linear, "a linear map from inputs to outputs", linear_terms=linear_terms),
    "dlinear": Network(dlinear, f"DLinear (arXiv 2205.13504): a moving average ({DLINEAR_KERNEL_SIZE} "
                       "steps, or fewer when `n_inputs` is shorter) splits the inputs into trend "
                       "and remainder, a linear map of each, summed",
                       flag_note="trend and remainder, a linear map of each",
                       linear_terms=dlinear_terms),
    "nlinear": Network(nlinear, "NLinear (arXiv 2205.13504): a linear map of the inputs minus "
                       "their last value, which is added back to the outputs",
                       flag_note="a linear map of the inputs minus their last value",
                       linear_terms=nlinear_terms),
    "nbeats": Network(nbeats, f"N-BEATS generic (arXiv 1905.10437): {NBEATS_BLOCKS} blocks of "
                      f"{NBEATS_LAYERS} ReLU layers (`hidden_units`), each forecasting and removing "
                      "its backcast from the inputs of the next; forecasts summed",
                      flag_note=f"N-BEATS generic, {NBEATS_BLOCKS} blocks",
                      search_rank=2, search_flags=(("hidden_units", 128),)),
    "tide": Network(tide, "TiDE (arXiv 2304.08424): residual dense encoder and decoder over the inputs, "
                    "per-step covariate projections and the context, plus a linear map from the inputs",
                    flag_note="TiDE's dense encoder-decoder of width hidden_units",
                    search_rank=3, search_flags=(("hidden_units", 128), ("dropout", 0.1))),
    "patchtst": Network(patchtst, "PatchTST (arXiv 2211.14730): the target in patches of 16 (stride 8) "
                        "through a 2-layer Transformer encoder and a flatten head; covariates added "
                        "linearly",
                        flag_note="PatchTST's Transformer over patches, d_model hidden_units",
                        search_rank=4, search_flags=(("hidden_units", 32), ("dropout", 0.1))),
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
